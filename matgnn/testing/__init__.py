"""Checks that tests, and users adding a model or head, call on real structures:
:func:`assert_invariant` (rotation, translation, permutation, supercell, another unit cell) and
:func:`assert_equivariant` (tensor heads: ``T -> R T R^T``)."""

from matgnn.testing.invariance import assert_equivariant, assert_invariant
from matgnn.testing.transforms import (
    other_cell,
    permuted,
    random_rotation,
    rotated,
    supercell,
    translated,
)

__all__ = [
    "assert_equivariant",
    "assert_invariant",
    "other_cell",
    "permuted",
    "random_rotation",
    "rotated",
    "supercell",
    "translated",
]
