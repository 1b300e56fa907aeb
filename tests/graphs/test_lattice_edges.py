"""Matformer lattice self-edges: six per atom (twelve undirected); they fix the lattice."""

from __future__ import annotations

import numpy as np
import pytest

from matgnn.graphs import EDGE_LATTICE, GraphConfig, build_graph
from matgnn.graphs.geometry import edge_vectors


@pytest.mark.parametrize("symmetric", [True, False])
def test_six_self_edges_per_atom(mp_structures, symmetric: bool) -> None:
    structure = mp_structures[4]
    config = GraphConfig(mode="knn", symmetric=symmetric, lattice_edges=True)
    g = build_graph(structure, config)
    is_lattice = g.edge_type == EDGE_LATTICE
    src, dst = g.edge_index[:, is_lattice]
    assert bool((src == dst).all())
    per_atom = 12 if symmetric else 6
    assert np.bincount(dst.numpy()).tolist() == [per_atom] * len(structure)
    offsets = {tuple(o) for o in g.cell_offset[is_lattice].tolist()}
    wanted = {(1, 0, 0), (0, 1, 0), (0, 0, 1), (1, 1, 0), (1, 0, 1), (0, 1, 1)}
    assert wanted <= offsets
    if symmetric:
        assert {tuple(-np.array(o)) for o in wanted} <= offsets


def test_lattice_edge_lengths_give_lattice_parameters(mp_structures) -> None:
    structure = mp_structures[9]
    g = build_graph(structure, GraphConfig(mode="knn", lattice_edges=True, symmetric=False))
    is_lattice = g.edge_type == EDGE_LATTICE
    vec = edge_vectors(
        g.pos.double(),
        g.lattice.double(),
        g.edge_index[:, is_lattice],
        g.cell_offset[is_lattice],
        None,
    )
    lengths = {
        tuple(o): float(v.norm())
        for o, v in zip(g.cell_offset[is_lattice].tolist(), vec, strict=True)
    }
    a, b, c = lengths[(1, 0, 0)], lengths[(0, 1, 0)], lengths[(0, 0, 1)]
    gamma = np.degrees(np.arccos((lengths[(1, 1, 0)] ** 2 - a * a - b * b) / (2 * a * b)))
    beta = np.degrees(np.arccos((lengths[(1, 0, 1)] ** 2 - a * a - c * c) / (2 * a * c)))
    alpha = np.degrees(np.arccos((lengths[(0, 1, 1)] ** 2 - b * b - c * c) / (2 * b * c)))
    np.testing.assert_allclose([a, b, c], structure.lattice.abc, rtol=1e-5)
    np.testing.assert_allclose([alpha, beta, gamma], structure.lattice.angles, atol=1e-3)


def _lattice_edge_lengths(structure, basis: str) -> np.ndarray:
    config = GraphConfig(mode="knn", lattice_edges=True, lattice_edge_basis=basis)
    g = build_graph(structure, config)
    vec = edge_vectors(g.pos, g.lattice, g.edge_index, g.cell_offset, None)
    return np.sort(vec[g.edge_type == EDGE_LATTICE].norm(dim=-1).numpy())


def test_niggli_lattice_edges_do_not_depend_on_the_cell(mp_structures) -> None:
    from pymatgen.core import Structure

    structure = mp_structures[9]
    sheared = np.array([[1, 2, 0], [0, 1, 0], [1, 0, 1]]) @ structure.lattice.matrix
    other = Structure(
        sheared,
        structure.species,
        structure.cart_coords,
        coords_are_cartesian=True,
        to_unit_cell=True,
    )
    np.testing.assert_allclose(
        _lattice_edge_lengths(other, "niggli"),
        _lattice_edge_lengths(structure, "niggli"),
        rtol=1e-6,  # float32 graphs
    )
    cell = _lattice_edge_lengths(other, "cell")
    assert not np.allclose(cell, _lattice_edge_lengths(structure, "cell"))
