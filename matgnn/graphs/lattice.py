"""Matformer lattice self-edges (Yan et al., "Periodic Graph Transformers for Crystal Material
Property Prediction", NeurIPS 2022).

Each atom gets self-edges to its own images translated by l1, l2, l3, l1+l2, l1+l3, l2+l3. The
six lengths fix the lattice lengths and angles, so the graph encodes the periodicity even when
the neighbour cutoff is shorter than a lattice vector. Matformer builds them in an undirected
graph, so with ``symmetric=True`` the reverse offsets (-l1, ...) are added as well.

Matformer takes l1, l2, l3 from the cell as given, so two descriptions of the same crystal by
different unit cells get different lattice edges. With ``basis="niggli"`` the vectors are those
of the Niggli-reduced cell of the same lattice (a unimodular integer change of basis, so the
offsets stay integers), which makes the edges independent of the choice of cell. A supercell is
a different lattice and still changes them.
"""

from __future__ import annotations

import numpy as np

LATTICE_OFFSETS = np.array(
    [[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [1, 0, 1], [0, 1, 1]], dtype=np.int64
)


LATTICE_BASES = ("cell", "niggli")


def reduced_basis(lattice: np.ndarray, tolerance: float = 1e-5) -> np.ndarray:
    """Integer matrix M [3, 3] with ``M @ lattice`` the Niggli-reduced cell (det M = +-1)."""
    from pymatgen.core import Lattice

    reduced = Lattice(lattice).get_niggli_reduced_lattice(tol=tolerance).matrix
    basis = reduced @ np.linalg.inv(lattice)
    rounded = np.rint(basis)
    if np.abs(basis - rounded).max() > 1e-4 or round(abs(np.linalg.det(rounded))) != 1:
        raise ValueError(f"Niggli reduction did not give a unimodular basis change: {basis}")
    return rounded.astype(np.int64)


def lattice_self_edges(
    num_atoms: int, symmetric: bool, basis: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Self-edges of every atom to its lattice-translated images.

    ``basis`` (from :func:`reduced_basis`) expresses l1, l2, l3 in the cell's basis; ``None``
    uses the cell's own vectors.

    Returns:
        ``edge_index`` [2, 6N] (or [2, 12N] when symmetric) and ``cell_offset`` of the same
        length, atom-major: atom 0's edges first.
    """
    offsets = LATTICE_OFFSETS if basis is None else LATTICE_OFFSETS @ basis
    offsets = np.concatenate([offsets, -offsets]) if symmetric else offsets
    atoms = np.repeat(np.arange(num_atoms, dtype=np.int64), len(offsets))
    edge_index = np.stack([atoms, atoms])
    cell_offset = np.tile(offsets, (num_atoms, 1))
    return edge_index, cell_offset
