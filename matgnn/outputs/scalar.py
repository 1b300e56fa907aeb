"""Scalar regression output (formation energy, band gap, log moduli, ...)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor, nn

from matgnn.checkpoints.registry import register
from matgnn.checkpoints.safe_config import CLASS
from matgnn.outputs.base import Output
from matgnn.outputs.losses import REGRESSION_LOSSES


def _normalised(name: str):
    """A regression loss on targets divided by the head's fitted std (unit-free, so outputs of
    different units can be weighted against each other)."""
    function = REGRESSION_LOSSES[name]

    def loss(prediction: Tensor, target: Tensor, head: nn.Module) -> Tensor:
        std = head.normalizer.std.squeeze(-1)
        return function(prediction / std, target / std)

    return loss


@register("scalar_output")
@dataclass(frozen=True)
class ScalarOutput(Output):
    """One real number per crystal, from a :class:`~matgnn.heads.RegressionHead`.

    Losses ``mae``, ``mse``, ``huber`` in normalised units (divided by the fitted std);
    metrics MAE, RMSE and R² in physical units; a parity plot at test time.

    Args:
        element_reference: fit per-element reference values by least squares on the
            composition before standardising (see :class:`~matgnn.heads.TargetNormalizer`).
    """

    element_reference: bool = False

    losses: ClassVar = {name: _normalised(name) for name in REGRESSION_LOSSES}

    def head_config(self, template: Mapping[str, Any]) -> dict[str, Any]:
        if template.get(CLASS) != "regression_head":
            raise ValueError(
                f"output {self.name!r} needs a RegressionHead template, got {template}"
            )
        return {**template, "num_targets": 1}

    def fit(self, head: nn.Module, targets: Tensor, compositions: Tensor) -> None:
        head.normalizer.fit(
            targets.to(torch.float64), compositions, element_reference=self.element_reference
        )

    def point_predictions(self, predictions: np.ndarray) -> np.ndarray:
        """The predicted values alone, from reported predictions (here: as they are)."""
        return np.asarray(predictions)

    def baselines(self, train: Tensor, test: Tensor) -> dict[str, float]:
        """MAE of predicting the training mean for every test crystal."""
        return {"mae_predict_train_mean": float((test - train.mean()).abs().mean())}

    def metrics(self) -> dict[str, Any]:
        import torchmetrics  # imported when training, not by load_model (it imports pyplot)

        return {
            "mae": torchmetrics.MeanAbsoluteError(),
            "rmse": torchmetrics.MeanSquaredError(squared=False),
            "r2": torchmetrics.R2Score(),
        }

    def plot(
        self,
        ids: Sequence[str],
        targets: np.ndarray,
        predictions: np.ndarray,
        directory: Path,
        prefix: str,
    ) -> None:
        from matgnn.analysis.plots import parity_plot

        label = f"{self.name} ({self.units})" if self.units else self.name
        parity_plot(
            targets.reshape(-1),
            self.point_predictions(predictions).reshape(-1),
            directory / f"{prefix}_parity_{self.name}.png",
            label,
        )
