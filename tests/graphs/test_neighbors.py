"""Neighbour lists against brute force, and the k-NN semantics of the reference codes."""

from __future__ import annotations

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from matgnn.graphs import GraphConfig, build_graph
from matgnn.graphs.neighbors import (
    alignn_grown_cutoff,
    knn_neighbors,
    radius_neighbors,
    symmetrize,
)
from matgnn.testing import random_rotation, rotated
from tests.conftest import random_structure
from tests.graphs.reference import brute_force_neighbors, distance_of


def as_set(nl) -> set[tuple]:
    return {
        (int(c), int(n), *map(int, o))
        for c, n, o in zip(nl.center, nl.neighbor, nl.offset, strict=True)
    }


def arrays(structure: Structure) -> tuple[np.ndarray, np.ndarray]:
    return structure.cart_coords, structure.lattice.matrix


@pytest.mark.parametrize("seed", range(6))
def test_radius_matches_brute_force_random_triclinic(seed: int) -> None:
    structure = random_structure(seed, 1 + seed % 5)
    expected = brute_force_neighbors(structure, 5.0)
    nl = radius_neighbors(*arrays(structure), 5.0)
    assert as_set(nl) == expected
    assert len(nl) == len(expected)  # no duplicates


def test_radius_distances_are_geometric(mp_structures) -> None:
    structure = mp_structures[3]
    nl = radius_neighbors(*arrays(structure), 6.0)
    frac = structure.frac_coords
    recomputed = np.linalg.norm(
        (frac[nl.neighbor] + nl.offset - frac[nl.center]) @ structure.lattice.matrix, axis=1
    )
    np.testing.assert_allclose(nl.distance, recomputed, atol=1e-9)


def test_radius_skewed_cell(skewed_structure) -> None:
    assert as_set(radius_neighbors(*arrays(skewed_structure), 6.0)) == brute_force_neighbors(
        skewed_structure, 6.0
    )


def test_radius_one_atom_cell_includes_self_images() -> None:
    structure = Structure(Lattice.from_parameters(2.9, 3.3, 3.1, 80, 95, 105), ["Cu"], [[0.3] * 3])
    nl = radius_neighbors(*arrays(structure), 7.0)
    assert as_set(nl) == brute_force_neighbors(structure, 7.0)
    assert np.all(nl.center == 0) and np.all(nl.neighbor == 0)
    assert len(nl) > 50


def test_radius_large_cell(large_structure) -> None:
    nl = radius_neighbors(*arrays(large_structure), 4.0)
    assert as_set(nl) == brute_force_neighbors(large_structure, 4.0)


def test_multigraph_keeps_every_image() -> None:
    """A 2.5 Å cubic cell: at 5.1 Å an atom sees 2 images of itself along each axis."""
    structure = Structure(Lattice.cubic(2.5), ["Po"], [[0, 0, 0]])
    nl = radius_neighbors(*arrays(structure), 5.1)
    offsets = {tuple(o) for o in nl.offset.tolist()}
    assert (2, 0, 0) in offsets and (1, 0, 0) in offsets and (-2, 0, 0) in offsets


@pytest.mark.parametrize("seed", range(4))
def test_radius_graph_is_symmetric(seed: int) -> None:
    nl = radius_neighbors(*arrays(random_structure(seed + 20, 4)), 6.0)
    entries = as_set(nl)
    assert all((j, i, -a, -b, -c) in entries for i, j, a, b, c in entries)


@pytest.mark.parametrize("seed", range(5))
def test_knn_cgcnn_matches_pymatgen_get_all_neighbors(seed: int) -> None:
    """CGCNN: sorted(structure.get_all_neighbors(8))[:12] distances per atom."""
    structure = random_structure(seed + 40, 3 + seed)
    nl, cutoff = knn_neighbors(*arrays(structure), k=12, cutoff=8.0)
    assert cutoff == 8.0
    reference = structure.get_all_neighbors(8.0)
    for i, neighbors in enumerate(reference):
        expected = sorted(n.nn_distance for n in neighbors)[:12]
        np.testing.assert_allclose(np.sort(nl.distance[nl.center == i]), expected, atol=1e-9)


def test_knn_selection_is_a_subset_of_the_radius_list(mp_structures) -> None:
    for structure in mp_structures[:10]:
        nl, _ = knn_neighbors(*arrays(structure), k=12, cutoff=8.0)
        assert as_set(nl) <= brute_force_neighbors(structure, 8.0)


