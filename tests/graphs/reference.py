"""Brute-force references the tests compare the fast code against."""

from __future__ import annotations

import itertools

import numpy as np
from pymatgen.core import Structure


def image_range(lattice: np.ndarray, cutoff: float) -> int:
    """Images needed on each axis: cutoff over the smallest interplanar spacing, plus one."""
    volume = abs(np.linalg.det(lattice))
    spacings = [
        volume / np.linalg.norm(np.cross(lattice[(i + 1) % 3], lattice[(i + 2) % 3]))
        for i in range(3)
    ]
    return int(np.ceil(cutoff / min(spacings))) + 1


def brute_force_neighbors(structure: Structure, cutoff: float) -> set[tuple]:
    """{(center, neighbor, n1, n2, n3)} over an explicit shell of images, by double loop."""
    lattice = structure.lattice.matrix
    frac = structure.frac_coords
    n = image_range(lattice, cutoff + np.abs(frac).max() * np.linalg.norm(lattice, axis=1).max())
    images = np.array(list(itertools.product(range(-n, n + 1), repeat=3)))
    cart = frac @ lattice
    shifts = images @ lattice
    found = set()
    for i in range(len(structure)):
        for j in range(len(structure)):
            d = np.linalg.norm(cart[j] + shifts - cart[i], axis=1)
            for k in np.flatnonzero((d <= cutoff) & (d > 1e-8)):
                found.add((i, j, *images[k].tolist()))
    return found


def distance_of(structure: Structure, entry: tuple) -> float:
    i, j, *n = entry
    lattice = structure.lattice.matrix
    return float(
        np.linalg.norm((structure.frac_coords[j] + n - structure.frac_coords[i]) @ lattice)
    )


def per_atom_distances(
    center: np.ndarray, dist: np.ndarray, num_atoms: int, decimals: int = 6
) -> list[tuple[float, ...]]:
    """Sorted neighbour distances of each atom, rounded, as a list indexed by atom."""
    return [tuple(np.round(np.sort(dist[center == i]), decimals)) for i in range(num_atoms)]
