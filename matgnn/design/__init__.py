"""Inverse design: iMatGen's invertible image representation of crystals (Noh et al., Matter 1,
1370 (2019)), its generative model, and matgnn models as the property oracle."""
