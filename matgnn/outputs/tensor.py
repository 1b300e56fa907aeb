"""Cartesian tensor outputs: a 3x3 tensor per crystal (dielectric) or per atom (Born charges),
and a 4th-rank elastic tensor per crystal."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from matgnn.analysis.elasticity import PAIRS
from matgnn.checkpoints.registry import register
from matgnn.checkpoints.safe_config import CLASS, PARTIAL
from matgnn.outputs.base import Output

COMPONENTS = ("xx", "xy", "xz", "yx", "yy", "yz", "zx", "zy", "zz")
_FUNCTIONS = {"mse": F.mse_loss, "mae": F.l1_loss}


@functools.cache
def formula_irreps(formula: str) -> str:
    """The irreps of an e3nn ``CartesianTensor`` formula (building one reduces the tensor
    product: 0.2 s for rank 4, so once per formula)."""
    from e3nn.io import CartesianTensor

    return str(CartesianTensor(formula))


def isotropic_part(tensors: Tensor) -> Tensor:
    """The rotation-invariant part of ``[M, 3, 3]`` tensors (``trace/3 I``) or of ``[M, 3, 3, 3,
    3]`` elastic tensors (``lambda d_ij d_kl + mu (d_ik d_jl + d_il d_jk)`` with the Voigt
    averages ``K_V = C_iijj / 9``, ``G_V = (3 C_ijij - C_iijj) / 30``, ``lambda = K_V - 2 G_V /
    3``, ``mu = G_V``)."""
    eye = torch.eye(3, dtype=tensors.dtype, device=tensors.device)
    if tensors.dim() == 3:
        trace = torch.diagonal(tensors, dim1=-2, dim2=-1).sum(-1)
        return (trace / 3)[:, None, None] * eye
    a = torch.einsum("miijj->m", tensors)
    b = torch.einsum("mijij->m", tensors)
    bulk, shear = a / 9, (3 * b - a) / 30
    lame = bulk - 2 * shear / 3
    dd = torch.einsum("ij,kl->ijkl", eye, eye)
    sym = torch.einsum("ik,jl->ijkl", eye, eye) + torch.einsum("il,jk->ijkl", eye, eye)
    return lame[:, None, None, None, None] * dd + shear[:, None, None, None, None] * sym


def _scaled(name: str):
    """Component loss divided by the head's fitted scale (so it is unit-free)."""
    function = _FUNCTIONS[name]

    def loss(prediction: Tensor, target: Tensor, head: nn.Module) -> Tensor:
        return function(prediction / head.scale, target / head.scale)

    return loss


@register("tensor_output")
@dataclass(frozen=True)
class TensorOutput(Output):
    """A Cartesian 3x3 tensor per crystal from a :class:`~matgnn.heads.TensorHead` (needs an
    equivariant backbone). Targets and predictions are in the structure's Cartesian frame.

    Losses ``mse``/``mae`` over the 9 components divided by the head's fitted scale; metrics
    component MAE and RMSE and the mean relative Frobenius error; columns ``<name>_xx`` ...
    ``<name>_zz``.

    Args:
        symmetric: a symmetric tensor (irreps ``0e + 2e``, e.g. the dielectric tensor) or a
            general one (``0e + 1e + 2e``).
    """

    loss: str = "mse"
    symmetric: bool = True

    losses: ClassVar = {name: _scaled(name) for name in _FUNCTIONS}

    @property
    def value_shape(self) -> tuple[int, ...]:
        return (3, 3)

    @property
    def formula(self) -> str:
        return "ij=ji" if self.symmetric else "ij"

    def head_config(self, template: Mapping[str, Any]) -> dict[str, Any]:
        return {CLASS: "tensor_head", PARTIAL: True, "formula": self.formula}

    @property
    def irreps(self) -> str:
        """The irreps its head needs from the backbone (``model.backbone.irreps_out``)."""
        return formula_irreps(self.formula)

    def fit(self, head: nn.Module, targets: Tensor, compositions: Tensor) -> None:
        head.fit(targets.to(torch.float64))

    def baselines(self, train: Tensor, test: Tensor) -> dict[str, float]:
        """Component MAE and relative Frobenius error of two trivial predictors: the training
        mean tensor, and each test tensor's own isotropic part (:func:`isotropic_part`; the
        best that a scalar-only model can do on these metrics)."""
        mean = train.mean(dim=0, keepdim=True).expand_as(test)
        return {
            **self._errors("train_mean", mean, test),
            **self._errors("own_isotropic_part", isotropic_part(test), test),
        }

    #: flat indices of the components that the MAE averages over (``None``: all)
    mae_index: ClassVar[tuple[int, ...] | None] = None

    def _errors(self, prefix: str, prediction: Tensor, target: Tensor) -> dict[str, float]:
        difference = (prediction - target).flatten(1)
        if self.mae_index is not None:
            selected = difference[:, list(self.mae_index)]
        else:
            selected = difference
        norms = target.flatten(1).norm(dim=1).clamp_min(1e-12)
        return {
            f"mae_{prefix}": float(selected.abs().mean()),
            f"frobenius_{prefix}": float((difference.norm(dim=1) / norms).mean()),
        }

    def metrics(self) -> dict[str, Any]:
        # imported when training, not by load_model (torchmetrics imports pyplot)
        from matgnn.outputs.metrics import ComponentError, RelativeFrobeniusError

        return {
            "mae": ComponentError(self.mae_index),
            "rmse": ComponentError(self.mae_index, squared=True),
            "frobenius": RelativeFrobeniusError(),
        }

    def columns(self) -> list[str]:
        return [f"{self.name}_{c}" for c in COMPONENTS]


