"""Metrics of our own: the torchmetrics library has no spectrum or tensor-norm metric."""

from __future__ import annotations

import torch
import torchmetrics
from torch import Tensor

from matgnn.outputs.losses import earth_movers_distances


class _PerItemMean(torchmetrics.Metric):
    """Mean of a per-item quantity, accumulated in float64 over batches and processes."""

    def __init__(self) -> None:
        super().__init__()
        self.add_state(
            "total", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum"
        )
        self.add_state("count", default=torch.tensor(0), dist_reduce_fx="sum")

    def per_item(self, prediction: Tensor, target: Tensor) -> Tensor:
        raise NotImplementedError

    def update(self, prediction: Tensor, target: Tensor) -> None:
        values = self.per_item(prediction, target)
        self.total += values.double().sum()
        self.count += values.numel()

    def compute(self) -> Tensor:
        return self.total / self.count


class EarthMoversDistance(_PerItemMean):
    """Mean per-crystal Wasserstein-1 distance (in bins) of area-normalised spectra [B, K]."""

    def per_item(self, prediction: Tensor, target: Tensor) -> Tensor:
        return earth_movers_distances(prediction, target)


class RelativeFrobeniusError(_PerItemMean):
    """Mean of ``||P - T||_F / ||T||_F`` over items (tensors ``[B, 3, 3]``)."""

    def per_item(self, prediction: Tensor, target: Tensor) -> Tensor:
        difference = (prediction - target).flatten(1).norm(dim=1)
        return difference / target.flatten(1).norm(dim=1).clamp_min(1e-12)


class ComponentError(torchmetrics.Metric):
    """Mean absolute (``squared=False``) or root-mean-square (``squared=True``) error over the
    components of tensors ``[B, 3, ..., 3]``, or over the flat components ``index`` only (the
    21 independent components of an elastic tensor, not its 81 Cartesian ones)."""

    def __init__(self, index: Tensor | None = None, squared: bool = False) -> None:
        super().__init__()
        self.squared = squared
        self.index = None if index is None else torch.as_tensor(index, dtype=torch.long)
        self.add_state(
            "total", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum"
        )
        self.add_state("count", default=torch.tensor(0), dist_reduce_fx="sum")

    def update(self, prediction: Tensor, target: Tensor) -> None:
        difference = (prediction - target).flatten(1)
        if self.index is not None:
            difference = difference[:, self.index.to(difference.device)]
        values = difference.pow(2) if self.squared else difference.abs()
        self.total += values.double().sum()
        self.count += values.numel()

    def compute(self) -> Tensor:
        mean = self.total / self.count
        return mean.sqrt() if self.squared else mean
