"""Equivariant per-atom rank-2 tensor head (e.g. Born effective charges) on an e3nn backbone."""

from __future__ import annotations

import torch
from torch import Tensor

from matgnn.checkpoints.registry import register
from matgnn.heads.tensor import TensorHead
from matgnn.models.interfaces import FeatureSpec, NodeFeatures
from matgnn.nn.pooling import pool


@register("atom_tensor_head")
class AtomTensorHead(TensorHead):
    """Map each atom's equivariant features linearly to the irreps of a Cartesian tensor and
    return one 3x3 matrix per atom (no pooling).

    ``formula="ij"`` is a general tensor (``0e + 1e + 2e``, Born effective charges Z*);
    ``"ij=ji"`` a symmetric one. With ``sum_rule=True`` each crystal's mean tensor is
    subtracted, so that the tensors of a crystal sum to zero exactly (the acoustic sum rule
    ``sum_k Z*_k = 0``); the subtraction is linear, so equivariance is kept:
    ``Z_k -> R Z_k R^T`` under a rotation R, and a permutation of atoms permutes the outputs.

    Args:
        features: what the backbone emits; must carry irreps (an equivariant backbone).
        formula: e3nn ``CartesianTensor`` index formula.
        sum_rule: enforce a zero sum over each crystal's atoms.
        hidden: irreps of one gated equivariant layer on each atom's features first (see
            :class:`TensorHead`); ``None``: the linear map alone.
        square: irreps of each atom's tensor square appended to its irreps (see
            :class:`TensorHead`); ``None``: none.

    Shapes:
        NodeFeatures -> ``[N, 3, 3]``.
    """

    def __init__(
        self,
        features: FeatureSpec,
        formula: str = "ij",
        sum_rule: bool = True,
        hidden: str | None = None,
        square: str | None = None,
    ) -> None:
        super().__init__(features, formula, hidden, square)
        self.sum_rule = sum_rule

    def forward(self, features: NodeFeatures) -> Tensor:
        irreps = self.linear(self.atom_irreps(features))
        if self.sum_rule:
            mean = pool(irreps, features.batch, features.num_crystals, "mean")
            return self.to_cartesian(self.scale * (irreps - mean.index_select(0, features.batch)))
        return self.to_cartesian(self.scale * irreps + self.mean_irreps)

    @torch.no_grad()
    def fit(self, targets: Tensor) -> None:
        """``scale`` = RMS of the per-atom targets ``[sum N, 3, 3]`` around their isotropic
        mean (kept at 0 with ``sum_rule``, where every crystal's mean is 0)."""
        if not self.sum_rule:
            super().fit(targets)
            return
        rms = targets.to(torch.float64).pow(2).mean().sqrt()
        self.mean_irreps.zero_()
        self.scale.copy_(rms if rms > 0 else torch.ones_like(rms))
