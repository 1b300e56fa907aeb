"""Checks that tests, and users adding a model or head, call on real structures:
:func:`assert_invariant` (rotation, translation, permutation, supercell, another unit cell),
:func:`assert_equivariant` (tensor heads: ``T -> R T R^T``) and :func:`assert_crystal_symmetric`
(a crystal's own symmetry operations leave its predicted tensors unchanged)."""

from matgnn.testing.invariance import (
    assert_crystal_symmetric,
    assert_equivariant,
    assert_invariant,
    crystal_symmetry_residuals,
    rotate_tensors,
    rotation_residuals,
)
from matgnn.testing.transforms import (
    other_cell,
    permuted,
    random_rotation,
    rotated,
    supercell,
    translated,
)

__all__ = [
    "assert_crystal_symmetric",
    "assert_equivariant",
    "assert_invariant",
    "crystal_symmetry_residuals",
    "other_cell",
    "permuted",
    "random_rotation",
    "rotate_tensors",
    "rotated",
    "rotation_residuals",
    "supercell",
    "translated",
]
