"""Losses by name: regression (MAE, MSE, Huber) and spectra such as the phonon DOS.

Spectral losses take ``[B, K]`` non-negative spectra on a common grid:

* ``mse`` / ``mae``: per bin (Chen et al. 2021 train the max-normalised DOS with MSE).
* ``emd``: the earth mover's (Wasserstein-1) distance between the spectra normalised to unit
  area, i.e. the mean absolute difference of their cumulative sums, in bins. It penalises a
  peak in the wrong place by how far it is off, which per-bin losses do not.
* ``cosine``: ``1 - cos(prediction, target)``, blind to the overall scale.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

REGRESSION_LOSSES: dict[str, Callable[[Tensor, Tensor], Tensor]] = {
    "mae": F.l1_loss,
    "mse": F.mse_loss,
    "huber": F.huber_loss,
}


def earth_movers_distances(prediction: Tensor, target: Tensor, eps: float = 1e-8) -> Tensor:
    """Per-crystal 1-D Wasserstein-1 distance (in bins) between area-normalised spectra.

    Shapes:
        prediction, target: ``[B, K]`` -> ``[B]``.
    """
    p = prediction / prediction.sum(-1, keepdim=True).clamp_min(eps)
    q = target / target.sum(-1, keepdim=True).clamp_min(eps)
    return (torch.cumsum(p, -1) - torch.cumsum(q, -1)).abs().sum(-1)


def earth_movers_distance(prediction: Tensor, target: Tensor, eps: float = 1e-8) -> Tensor:
    """Mean over crystals of :func:`earth_movers_distances` (a loss).

    Shapes:
        prediction, target: ``[B, K]`` -> scalar.
    """
    return earth_movers_distances(prediction, target, eps).mean()


def cosine_loss(prediction: Tensor, target: Tensor) -> Tensor:
    """Mean of ``1 - cos`` between each predicted and target spectrum."""
    return (1.0 - F.cosine_similarity(prediction, target, dim=-1)).mean()


SPECTRUM_LOSSES: dict[str, Callable[[Tensor, Tensor], Tensor]] = {
    "mse": F.mse_loss,
    "mae": F.l1_loss,
    "emd": earth_movers_distance,
    "cosine": cosine_loss,
}
