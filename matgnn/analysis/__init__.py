"""Physics and reporting helpers around the models: elastic tensors (Voigt notation, VRH
moduli), Neumann's principle for tensor frames, phonon DOS quantities, convex-hull stability,
and the plots the outputs draw."""
