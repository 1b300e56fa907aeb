"""Periodic neighbour lists: one entry per neighbouring *image* (multigraph), integer offsets.

Convention (shared by every part of :mod:`matgnn.graphs`): an entry ``(center i, neighbor j,
offset n)`` means atom j translated by ``n @ lattice`` lies within reach of atom i, at vector
``x_j + n @ L - x_i``. In the graph it becomes the edge ``j -> i`` (messages flow to the centre).

All searches call pymatgen's compiled ``find_points_in_spheres`` once (or a few times when a
k-NN search radius must grow) and do the selection vectorised in numpy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from pymatgen.optimization.neighbors import find_points_in_spheres

_PBC = np.ones(3, dtype=np.int64)


@dataclass(frozen=True)
class NeighborList:
    """Parallel arrays, one row per (centre, neighbour image) pair."""

    center: np.ndarray  # [M] int64
    neighbor: np.ndarray  # [M] int64
    offset: np.ndarray  # [M, 3] int64
    distance: np.ndarray  # [M] float64

    def __len__(self) -> int:
        return int(self.center.shape[0])

    def take(self, index: np.ndarray) -> NeighborList:
        return NeighborList(
            self.center[index], self.neighbor[index], self.offset[index], self.distance[index]
        )


def radius_neighbors(cart: np.ndarray, lattice: np.ndarray, cutoff: float) -> NeighborList:
    """Every image of every atom within ``cutoff`` Å of each atom (the atom itself excluded).

    Args:
        cart: [N, 3] Cartesian positions.
        lattice: [3, 3] lattice vectors as rows.
        cutoff: radius in Å (inclusive).
    """
    cart = np.ascontiguousarray(cart, dtype=np.float64)
    lattice = np.ascontiguousarray(lattice, dtype=np.float64)
    center, neighbor, images, dist = find_points_in_spheres(
        cart, cart, r=float(cutoff), pbc=_PBC, lattice=lattice, tol=1e-8
    )
    offset = np.rint(images).astype(np.int64)
    keep = ~((center == neighbor) & ~offset.any(axis=1)) & (dist <= cutoff)
    return NeighborList(
        center[keep].astype(np.int64), neighbor[keep].astype(np.int64), offset[keep], dist[keep]
    )


def _rank_within_center(nl: NeighborList, num_atoms: int) -> tuple[NeighborList, np.ndarray]:
    """Sort by (centre, distance) and return each entry's rank among its centre's entries."""
    order = np.lexsort((nl.distance, nl.center))
    nl = nl.take(order)
    counts = np.bincount(nl.center, minlength=num_atoms)
    starts = np.cumsum(counts) - counts
    rank = np.arange(len(nl)) - starts[nl.center]
    return nl, rank


def _knn_from_sorted(
    nl: NeighborList, rank: np.ndarray, k: int, keep_ties: bool, tie_tol: float, num_atoms: int
) -> tuple[NeighborList, np.ndarray]:
    """Select the k nearest per centre from a list sorted by (centre, distance).

    Returns the selection and, per atom, the distance up to which the selection is complete
    (the k-th distance, plus ``tie_tol`` when ties are kept).
    """
    counts = np.bincount(nl.center, minlength=num_atoms)
    starts = np.cumsum(counts) - counts
    kth = np.full(num_atoms, np.inf)
    has_k = counts >= k
    kth[has_k] = nl.distance[starts[has_k] + k - 1]
    if keep_ties:
        keep = nl.distance <= kth[nl.center] + tie_tol
    else:
        keep = rank < k
    return nl.take(keep), kth + (tie_tol if keep_ties else 0.0)


def tie_weights(nl: NeighborList, k: int, tie_tol: float, num_atoms: int) -> np.ndarray:
    """Edge weights that share each centre's slots left at its k-th distance among the
    neighbours tied there (see ``GraphConfig.tie_weights``).

    ``nl`` is a k-NN selection with ties kept, sorted by (centre, distance). A centre with at
    most k entries gets weight 1 everywhere; otherwise the entries closer than
    ``d_k - tie_tol`` get 1 and the ``t`` entries tied with the k-th share the ``s`` remaining
    slots, ``s / t`` each, so every centre's weights sum to k.
    """
    counts = np.bincount(nl.center, minlength=num_atoms)
    starts = np.cumsum(counts) - counts
    weights = np.ones(len(nl))
    crowded = counts > k
    if not crowded.any():
        return weights
    kth = np.full(num_atoms, np.inf)
    kth[crowded] = nl.distance[starts[crowded] + k - 1]
    tied = nl.distance >= kth[nl.center] - tie_tol
    tied_count = np.bincount(nl.center[tied], minlength=num_atoms)
    closer = counts - tied_count
    share = (k - closer) / np.maximum(tied_count, 1)
    weights[tied] = share[nl.center[tied]]
    return weights


def _initial_knn_radius(lattice: np.ndarray, num_atoms: int, k: int) -> float:
    """Radius expected to hold ~1.8 k neighbours at the cell's average density."""
    volume = abs(float(np.linalg.det(lattice)))
    density = num_atoms / volume
    return (3.0 * 1.8 * (k + 1) / (4.0 * math.pi * density)) ** (1.0 / 3.0) + 0.5


def alignn_grown_cutoff(lattice: np.ndarray, cutoff: float) -> float:
    """ALIGNN's rule for the next cutoff when an atom has too few neighbours."""
    longest = float(np.linalg.norm(lattice, axis=1).max())
    return longest if cutoff < longest else 2.0 * cutoff