@register("atom_tensor_output")
@dataclass(frozen=True)
class AtomTensorOutput(TensorOutput):
    """A Cartesian 3x3 tensor per atom from an :class:`~matgnn.heads.AtomTensorHead` (Born
    effective charges: general tensors, ``symmetric=False``). Reported one row per atom.

    Args:
        sum_rule: the head subtracts each crystal's mean tensor, so that the tensors of a
            crystal sum to zero exactly (the acoustic sum rule of Born charges).
    """

    symmetric: bool = False
    sum_rule: bool = True

    level: ClassVar[str] = "atom"

    def head_config(self, template: Mapping[str, Any]) -> dict[str, Any]:
        return {
            CLASS: "atom_tensor_head",
            PARTIAL: True,
            "formula": self.formula,
            "sum_rule": self.sum_rule,
        }


_UPPER = tuple((a, b) for a in range(6) for b in range(a, 6))


def _flat(a: int, b: int) -> int:
    (i, j), (k, m) = PAIRS[a], PAIRS[b]
    return ((i * 3 + j) * 3 + k) * 3 + m


@register("elastic_tensor_output")
@dataclass(frozen=True)
class ElasticTensorOutput(TensorOutput):
    """The 4th-rank elastic (stiffness) tensor per crystal, ``C_ijkl`` in the structure's
    Cartesian frame, from a :class:`~matgnn.heads.TensorHead` of formula ``ijkl=jikl=klij``
    (minor and major symmetries exact: 21 independent components, irreps ``2x0e + 2x2e + 4e``).

    Targets are stored Cartesian ``[3, 3, 3, 3]`` (the loader converts Voigt with
    :func:`matgnn.analysis.elasticity.voigt_to_cartesian`); the loss runs over the 81 Cartesian
    components
    (a Frobenius norm, the same in every frame); MAE and RMSE over the 21 independent Voigt
    components ``C_IJ``, ``I <= J``; reported as columns ``<name>_11 <name>_12 ... <name>_66``
    (Voigt, ``1..6 = xx yy zz yz xz xy``).
    """

    symmetric: bool = True

    mae_index: ClassVar[tuple[int, ...] | None] = tuple(_flat(a, b) for a, b in _UPPER)

    @property
    def value_shape(self) -> tuple[int, ...]:
        return (3, 3, 3, 3)

    @property
    def formula(self) -> str:
        return "ijkl=jikl=klij"

    def columns(self) -> list[str]:
        return [f"{self.name}_{a + 1}{b + 1}" for a, b in _UPPER]

    def target_values(self, target: np.ndarray) -> list[float]:
        return np.asarray(target, dtype=float).reshape(-1)[list(self.mae_index)].tolist()

    def prediction_values(self, prediction: np.ndarray) -> list[float]:
        return self.target_values(prediction)
