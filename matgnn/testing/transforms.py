"""Descriptions of the same crystal that a model must not tell apart (site properties, such
as prototype site labels, travel with their atoms)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pymatgen.core import Structure
from scipy.spatial.transform import Rotation


def random_rotation(seed: int) -> np.ndarray:
    """A random proper rotation matrix (det +1), seeded."""
    return Rotation.random(random_state=seed).as_matrix()


def rotated(structure: Structure, rotation: np.ndarray) -> Structure:
    """The same crystal with lattice rows (and so every Cartesian position) rotated:
    ``r -> R r``."""
    lattice = np.asarray(structure.lattice.matrix) @ np.asarray(rotation).T
    return Structure(
        lattice, structure.species, structure.frac_coords, site_properties=structure.site_properties
    )


def translated(structure: Structure, shift: Sequence[float]) -> Structure:
    """Every atom moved by a Cartesian ``shift`` and wrapped back into the cell."""
    moved = structure.copy()
    moved.translate_sites(list(range(len(moved))), shift, frac_coords=False, to_unit_cell=True)
    return moved


def permutation(num_atoms: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).permutation(num_atoms)


def permuted(structure: Structure, seed: int) -> Structure:
    """The atoms listed in another (seeded) order: atom ``k`` of the result is atom
    ``permutation(len(structure), seed)[k]`` of the input."""
    order = permutation(len(structure), seed)
    properties = {k: [v[i] for i in order] for k, v in structure.site_properties.items()}
    return Structure(
        structure.lattice,
        [structure.species[i] for i in order],
        structure.frac_coords[order],
        site_properties=properties,
    )


def other_cell(structure: Structure, basis: Sequence[Sequence[int]] | None = None) -> Structure:
    """The same crystal in another unit cell, lattice ``basis @ L`` for a unimodular integer
    ``basis`` (default a shear), atoms wrapped in."""
    basis = np.array([[1, 1, 0], [0, 1, 0], [1, 0, 1]] if basis is None else basis)
    if round(abs(np.linalg.det(basis))) != 1:
        raise ValueError(f"other_cell: basis {basis.tolist()} is not unimodular")
    lattice = basis @ structure.lattice.matrix
    return Structure(
        lattice,
        structure.species,
        structure.cart_coords,
        coords_are_cartesian=True,
        to_unit_cell=True,
        site_properties=structure.site_properties,
    )


def supercell(structure: Structure, scaling: Sequence[int] = (2, 1, 1)) -> Structure:
    """A diagonal supercell (``structure * scaling``)."""
    return structure * tuple(scaling)
