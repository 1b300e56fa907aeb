"""Ye et al. 2018 site descriptors (matgnn.graphs.site_descriptors) on labelled perovskites."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pymatgen.core import Species, Structure
from torch_geometric.data import Batch

from matgnn.data.sources.ye2018 import (
    PEROVSKITE_SITES,
    label_sites,
    parse_site,
    parse_site_species,
    prototype,
    substitute,
)
from matgnn.graphs import GraphConfig, build_graph
from matgnn.graphs.site_descriptors import descriptor_length, site_descriptor
from matgnn.testing import other_cell, permuted, random_rotation, rotated, translated


def perovskite(a: str, b: str) -> Structure:
    proto = prototype("perovskite")
    sites = {"A": a, "B": b}
    structure = substitute(proto, PEROVSKITE_SITES, {k: parse_site(v) for k, v in sites.items()})
    species = {k: parse_site_species(v) for k, v in sites.items()}
    return label_sites(structure, PEROVSKITE_SITES, proto, species)


def r_x(text: str, cn: str | None = None) -> list[float]:
    species = Species.from_str(text)
    radius = species.get_shannon_radius(cn) if cn else species.ionic_radius
    return [radius, species.X]


def test_labels_and_oxidation_states_follow_the_prototype():
    s = perovskite("Y3+:0.75;Sm3+:0.25", "Ga3+:1")
    labels = s.site_properties["prototype_site"]
    assert labels.count("A") == labels.count("B") == 8 and labels.count("O") == 24
    for site, label, ox in zip(s, labels, s.site_properties["oxidation_state"], strict=True):
        assert {"A": {"Y", "Sm"}, "B": {"Ga"}, "O": {"O"}}[label] >= {site.specie.symbol}
        assert ox == {"Y": 3, "Sm": 3, "Ga": 3, "O": -2}[site.specie.symbol]


def test_mixed_site_minority_first_and_unmixed_site_repeated():
    s = perovskite("Y3+:0.75;Sm3+:0.25", "Ga3+:1")
    got = site_descriptor(s, ["A", "B"], 2)
    want = r_x("Sm3+") + r_x("Y3+") + r_x("Ga3+") * 2
    np.testing.assert_allclose(got, want)
    assert len(got) == descriptor_length(["A", "B"], 2)


def test_coordination_specific_shannon_radius():
    s = perovskite("Sr2+:1", "Ti4+:1")
    np.testing.assert_allclose(
        site_descriptor(s, ["A:XII", "B:VI"], 1), r_x("Sr2+", "XII") + r_x("Ti4+", "VI")
    )


def test_equal_amounts_sorted_by_species_string():
    s = perovskite("Sr2+:1", "Mg2+:0.5;Ti4+:0.5")
    got = site_descriptor(s, ["A", "B"], 2)
    np.testing.assert_allclose(got[4:], r_x("Mg2+") + r_x("Ti4+"))


def test_descriptor_is_invariant_to_rotation_translation_permutation_and_supercell():
    s = perovskite("La3+:0.5;Sr2+:0.5", "Fe3+:1")
    config = GraphConfig.preset("ye2018_perovskite")
    ref = build_graph(s, config).site_descriptor
    others = (
        rotated(s, random_rotation(0)),
        translated(s, [0.3, -1.1, 2.0]),
        permuted(s, 1),
        other_cell(s),
        s * (1, 1, 2),
    )
    for other in others:
        torch.testing.assert_close(build_graph(other, config).site_descriptor, ref)


def test_batched_descriptors_stack_per_crystal():
    config = GraphConfig.preset("ye2018_perovskite")
    batch = Batch.from_data_list(
        [build_graph(perovskite("Sr2+:1", "Ti4+:1"), config)] * 2
        + [build_graph(perovskite("La3+:1", "Al3+:1"), config)]
    )
    assert batch.site_descriptor.shape == (3, 8)


def test_unlabelled_structure_is_refused_by_name():
    s = prototype("perovskite")
    with pytest.raises(ValueError, match=r"CaTiO3.*prototype_site"):
        build_graph(s, GraphConfig.preset("ye2018_perovskite"))


def test_too_many_species_for_the_slots():
    s = perovskite("Y3+:0.75;Sm3+:0.25", "Ga3+:1")
    with pytest.raises(ValueError, match=r"site A holds 2 species"):
        site_descriptor(s, ["A", "B"], 1, name="x")


def test_species_without_a_radius_is_named():
    s = perovskite("Sn2+:1", "Ti4+:1")
    with pytest.raises(ValueError, match=r"mine: no tabulated ionic radius for Sn2\+"):
        site_descriptor(s, ["A", "B"], 1, name="mine")


def test_configs_without_descriptors_keep_their_fingerprints():
    # fingerprints of the presets before the descriptor fields existed (shipped checkpoints)
    assert GraphConfig.preset("cgcnn").fingerprint() == "b58cc6420f3655c1"
    assert GraphConfig().fingerprint() == "09ee3b30833484cb"
    labelled = GraphConfig.preset("ye2018_perovskite")
    one_slot = GraphConfig.preset("ye2018_perovskite", species_per_site=1)
    assert labelled.fingerprint() != one_slot.fingerprint()


def test_cache_fingerprint_follows_the_site_labels_and_oxidation_states():
    from matgnn.graphs.cache import structures_fingerprint

    s = perovskite("Mn2+:1", "Ti4+:1")
    other = s.copy()
    other.add_site_property(
        "oxidation_state", [3 if ox == 2 else ox for ox in s.site_properties["oxidation_state"]]
    )
    plain = prototype("perovskite")
    assert structures_fingerprint([s], ["x"]) != structures_fingerprint([other], ["x"])
    assert structures_fingerprint([s], ["x"]) == structures_fingerprint([s.copy()], ["x"])
    assert structures_fingerprint([plain], ["x"]) == structures_fingerprint([plain.copy()], ["x"])
