"""Elastic tensors: Voigt <-> Cartesian (with the Voigt factors), rotation, and the
Voigt-Reuss-Hill bulk and shear moduli.

Voigt pairs ``11 22 33 23 13 12 -> 1..6`` (0-based ``0..5``). A stiffness tensor maps without
factors, ``C_ijkl = C_IJ``. A compliance tensor carries them, ``S_ijkl = S_IJ / (f_I f_J)`` with
``f = 1`` for ``I <= 3`` and ``2`` otherwise, because engineering shear strains are twice the
tensor components (Nye, Physical Properties of Crystals, 1985, ch. VIII). Both Cartesian forms
have the minor (``ijkl = jikl = ijlk``) and major (``ijkl = klij``) symmetries: 21 independent
components, the irreps ``2x0e + 2x2e + 4e`` of O(3).

Moduli (Hill, Proc. Phys. Soc. A 65, 349 (1952)), in the units of the tensor (GPa in
matminer's ``elastic_tensor_2015``):

* ``K_V = [(C11 + C22 + C33) + 2 (C12 + C23 + C31)] / 9``
* ``G_V = [(C11 + C22 + C33) - (C12 + C23 + C31) + 3 (C44 + C55 + C66)] / 15``
* ``K_R = 1 / [(S11 + S22 + S33) + 2 (S12 + S23 + S31)]``
* ``G_R = 15 / [4 (S11 + S22 + S33) - 4 (S12 + S23 + S31) + 3 (S44 + S55 + S66)]``
* ``K_VRH = (K_V + K_R) / 2``, ``G_VRH = (G_V + G_R) / 2``, with ``S = C^-1`` (Voigt).

pymatgen maintains the same quantities for one tensor at a time
(:class:`pymatgen.core.elasticity.ElasticTensor`: ``from_voigt``, ``voigt``, ``k_voigt`` ...
``g_vrh``; :class:`~pymatgen.core.elasticity.ComplianceTensor` with the factors above).
:func:`rotate` is pymatgen's (:meth:`pymatgen.core.operations.SymmOp.transform_tensor`). The
Voigt <-> Cartesian maps and :func:`vrh_moduli` stay vectorised here: the tensor benchmark table
applies them to whole ``[N, 6, 6]`` arrays of predictions (the data loader to every crystal),
and pymatgen takes one tensor at a time through a Python loop over the 81 components (three
compliance inversions for ``g_reuss`` alone). On the 150 shipped tensors pymatgen took 700-1700
times as long as one batched conversion and 1700-3300 times for the six moduli (14-28 and 60-100
times one tensor per call; two runs of ``benchmarks/physics_helpers.py``).
``tests/test_elasticity.py`` checks both against pymatgen's on those tensors.
"""

from __future__ import annotations

import numpy as np
from pymatgen.core.operations import SymmOp

#: Voigt index of each Cartesian pair (i, j)
VOIGT = np.array([[0, 5, 4], [5, 1, 3], [4, 3, 2]])
#: the Cartesian pair of each Voigt index
PAIRS = ((0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1))
KINDS = ("stiffness", "compliance")


def _factors(kind: str) -> np.ndarray:
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    f = np.array([1.0, 1.0, 1.0, 2.0, 2.0, 2.0]) if kind == "compliance" else np.ones(6)
    return np.outer(f, f)


def voigt_to_cartesian(voigt: np.ndarray, kind: str = "stiffness") -> np.ndarray:
    """``[..., 6, 6]`` -> ``[..., 3, 3, 3, 3]``."""
    voigt = np.asarray(voigt, dtype=float)
    if voigt.shape[-2:] != (6, 6):
        raise ValueError(f"a Voigt tensor is 6x6, got shape {voigt.shape}")
    scaled = voigt / _factors(kind)
    return scaled[..., VOIGT[:, :, None, None], VOIGT[None, None, :, :]]


def cartesian_to_voigt(tensor: np.ndarray, kind: str = "stiffness") -> np.ndarray:
    """``[..., 3, 3, 3, 3]`` -> ``[..., 6, 6]`` (reads one component of each symmetric set)."""
    tensor = np.asarray(tensor, dtype=float)
    if tensor.shape[-4:] != (3, 3, 3, 3):
        raise ValueError(f"a Cartesian elastic tensor is 3x3x3x3, got shape {tensor.shape}")
    rows = np.array([p[0] for p in PAIRS])
    cols = np.array([p[1] for p in PAIRS])
    voigt = tensor[..., rows[:, None], cols[:, None], rows[None, :], cols[None, :]]
    return voigt * _factors(kind)


def rotate(tensor: np.ndarray, rotation: np.ndarray) -> np.ndarray:
    """``C'_ijkl = R_ia R_jb R_kc R_ld C_abcd`` for a Cartesian ``[..., 3, 3, 3, 3]`` tensor:
    pymatgen's :meth:`~pymatgen.core.operations.SymmOp.transform_tensor` on each tensor (no
    check that ``rotation`` is orthogonal, as for a crystal's own operations within
    ``symprec``)."""
    tensor = np.asarray(tensor, dtype=float)
    if tensor.shape[-4:] != (3, 3, 3, 3):
        raise ValueError(f"a Cartesian elastic tensor is 3x3x3x3, got shape {tensor.shape}")
    operation = SymmOp.from_rotation_and_translation(np.asarray(rotation, dtype=float))
    flat = tensor.reshape(-1, 3, 3, 3, 3)
    turned = np.stack([operation.transform_tensor(t) for t in flat])
    return turned.reshape(tensor.shape)


def symmetry_error(voigt: np.ndarray) -> np.ndarray:
    """Largest ``|C_IJ - C_JI|`` of each ``[..., 6, 6]`` Voigt matrix (its major symmetry)."""
    voigt = np.asarray(voigt, dtype=float)
    return np.abs(voigt - np.swapaxes(voigt, -1, -2)).max(axis=(-1, -2))


def vrh_moduli(stiffness_voigt: np.ndarray) -> dict[str, np.ndarray]:
    """Voigt, Reuss and Hill bulk and shear moduli of ``[..., 6, 6]`` stiffness matrices:
    ``{"K_V", "K_R", "K_VRH", "G_V", "G_R", "G_VRH"}``, each ``[...]``."""
    c = np.asarray(stiffness_voigt, dtype=float)
    s = np.linalg.inv(c)
    d, o, sh = (0, 1, 2), ((0, 1), (1, 2), (2, 0)), (3, 4, 5)

    def diag(m):
        return sum(m[..., i, i] for i in d)

    def off(m):
        return sum(m[..., i, j] for i, j in o)

    def shear(m):
        return sum(m[..., i, i] for i in sh)

    k_v = (diag(c) + 2 * off(c)) / 9
    g_v = (diag(c) - off(c) + 3 * shear(c)) / 15
    k_r = 1 / (diag(s) + 2 * off(s))
    g_r = 15 / (4 * diag(s) - 4 * off(s) + 3 * shear(s))
    return {
        "K_V": k_v,
        "K_R": k_r,
        "K_VRH": (k_v + k_r) / 2,
        "G_V": g_v,
        "G_R": g_r,
        "G_VRH": (g_v + g_r) / 2,
    }
