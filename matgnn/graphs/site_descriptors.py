"""Site-occupancy descriptors of Ye et al., Nat. Commun. 9, 3800 (2018): the ionic radius and
Pauling electronegativity of the species on each site of a substituted prototype.

For each site label in order (perovskite: A, B; garnet: C, A, D), the species on that site are
sorted by amount, minority first (equal amounts: by species string), and each contributes
``(r, X)``. A site holds ``species_per_site`` slots: an unmixed site repeats its species, which
is garnetdnn's ``unmix_expansion`` (an unmixed crystal enters a mixed-site model as if its two
species were equal). The result for a perovskite with two slots per site is
``[r_A', X_A', r_A'', X_A'', r_B', X_B', r_B'', X_B'']``.

Radius: with a coordination number in the site spec (``"A:XII"``) the Shannon radius at that
coordination (garnetdnn ``cn_specific=True``, its garnet models); without one (``"A"``),
pymatgen's ``Species.ionic_radius`` (garnetdnn ``cn_specific=False``, what its perovskite web
app feeds the perovskite models: most A-site species of the perovskite set have no tabulated
XII-coordinated radius).

Ye et al.'s binary encoding of the ordering of a mixed site (4 bits for perovskites) is not
computed: it needs the index of the DFT ordering, which the published entries do not record.

The structure must carry the site properties ``prototype_site`` (the label of each site) and
``oxidation_state`` (:func:`matgnn.data.sources.ye2018.label_sites` sets both).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np
from pymatgen.core import Species, Structure

SITE_PROPERTY = "prototype_site"
OXIDATION_PROPERTY = "oxidation_state"


def parse_site_spec(spec: str) -> tuple[str, str | None]:
    """``"A:XII"`` -> ``("A", "XII")``; ``"A"`` -> ``("A", None)``."""
    label, _, cn = spec.partition(":")
    return label, cn or None


def descriptor_length(sites: Sequence[str], species_per_site: int) -> int:
    """Number of values :func:`site_descriptor` returns."""
    return 2 * len(sites) * species_per_site


def species_radius(species: Species, cn: str | None, name: str) -> float:
    """Shannon radius at ``cn`` or, without ``cn``, pymatgen's ionic radius (Å)."""
    try:
        radius = species.get_shannon_radius(cn) if cn else species.ionic_radius
    except KeyError:
        radius = None
    if radius is None:
        where = f"at coordination {cn}" if cn else "(pymatgen's ionic_radius)"
        raise ValueError(f"{name}: no tabulated ionic radius for {species} {where}")
    return float(radius)


def site_descriptor(
    structure: Structure, sites: Sequence[str], species_per_site: int, name: str = "structure"
) -> np.ndarray:
    """The descriptor vector ``[D]`` of one labelled crystal (float64).

    Args:
        structure: crystal with ``prototype_site`` and ``oxidation_state`` site properties.
        sites: site specs in order, ``"label"`` or ``"label:CN"`` (Roman numeral).
        species_per_site: slots per site; a site with more species than slots is an error.
        name: the structure's name for error messages.
    """
    props = structure.site_properties
    missing = [p for p in (SITE_PROPERTY, OXIDATION_PROPERTY) if p not in props]
    if missing:
        raise ValueError(
            f"{name}: site descriptors need the site properties {missing} (the prototype site "
            "label and oxidation state of every atom; see matgnn.data.sources.ye2018.label_sites)"
        )
    values: list[float] = []
    for spec in sites:
        label, cn = parse_site_spec(spec)
        counts = Counter(
            str(Species(site.specie.symbol, int(ox)))
            for site, site_label, ox in zip(
                structure, props[SITE_PROPERTY], props[OXIDATION_PROPERTY], strict=True
            )
            if site_label == label
        )
        if not counts:
            raise ValueError(f"{name}: no atom is labelled as site {label!r}")
        if len(counts) > species_per_site:
            raise ValueError(
                f"{name}: site {label} holds {len(counts)} species {sorted(counts)}, more than "
                f"the {species_per_site} this descriptor has room for"
            )
        order = sorted(counts, key=lambda s: (counts[s], s))
        order += [order[-1]] * (species_per_site - len(order))
        for text in order:
            species = Species.from_str(text)
            values += [species_radius(species, cn, name), float(species.X)]
    return np.asarray(values, dtype=np.float64)
