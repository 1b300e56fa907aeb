"""Rank-2 tensor outputs: one 3x3 tensor per crystal (dielectric) or per atom (Born charges)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from matgnn.outputs.base import Output

COMPONENTS = ("xx", "xy", "xz", "yx", "yy", "yz", "zx", "zy", "zz")
_FUNCTIONS = {"mse": F.mse_loss, "mae": F.l1_loss}


def _scaled(name: str):
    """Component loss divided by the head's fitted scale (so it is unit-free)."""
    function = _FUNCTIONS[name]

    def loss(prediction: Tensor, target: Tensor, head: nn.Module) -> Tensor:
        return function(prediction / head.scale, target / head.scale)

    return loss


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
        return {"_target_": "matgnn.heads.TensorHead", "_partial_": True, "formula": self.formula}

    def fit(self, head: nn.Module, targets: Tensor, compositions: Tensor) -> None:
        head.fit(targets.to(torch.float64))

    def metrics(self) -> dict[str, Any]:
        import torchmetrics  # imported when training, not by load_model (it imports pyplot)

        from matgnn.outputs.metrics import RelativeFrobeniusError

        return {
            "mae": torchmetrics.MeanAbsoluteError(),
            "rmse": torchmetrics.MeanSquaredError(squared=False),
            "frobenius": RelativeFrobeniusError(),
        }

    def columns(self) -> list[str]:
        return [f"{self.name}_{c}" for c in COMPONENTS]


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
            "_target_": "matgnn.heads.AtomTensorHead",
            "_partial_": True,
            "formula": self.formula,
            "sum_rule": self.sum_rule,
        }
