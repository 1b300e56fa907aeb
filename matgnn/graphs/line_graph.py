"""ALIGNN line graph (Choudhary & DeCost, npj Comput. Mater. 7, 185 (2021)).

Nodes of the line graph are the edges (bonds) of the crystal graph. The line graph has an
edge ``a -> b`` for every pair of bonds with ``dst[a] == src[b]``: bond ``a = (u -> v)`` feeds
bond ``b = (v -> w)`` through the angle u-v-w at the shared atom v. Its feature, the bond-angle
cosine, is computed inside the model (:func:`matgnn.graphs.geometry.bond_cosines`).

DGL's ``line_graph(backtracking=True)``, which ALIGNN uses, is the same except for one pair:
it never pairs a bond with itself. Only a bond from an atom to its own periodic image,
``a = (i -> i + n)``, can follow itself (the collinear triplet i, i + n, i + 2n, cosine -1);
``self_pairs=False`` drops those pairs as DGL does.
"""

from __future__ import annotations

import numpy as np


def line_graph_edges(
    edge_index: np.ndarray,
    num_nodes: int,
    cell_offset: np.ndarray | None = None,
    backtracking: bool = True,
    self_pairs: bool = True,
) -> np.ndarray:
    """Pairs of bonds ``(a, b)`` with ``dst[a] == src[b]``.

    Args:
        edge_index: [2, E] (src, dst) of the crystal graph.
        num_nodes: number of atoms.
        cell_offset: [E, 3]; needed only to drop backtracking pairs.
        backtracking: keep pairs where ``b`` is the exact reverse of ``a`` (same atoms, negated
            offset), whose angle is 0.
        self_pairs: keep the pair ``(a, a)`` of a bond from an atom to its own image with
            itself (DGL's line graph drops it).

    Returns:
        ``lg_edge_index`` [2, T], int64, sorted by ``a``.
    """
    src, dst = edge_index
    num_edges = src.shape[0]
    order = np.argsort(src, kind="stable")
    out_degree = np.bincount(src, minlength=num_nodes)
    out_start = np.cumsum(out_degree) - out_degree
    counts = out_degree[dst]
    total = int(counts.sum())
    first = np.repeat(np.arange(num_edges, dtype=np.int64), counts)
    row_start = np.cumsum(counts) - counts
    within = np.arange(total, dtype=np.int64) - np.repeat(row_start, counts)
    second = order[np.repeat(out_start[dst], counts) + within].astype(np.int64)
    if not backtracking:
        if cell_offset is None:
            raise ValueError("cell_offset is needed to drop backtracking pairs")
        reverse = (dst[second] == src[first]) & np.all(
            cell_offset[second] == -cell_offset[first], axis=1
        )
        first, second = first[~reverse], second[~reverse]
    if not self_pairs:
        keep = first != second
        first, second = first[keep], second[keep]
    return np.stack([first, second])