def test_knn_keep_ties_keeps_whole_shells() -> None:
    """bcc: 8 nearest at a*sqrt(3)/2, then 6 at a. k=12 with ties keeps both shells: 14."""
    bcc = Structure(Lattice.cubic(3.0), ["Fe", "Fe"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    strict, _ = knn_neighbors(*arrays(bcc), k=12, cutoff=8.0, keep_ties=False)
    ties, _ = knn_neighbors(*arrays(bcc), k=12, cutoff=8.0, keep_ties=True)
    assert np.bincount(strict.center).tolist() == [12, 12]
    assert np.bincount(ties.center).tolist() == [14, 14]
    np.testing.assert_allclose(np.unique(np.round(ties.distance, 9)), [1.5 * 3**0.5, 3.0])


def test_knn_keep_ties_matches_brute_force(mp_structures) -> None:
    """ALIGNN's rule: all neighbours with d <= d_12 (from the full list within 8 Å)."""
    for structure in mp_structures[:10]:
        nl, _ = knn_neighbors(*arrays(structure), k=12, cutoff=8.0, keep_ties=True)
        full = brute_force_neighbors(structure, 8.0)
        expected = set()
        for i in range(len(structure)):
            mine = sorted((distance_of(structure, e), e) for e in full if e[0] == i)
            d12 = mine[11][0]
            expected |= {e for d, e in mine if d <= d12 + 1e-6}
        assert as_set(nl) == expected


def test_knn_grow_cutoff_follows_alignn_rule() -> None:
    """A 9 Å one-atom cell has no neighbour within 8 Å: the cutoff grows 8 -> 9 -> 18."""
    structure = Structure(Lattice.cubic(9.0), ["Xe"], [[0, 0, 0]])
    lattice = structure.lattice.matrix
    assert alignn_grown_cutoff(lattice, 8.0) == pytest.approx(9.0)
    assert alignn_grown_cutoff(lattice, 9.0) == pytest.approx(18.0)
    nl, cutoff = knn_neighbors(
        *arrays(structure), k=12, cutoff=8.0, keep_ties=True, grow_cutoff=True, max_cutoff=24.0
    )
    assert cutoff == pytest.approx(18.0)
    # 6 at 9 Å, 12 at 12.73 Å: the 12th neighbour closes the second shell
    assert len(nl) == 18


def test_knn_without_growth_keeps_what_the_cutoff_allows() -> None:
    structure = Structure(Lattice.cubic(7.0), ["Xe"], [[0, 0, 0]])
    nl, cutoff = knn_neighbors(*arrays(structure), k=12, cutoff=8.0)
    assert cutoff == 8.0 and len(nl) == 6


def test_symmetrize_adds_reverses_without_duplicates(mp_structures) -> None:
    structure = mp_structures[5]
    nl, _ = knn_neighbors(*arrays(structure), k=12, cutoff=8.0)
    sym = symmetrize(nl, len(structure))
    entries = as_set(sym)
    assert len(entries) == len(sym)
    assert as_set(nl) <= entries
    assert all((j, i, -a, -b, -c) in entries for i, j, a, b, c in entries)


def test_grown_cutoff_on_a_lattice_length_is_rotation_stable():
    """A full-Heusler-like primitive fcc cell (ScGa2Ru, mp-973067, a = b = c = 4.4647 Å) has
    fewer than 16 neighbours within PotNet's 4 Å, so the cutoff grows to the lattice length,
    where the 12 fcc images of each atom lie exactly. They must be in whatever the rotation
    (the cutoff is inclusive up to tie_tolerance); rounding used to drop some (104 vs 102
    edges) and change PotNet's output by 6%."""
    conventional = 4.4647 * 2**0.5
    lattice = Lattice(0.5 * conventional * np.array([[0, 1, 1], [1, 0, 1], [1, 1, 0]]))
    structure = Structure(
        lattice,
        ["Sc", "Ga", "Ga", "Ru"],
        [[0, 0, 0], [0.25, 0.25, 0.25], [0.75, 0.75, 0.75], [0.5, 0.5, 0.5]],
    )
    config = GraphConfig.preset("potnet", cell="as_given")
    counts = {
        build_graph(rotated(structure, random_rotation(seed)), config).edge_index.size(1)
        for seed in range(20)
    }
    assert counts == {build_graph(structure, config).edge_index.size(1)}
    assert counts.pop() == 4 * (14 + 12)  # 14 neighbours within 4 Å, then the 12 fcc images
