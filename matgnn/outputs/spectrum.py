"""Spectrum output: a vector on a fixed grid per crystal (the phonon DOS of Chen et al.)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from torch import Tensor, nn

from matgnn.checkpoints.registry import register
from matgnn.checkpoints.safe_config import CLASS, PARTIAL
from matgnn.outputs.base import Output
from matgnn.outputs.losses import SPECTRUM_LOSSES


def _spectrum_loss(name: str):
    function = SPECTRUM_LOSSES[name]

    def loss(prediction: Tensor, target: Tensor, head: nn.Module) -> Tensor:
        return function(prediction, target)

    return loss


@register("spectrum_output")
@dataclass(frozen=True)
class SpectrumOutput(Output):
    """``num_bins`` non-negative values per crystal from a :class:`~matgnn.heads.VectorHead`.

    Losses ``mse``, ``mae`` (per bin), ``emd`` (Wasserstein-1 of area-normalised spectra),
    ``cosine``; metrics MAE, RMSE (per bin) and EMD (in bins); a plot of 12 test spectra.

    Args:
        num_bins: vector length.
        normalize: the head's per-crystal normalisation (``max``, ``sum`` or ``none``).
        grid_start: x value of the first bin (for plots).
        grid_stop: x value of the last bin.
        grid_label: x-axis label of the plots.
    """

    loss: str = "mse"
    num_bins: int = 51
    normalize: str = "max"
    grid_start: float = 0.0
    grid_stop: float = 1.0
    grid_label: str = "bin"

    losses: ClassVar = {name: _spectrum_loss(name) for name in SPECTRUM_LOSSES}

    @property
    def value_shape(self) -> tuple[int, ...]:
        return (self.num_bins,)

    def grid(self) -> np.ndarray:
        return np.linspace(self.grid_start, self.grid_stop, self.num_bins)

    def head_config(self, template: Mapping[str, Any]) -> dict[str, Any]:
        return {
            CLASS: "vector_head",
            PARTIAL: True,
            "num_bins": self.num_bins,
            "hidden": list(template.get("hidden", [])),
            "activation": "Softplus",
            "normalize": self.normalize,
            **({"dropout": template["dropout"]} if "dropout" in template else {}),
        }

    def metrics(self) -> dict[str, Any]:
        import torchmetrics  # imported when training, not by load_model (it imports pyplot)

        from matgnn.outputs.metrics import EarthMoversDistance

        return {
            "mae": torchmetrics.MeanAbsoluteError(),
            "rmse": torchmetrics.MeanSquaredError(squared=False),
            "emd": EarthMoversDistance(),
        }

    def columns(self) -> list[str]:
        return [f"{self.name}_{k}" for k in range(self.num_bins)]

    def plot(
        self,
        ids: Sequence[str],
        targets: np.ndarray,
        predictions: np.ndarray,
        directory: Path,
        prefix: str,
    ) -> None:
        from matgnn.analysis.plots import dos_plot

        path = directory / f"{prefix}_{self.name}.png"
        dos_plot(self.grid(), targets, predictions, list(ids), path, xlabel=self.grid_label)
