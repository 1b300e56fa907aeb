"""ALIGNN line graph: equals a naive double loop; angles agree with explicit geometry."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch_geometric.data import Batch

from matgnn.graphs import GraphConfig, build_graph
from matgnn.graphs.geometry import bond_cosines, edge_vectors
from matgnn.graphs.line_graph import line_graph_edges

ALIGNN = GraphConfig(
    mode="knn", cutoff=8.0, max_neighbors=12, keep_ties=True, grow_cutoff=True, line_graph=True
)


def naive_pairs(edge_index: np.ndarray, offsets: np.ndarray, backtracking: bool) -> set:
    src, dst = edge_index
    pairs = set()
    for a in range(len(src)):
        for b in range(len(src)):
            if dst[a] != src[b]:
                continue
            if not backtracking and dst[b] == src[a] and np.all(offsets[b] == -offsets[a]):
                continue
            pairs.add((a, b))
    return pairs


@pytest.mark.parametrize("backtracking", [True, False])
def test_line_graph_equals_double_loop(mp_structures, backtracking: bool) -> None:
    for structure in mp_structures[:5]:
        g = build_graph(structure, GraphConfig(mode="knn", cutoff=6.0, max_neighbors=6))
        ei, off = g.edge_index.numpy(), g.cell_offset.numpy()
        lg = line_graph_edges(ei, g.num_nodes, off, backtracking=backtracking)
        got = set(map(tuple, lg.T.tolist()))
        assert len(got) == lg.shape[1]
        assert got == naive_pairs(ei, off, backtracking)


def test_directed_graph_line_graph(mp_structures) -> None:
    g = build_graph(mp_structures[7], GraphConfig(mode="knn", symmetric=False, max_neighbors=4))
    ei, off = g.edge_index.numpy(), g.cell_offset.numpy()
    got = set(map(tuple, line_graph_edges(ei, g.num_nodes, off).T.tolist()))
    assert got == naive_pairs(ei, off, True)


def test_bond_cosines_match_explicit_geometry(mp_structures) -> None:
    structure = mp_structures[2]
    torch.set_default_dtype(torch.float64)
    try:
        g = build_graph(structure, ALIGNN)
    finally:
        torch.set_default_dtype(torch.float32)
    vec = edge_vectors(g.pos, g.lattice, g.edge_index, g.cell_offset, None)
    cos = bond_cosines(vec, g.lg_edge_index).numpy()
    lattice = structure.lattice.matrix
    cart = structure.cart_coords
    src, dst = g.edge_index.numpy()
    off = g.cell_offset.numpy()
    rng = np.random.default_rng(1)
    for t in rng.choice(g.lg_edge_index.size(1), size=300, replace=False):
        a, b = g.lg_edge_index[:, t].tolist()
        v = dst[a]  # shared atom, at cart[v]
        u_img = cart[src[a]] + off[a] @ lattice  # bond a = u -> v
        w_img = cart[dst[b]] - off[b] @ lattice  # bond b = v -> w: v sits at w + off_b L
        e1, e2 = u_img - cart[v], w_img - cart[v]
        expected = e1 @ e2 / np.linalg.norm(e1) / np.linalg.norm(e2)
        assert cos[t] == pytest.approx(expected, abs=1e-9)


def test_backtracking_pairs_have_zero_angle(mp_structures) -> None:
    g = build_graph(mp_structures[1], ALIGNN)
    vec = edge_vectors(g.pos.double(), g.lattice.double(), g.edge_index, g.cell_offset, None)
    cos = bond_cosines(vec, g.lg_edge_index)
    src, dst = g.edge_index
    a, b = g.lg_edge_index
    reverse = (dst[b] == src[a]) & (g.cell_offset[b] == -g.cell_offset[a]).all(dim=1)
    assert reverse.sum() == g.edge_index.size(1)  # every bond has exactly one reverse
    assert torch.allclose(cos[reverse], torch.ones(int(reverse.sum()), dtype=cos.dtype))


def test_batched_line_graph_indices(mp_structures) -> None:
    graphs = [build_graph(s, ALIGNN) for s in mp_structures[:3]]
    batch = Batch.from_data_list(graphs)
    vec = edge_vectors(batch.pos, batch.lattice, batch.edge_index, batch.cell_offset, batch.batch)
    batched = bond_cosines(vec, batch.lg_edge_index)
    single = torch.cat(
        [
            bond_cosines(
                edge_vectors(g.pos, g.lattice, g.edge_index, g.cell_offset, None), g.lg_edge_index
            )
            for g in graphs
        ]
    )
    torch.testing.assert_close(batched, single)
    assert batch.lg_edge_index.max() < batch.edge_index.size(1)
