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


def _self_image_pairs(edge_index: np.ndarray) -> int:
    return int((edge_index[0] == edge_index[1]).sum())


def test_line_graph_without_self_pairs_drops_only_a_bond_paired_with_itself(mp_structures):
    """``self_pairs=False`` (DGL's line graph, upstream ALIGNN's) removes exactly the pairs
    (a, a), which exist only for bonds from an atom to its own periodic image."""
    checked = 0
    for structure in mp_structures[:8]:
        g = build_graph(structure, ALIGNN)
        ei, off = g.edge_index.numpy(), g.cell_offset.numpy()
        full = set(map(tuple, line_graph_edges(ei, g.num_nodes, off).T.tolist()))
        lg = line_graph_edges(ei, g.num_nodes, off, self_pairs=False)
        dropped = full - set(map(tuple, lg.T.tolist()))
        assert dropped == {(a, a) for a in range(ei.shape[1]) if ei[0, a] == ei[1, a]}
        checked += len(dropped)
    assert checked > 0  # the sample has crystals with a lattice vector under 8 Å


def test_fcc_primitive_cell_as_jarvis_and_dgl_count_it():
    """One-atom fcc cell: the 12 nearest neighbours are the atom's own images, in six pairs
    +-n. matgnn's graph: 12 bonds and 144 angles (every bond pair, itself included). jarvis'
    ``build_undirected_edgedata`` emits i -> i(n) and i -> i(-n) for each of the 12 stored
    images (24 bonds, each image twice) and DGL's line graph pairs every two different bonds:
    24 x 24 - 24 = 552 angles. (Upstream alignn 2026.8.11's ``Graph.atom_dgl_multigraph``,
    k-nearest, 8 Å, 12 neighbours, gives 24 and 552 on this cell.)"""
    from pymatgen.core import Lattice, Structure

    copper = Structure(
        Lattice.cubic(3.61), ["Cu"] * 4, [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]
    )
    primitive = copper.get_primitive_structure()
    assert len(primitive) == 1
    ours = build_graph(primitive, GraphConfig.preset("alignn"))
    upstream = build_graph(primitive, GraphConfig.preset("alignn_upstream"))
    assert ours.edge_index.shape[1] == 12 and ours.lg_edge_index.shape[1] == 144
    assert upstream.edge_index.shape[1] == 24 and upstream.lg_edge_index.shape[1] == 552
    offsets, counts = np.unique(upstream.cell_offset.numpy(), axis=0, return_counts=True)
    assert len(offsets) == 12 and set(counts) == {2}
    assert {tuple(o) for o in offsets} == {tuple(o) for o in ours.cell_offset.numpy().tolist()}
    lg = upstream.lg_edge_index.numpy()
    assert not np.any(lg[0] == lg[1])


def test_duplicate_self_images_leaves_bonds_between_different_atoms_alone(mp_structures):
    """jarvis' multiset differs from matgnn's graph only in bonds from an atom to its own
    image, each of which it holds once per kept image n and -n."""
    from collections import Counter

    for structure in mp_structures[:8]:
        ours = build_graph(structure, GraphConfig.preset("alignn"))
        upstream = build_graph(structure, GraphConfig.preset("alignn", duplicate_self_images=True))

        def bonds(graph):
            rows = np.column_stack([graph.edge_index.numpy().T, graph.cell_offset.numpy()])
            return Counter(map(tuple, rows.tolist()))

        mine, theirs = bonds(ours), bonds(upstream)
        assert {k: v for k, v in theirs.items() if k[0] != k[1]} == {
            k: v for k, v in mine.items() if k[0] != k[1]
        }
        assert set(theirs) == set(mine)
        for (i, j, *_), count in theirs.items():
            if i == j:
                assert count == 2  # both n and -n are kept: whole shells, symmetric distances
        assert _self_image_pairs(upstream.edge_index.numpy()) == 2 * _self_image_pairs(
            ours.edge_index.numpy()
        )


def test_duplicate_self_images_needs_a_symmetric_knn_graph():
    with pytest.raises(ValueError, match="duplicate_self_images"):
        GraphConfig(mode="radius", duplicate_self_images=True)
    with pytest.raises(ValueError, match="duplicate_self_images"):
        GraphConfig(mode="knn", symmetric=False, duplicate_self_images=True)


def test_new_line_graph_options_keep_older_fingerprints():
    """Options added later enter a config's fingerprint only when set: the graphs and caches
    of every earlier config keep their stamp (the ``alignn`` preset's before the options
    existed: 2554ffc1431b952b)."""
    alignn = GraphConfig.preset("alignn")
    assert alignn.fingerprint() == "2554ffc1431b952b"
    assert GraphConfig.preset("alignn_upstream").fingerprint() != alignn.fingerprint()


def test_line_graph_self_pairs_needs_a_line_graph():
    with pytest.raises(ValueError, match="line_graph_self_pairs"):
        GraphConfig(mode="knn", line_graph=False, line_graph_self_pairs=False)


def test_checkpoint_config_stores_the_new_options_only_when_set():
    """A graph config without the later options is stored as before they existed (shipped
    checkpoints stay byte for byte the converters' output), and one with them round-trips."""
    stored = GraphConfig.preset("alignn").to_config()
    assert "line_graph_self_pairs" not in stored and "duplicate_self_images" not in stored
    upstream = GraphConfig.preset("alignn_upstream")
    assert GraphConfig.from_dict(upstream.to_config()) == upstream
    assert GraphConfig.from_dict(stored) == GraphConfig.preset("alignn")
