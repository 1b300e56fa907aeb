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