def knn_neighbors(
    cart: np.ndarray,
    lattice: np.ndarray,
    k: int,
    cutoff: float,
    keep_ties: bool = False,
    grow_cutoff: bool = False,
    max_cutoff: float = 24.0,
    tie_tol: float = 1e-6,
    exact_search: bool = False,
) -> tuple[NeighborList, float]:
    """The ``k`` nearest neighbouring images of each atom within ``cutoff``.

    Semantics:

    * ``keep_ties=False``: exactly the k nearest (fewer if fewer lie within the cutoff); among
      neighbours tied with the k-th the earlier in (distance, search order) wins. This is
      CGCNN's ``sorted(get_all_neighbors(r))[:k]``.
    * ``keep_ties=True``: every neighbour with distance <= d_k + ``tie_tol``, as in jarvis
      ``nearest_neighbor_edges`` (which compares floats exactly; the tolerance makes symmetry-
      equivalent neighbours survive rounding, so the graph does not depend on orientation).
    * ``grow_cutoff=True``: while the atom with fewest neighbours has fewer than k, the cutoff
      grows by :func:`alignn_grown_cutoff` (jarvis' rule), never beyond ``max_cutoff``.
    * The cutoff is inclusive up to ``tie_tol``: a neighbour at ``cutoff + tie_tol`` is in. The
      grown cutoff is a lattice length, so an atom's own images lie exactly on it; without the
      tolerance, rounding (a rotation of the crystal) decides whether they are neighbours.

    The search first uses a radius sized from the cell's density and widens it only where an
    atom's selection is not provably complete, which gives exactly the same result as one
    search at ``cutoff`` at a fraction of the cost, up to the order of neighbours tied at the
    k-th distance. ``exact_search=True`` makes one search at exactly ``cutoff`` (no tolerance),
    which is ``Structure.get_neighbor_list(cutoff)``: with ``keep_ties=False`` the reference
    CGCNN code's selection entry for entry, its tie-breaking included.

    Returns:
        The neighbour list and the cutoff finally in force.
    """
    num_atoms = cart.shape[0]
    if exact_search:
        if grow_cutoff:
            raise ValueError("exact_search searches one radius: it cannot grow the cutoff")
        nl, rank = _rank_within_center(radius_neighbors(cart, lattice, cutoff), num_atoms)
        return _knn_from_sorted(nl, rank, k, keep_ties, tie_tol, num_atoms)[0], cutoff
    while True:
        limit = cutoff + tie_tol
        radius = min(_initial_knn_radius(lattice, num_atoms, k), limit)
        while True:
            nl, rank = _rank_within_center(radius_neighbors(cart, lattice, radius), num_atoms)
            selected, complete_to = _knn_from_sorted(nl, rank, k, keep_ties, tie_tol, num_atoms)
            if radius >= limit or bool(np.all(complete_to < radius)):
                break
            radius = min(radius * 1.5, limit)
        if grow_cutoff and np.isinf(complete_to).any():
            # some atom has fewer than k neighbours within the cutoff: ALIGNN enlarges it
            grown = alignn_grown_cutoff(lattice, cutoff)
            if grown <= max_cutoff:
                cutoff = grown
                continue
        return selected, cutoff


def symmetrize(
    nl: NeighborList, num_atoms: int, duplicate_self_images: bool = False
) -> NeighborList:
    """Union of ``nl`` with its reverse: each (i, j, n) gets its (j, i, -n), no duplicates.

    ``duplicate_self_images`` reproduces jarvis-tools' ``build_undirected_edgedata`` (upstream
    ALIGNN's graphs) for bonds from an atom to its own periodic image: jarvis stores the
    selected images of the pair (i, i) in one set and emits both i -> i(n) and i -> i(-n) for
    each, so i -> i(n) appears once for each of n and -n that the k-NN selection kept
    (usually twice). Bonds between different atoms are unaffected.
    """
    if duplicate_self_images:
        return _symmetrize_as_jarvis(nl)
    center = np.concatenate([nl.center, nl.neighbor])
    neighbor = np.concatenate([nl.neighbor, nl.center])
    offset = np.concatenate([nl.offset, -nl.offset])
    distance = np.concatenate([nl.distance, nl.distance])
    span = int(np.abs(offset).max(initial=0))
    base = 2 * span + 1
    key = (center * num_atoms + neighbor).astype(np.int64)
    for axis in range(3):
        key = key * base + (offset[:, axis] + span)
    _, first = np.unique(key, return_index=True)
    return NeighborList(center[first], neighbor[first], offset[first], distance[first])


def _symmetrize_as_jarvis(nl: NeighborList) -> NeighborList:
    """jarvis' ``canonize_edge`` + ``build_undirected_edgedata`` as a multiset: each selected
    (i, j, n) is stored once under (min, max) (swapping i and j negates n); every stored entry
    becomes the two bonds (u, v, n) and (v, u, -n)."""
    swap = nl.neighbor < nl.center
    u = np.where(swap, nl.neighbor, nl.center)
    v = np.where(swap, nl.center, nl.neighbor)
    n = np.where(swap[:, None], -nl.offset, nl.offset)
    stored = np.unique(np.column_stack([u, v, n]), axis=0, return_index=True)[1]
    u, v, n, distance = u[stored], v[stored], n[stored], nl.distance[stored]
    return NeighborList(
        np.concatenate([u, v]),
        np.concatenate([v, u]),
        np.concatenate([n, -n]),
        np.concatenate([distance, distance]),
    )
