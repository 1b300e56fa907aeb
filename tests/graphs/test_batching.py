"""Batching offsets every index field correctly; geometry stays differentiable."""

from __future__ import annotations

import torch
from torch_geometric.data import Batch

from matgnn.graphs import GraphConfig, build_graph
from matgnn.graphs.geometry import cartesian_positions, edge_vectors

FULL = GraphConfig(
    mode="knn",
    cutoff=6.0,
    max_neighbors=8,
    keep_ties=True,
    grow_cutoff=True,
    lattice_edges=True,
    line_graph=True,
    potentials=("coulomb", "pauli"),
)


def test_batch_increments(mp_structures) -> None:
    graphs = [build_graph(s, FULL) for s in mp_structures[:4]]
    batch = Batch.from_data_list(graphs)
    node_start = edge_start = 0
    e0 = p0 = t0 = 0
    for g in graphs:
        e, p, t = g.edge_index.size(1), g.pot_edge_index.size(1), g.lg_edge_index.size(1)
        assert torch.equal(batch.edge_index[:, e0 : e0 + e], g.edge_index + node_start)
        assert torch.equal(batch.pot_edge_index[:, p0 : p0 + p], g.pot_edge_index + node_start)
        assert torch.equal(batch.lg_edge_index[:, t0 : t0 + t], g.lg_edge_index + edge_start)
        node_start += g.num_nodes
        edge_start += e
        e0, p0, t0 = e0 + e, p0 + p, t0 + t
    assert batch.lattice.shape == (4, 3, 3)
    vec = edge_vectors(batch.pos, batch.lattice, batch.edge_index, batch.cell_offset, batch.batch)
    single = torch.cat(
        [edge_vectors(g.pos, g.lattice, g.edge_index, g.cell_offset, None) for g in graphs]
    )
    torch.testing.assert_close(vec, single)


def test_distances_are_differentiable(mp_structures) -> None:
    g = build_graph(mp_structures[0], GraphConfig(mode="knn"))
    frac = g.frac_coords.clone().requires_grad_(True)
    lattice = g.lattice.clone().requires_grad_(True)
    pos = cartesian_positions(frac, lattice, None)
    d = edge_vectors(pos, lattice, g.edge_index, g.cell_offset, None).norm(dim=-1)
    d.sum().backward()
    assert frac.grad is not None and lattice.grad is not None
    assert lattice.grad.abs().sum() > 0
