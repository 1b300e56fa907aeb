"""Vector head with non-negative bins: the phonon density of states of Chen et al. (2021)."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor

from matgnn.checkpoints.registry import register
from matgnn.models.interfaces import FeatureSpec, Head, NodeFeatures
from matgnn.nn.mlp import activation as make_activation
from matgnn.nn.mlp import mlp
from matgnn.nn.pooling import pool

NORMALIZATIONS = ("max", "sum", "none")


@register("vector_head")
class VectorHead(Head):
    """Per-atom MLP to ``num_bins`` values -> non-negative activation -> mean pool -> optional
    per-crystal normalisation.

    Chen et al.'s ``PeriodicNetwork`` applies ReLU per atom, mean-pools and divides by the
    maximum, so that every predicted DOS peaks at 1 like the targets. The default activation
    here is ``Softplus`` instead of ReLU: a ReLU output that is zero in every bin has no
    gradient and its max-normalisation is 0/0; ``activation="ReLU"`` restores the original.

    Args:
        features: what the backbone emits (filled in by :class:`CrystalModel`).
        num_bins: vector length (51 DOS bins in Chen et al.).
        hidden: hidden widths of the per-atom MLP (``()`` is one ``Linear``).
        activation: non-negative ``torch.nn`` activation applied to the bins.
        normalize: ``"max"`` (peak = 1), ``"sum"`` (bins sum to 1) or ``"none"``.
        eps: floor of the normaliser.
        dropout: dropout probability before every ``Linear`` of the MLP (MC dropout).

    Shapes:
        NodeFeatures -> ``[B, num_bins]``, every entry >= 0.
    """

    def __init__(
        self,
        features: FeatureSpec,
        num_bins: int = 51,
        hidden: Sequence[int] = (),
        activation: str = "Softplus",
        normalize: str = "max",
        eps: float = 1e-8,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if normalize not in NORMALIZATIONS:
            raise ValueError(f"normalize must be one of {NORMALIZATIONS}, got {normalize!r}")
        self.normalize = normalize
        self.eps = eps
        self.mlp = mlp([features.scalar_features, *hidden, num_bins], act="SiLU", dropout=dropout)
        self.activation = make_activation(activation)

    def forward(self, features: NodeFeatures) -> Tensor:
        per_atom = self.activation(self.mlp(features.scalars))
        out = pool(per_atom, features.batch, features.num_crystals, "mean")
        if self.normalize == "max":
            out = out / out.amax(dim=-1, keepdim=True).clamp_min(self.eps)
        elif self.normalize == "sum":
            out = out / out.sum(dim=-1, keepdim=True).clamp_min(self.eps)
        return out
