"""Matformer lattice self-edges (Yan et al., "Periodic Graph Transformers for Crystal Material
Property Prediction", NeurIPS 2022).

Each atom gets self-edges to its own images translated by l1, l2, l3, l1+l2, l1+l3, l2+l3. The
six lengths fix the lattice lengths and angles, so the graph encodes the periodicity even when
the neighbour cutoff is shorter than a lattice vector. Matformer builds them in an undirected
graph, so with ``symmetric=True`` the reverse offsets (-l1, ...) are added as well.
"""

from __future__ import annotations

import numpy as np

LATTICE_OFFSETS = np.array(
    [[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [1, 0, 1], [0, 1, 1]], dtype=np.int64
)


def lattice_self_edges(num_atoms: int, symmetric: bool) -> tuple[np.ndarray, np.ndarray]:
    """Self-edges of every atom to its lattice-translated images.

    Returns:
        ``edge_index`` [2, 6N] (or [2, 12N] when symmetric) and ``cell_offset`` of the same
        length, atom-major: atom 0's edges first.
    """
    offsets = np.concatenate([LATTICE_OFFSETS, -LATTICE_OFFSETS]) if symmetric else LATTICE_OFFSETS
    atoms = np.repeat(np.arange(num_atoms, dtype=np.int64), len(offsets))
    edge_index = np.stack([atoms, atoms])
    cell_offset = np.tile(offsets, (num_atoms, 1))
    return edge_index, cell_offset
