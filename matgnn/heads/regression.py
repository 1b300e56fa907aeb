"""Scalar and multi-target regression head, optionally with a predicted variance."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from matgnn.checkpoints.registry import register
from matgnn.heads.normalizer import TargetNormalizer
from matgnn.models.interfaces import FeatureSpec, Head, NodeFeatures
from matgnn.nn.mlp import activation as make_activation
from matgnn.nn.mlp import mlp
from matgnn.nn.pooling import pool

#: floor of a predicted variance, in normalised units (keeps the Gaussian NLL finite)
MIN_VARIANCE = 1e-6


@register("regression_head")
class RegressionHead(Head):
    """Pool, then an MLP, then de-normalise: one or ``num_targets`` real values per crystal.

    ``readout="mean"`` (intensive targets, the default) pools the atom features first and applies
    the MLP to the crystal vector, as CGCNN, ALIGNN, Matformer and PotNet do.
    ``readout="sum"`` (extensive targets) applies the MLP to every atom and sums the
    de-normalised atom contributions, so the output scales exactly with a supercell.

    With ``variance=True`` (mean-variance estimation, Nix & Weigend 1994; Lakshminarayanan et
    al. 2017) the MLP also emits a variance per target,
    ``var = (softplus(raw) + 1e-6) * std**2`` in physical units (for ``sum`` readout the atom
    variances add up, as for independent contributions); train it with the Gaussian NLL
    (:class:`~matgnn.outputs.GaussianOutput`).

    Args:
        features: what the backbone emits (filled in by :class:`CrystalModel`).
        num_targets: output columns; 1 gives shape ``[B]``, more give ``[B, num_targets]``.
        hidden: widths of the hidden layers of the MLP (``()`` is a single ``Linear``).
        activation: ``torch.nn`` activation class name.
        activate_input: apply the activation to the pooled features first (CGCNN does).
        readout: ``"mean"`` or ``"sum"``.
        dropout: dropout probability before every ``Linear`` of the MLP (MC dropout).
        variance: also predict a variance per target.

    Shapes:
        NodeFeatures -> ``[B]`` or ``[B, num_targets]``; with ``variance`` a trailing axis of
        2 (mean, variance): ``[B, 2]`` or ``[B, num_targets, 2]``.
    """

    def __init__(
        self,
        features: FeatureSpec,
        num_targets: int = 1,
        hidden: Sequence[int] = (),
        activation: str = "SiLU",
        activate_input: bool = False,
        readout: str = "mean",
        dropout: float = 0.0,
        variance: bool = False,
    ) -> None:
        super().__init__()
        self.num_targets = num_targets
        self.readout = readout
        self.variance = variance
        self.input_activation = make_activation(activation) if activate_input else nn.Identity()
        width = num_targets * (2 if variance else 1)
        self.mlp = mlp([features.scalar_features, *hidden, width], act=activation, dropout=dropout)
        self.normalizer = TargetNormalizer(num_targets, extensive=readout == "sum")

    def _split(self, raw: Tensor) -> tuple[Tensor, Tensor | None]:
        if not self.variance:
            return raw, None
        mean, spread = raw.split(self.num_targets, dim=-1)
        return mean, (F.softplus(spread) + MIN_VARIANCE) * self.normalizer.std**2

    def forward(self, features: NodeFeatures) -> Tensor:
        z, b, n = features.atomic_numbers, features.batch, features.num_crystals
        if self.readout == "sum":
            per_atom, variance = self._split(self.mlp(self.input_activation(features.scalars)))
            out = pool(self.normalizer.denormalize_atoms(per_atom, z), b, n, "sum")
            variance = None if variance is None else pool(variance, b, n, "sum")
        else:
            pooled = pool(features.scalars, b, n, self.readout)
            raw, variance = self._split(self.mlp(self.input_activation(pooled)))
            out = self.normalizer.denormalize_crystals(raw, z, b, n)
        if variance is not None:
            out = torch.stack([out, variance], dim=-1)
        return out.squeeze(1) if self.num_targets == 1 else out
