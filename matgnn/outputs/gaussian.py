"""Scalar regression with a predicted variance (mean-variance estimation)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from matgnn.checkpoints.registry import register
from matgnn.outputs.scalar import ScalarOutput

#: exponent of the beta-NLL (Seitzer et al., ICLR 2022): 0 is the plain Gaussian NLL, 1 weights
#: every crystal like an MSE; 0.5 is the paper's recommended middle.
BETA = 0.5


def _normalised_parts(prediction: Tensor, target: Tensor, head: nn.Module):
    std = head.normalizer.std.squeeze(-1)
    return prediction[..., 0] / std, target / std, prediction[..., 1] / std**2


def _gaussian_nll(prediction: Tensor, target: Tensor, head: nn.Module) -> Tensor:
    mean, target, variance = _normalised_parts(prediction, target, head)
    return F.gaussian_nll_loss(mean, target, variance, full=True)


def _beta_nll(prediction: Tensor, target: Tensor, head: nn.Module) -> Tensor:
    mean, target, variance = _normalised_parts(prediction, target, head)
    nll = 0.5 * ((target - mean) ** 2 / variance + variance.log())
    return (nll * variance.detach() ** BETA).mean()


@register("gaussian_output")
@dataclass(frozen=True)
class GaussianOutput(ScalarOutput):
    """One real number per crystal with its aleatoric variance, from a
    :class:`~matgnn.heads.RegressionHead` with ``variance=True``.

    The head emits ``[B, 2]`` (mean, variance); this output reports ``[B, 2]`` (mean, std), as
    columns ``predicted_<name>`` and ``std_<name>``. Losses, in units of the fitted target std:
    ``gaussian_nll`` (Nix & Weigend 1994; Lakshminarayanan et al. 2017) and ``beta_nll``
    (Seitzer et al. 2022: the NLL weighted by ``variance**0.5``, which keeps a hard crystal's
    large variance from switching off its mean's gradient). Metrics are those of the mean.
    """

    predicts_variance: ClassVar[bool] = True

    loss: str = "gaussian_nll"

    losses: ClassVar = {"gaussian_nll": _gaussian_nll, "beta_nll": _beta_nll}

    @classmethod
    def from_scalar(cls, output: ScalarOutput, loss: str = "gaussian_nll") -> GaussianOutput:
        """The same target with a variance head and the loss ``loss``
        (``uncertainty=mean_variance``)."""
        fields = {f.name: getattr(output, f.name) for f in dataclasses.fields(output)}
        return cls(**{**fields, "loss": loss})

    def head_config(self, template: Mapping[str, Any]) -> dict[str, Any]:
        return {**super().head_config(template), "variance": True}

    def present(self, raw: Tensor) -> Tensor:
        return torch.stack([raw[..., 0], raw[..., 1].sqrt()], dim=-1)

    def metric_inputs(self, prediction: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
        return prediction[..., 0], target

    def prediction_columns(self) -> list[str]:
        return [f"predicted_{self.name}", f"std_{self.name}"]

    def point_predictions(self, predictions: np.ndarray) -> np.ndarray:
        return np.asarray(predictions)[..., 0]
