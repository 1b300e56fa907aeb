"""Does a tensor property sit in its structure's frame? A crystal's own symmetry operations must
leave it unchanged: ``R T R^T = T`` for a rank-2 tensor, ``R_ia R_jb R_kc R_ld C_abcd = C_ijkl``
for a rank-4 one (Neumann's principle). A tensor given in another frame (the IEEE frame of the
piezoelectric set, say) fails this test for every crystal whose point group does not contain
the rotation between the two frames.

The operations are spglib's through pymatgen, and each is applied by pymatgen
(:meth:`~pymatgen.core.operations.SymmOp.transform_tensor`). The verdict is not pymatgen's
:meth:`~pymatgen.core.tensors.Tensor.is_fit_to_structure`, which compares the tensor with its
average over the operations, with an absolute tolerance and ``symprec=0.1``: the residual here is
the worst single operation's change, relative to the tensor's size, so that one threshold serves
tensors in GPa and dimensionless ones. Over the same operations it bounds pymatgen's deviation
from the average (``|T - <RT>| <= max_R |T - RT|``, so a tensor passing here is within the same
relative tolerance of ``Tensor.fit_to_structure(structure, symprec)``), and it is at most
``1 + sqrt(3^rank)`` times that deviation; ``tests/test_tensor_symmetry.py`` checks both bounds,
and pymatgen's own verdict, on the shipped real tensors.
"""

from __future__ import annotations

import numpy as np
from pymatgen.core import Structure
from pymatgen.core.operations import SymmOp
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer


def cartesian_rotations(structure: Structure, symprec: float = 0.01) -> np.ndarray:
    """The rotation parts ``[K, 3, 3]`` of the crystal's symmetry operations, in the Cartesian
    frame of ``structure`` (spglib through pymatgen, tolerance ``symprec`` Å)."""
    operations = SpacegroupAnalyzer(structure, symprec=symprec).get_symmetry_operations(
        cartesian=True
    )
    return np.array([op.rotation_matrix for op in operations])


def transformed(tensor: np.ndarray, rotation: np.ndarray) -> np.ndarray:
    """A Cartesian rank-2 ``[3, 3]`` or rank-4 ``[3, 3, 3, 3]`` tensor rotated by ``rotation``."""
    tensor = np.asarray(tensor, dtype=float)
    if tensor.shape not in ((3, 3), (3, 3, 3, 3)):
        raise ValueError(f"a rank-2 (3x3) or rank-4 (3x3x3x3) tensor, got shape {tensor.shape}")
    operation = SymmOp.from_rotation_and_translation(np.asarray(rotation, dtype=float))
    return operation.transform_tensor(tensor)


def symmetry_residual(tensor: np.ndarray, rotations: np.ndarray) -> float:
    """Largest change of any component under the crystal's operations, relative to the
    tensor's largest component (0 for a tensor in the structure's frame)."""
    tensor = np.asarray(tensor, dtype=float)
    size = float(np.abs(tensor).max())
    if size == 0.0:
        return 0.0
    return max(float(np.abs(transformed(tensor, r) - tensor).max()) for r in rotations) / size
