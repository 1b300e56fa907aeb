"""Classification head (e.g. Matbench stability or metal-vs-insulator)."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from matgnn.checkpoints.registry import register
from matgnn.models.interfaces import FeatureSpec, Head, NodeFeatures
from matgnn.nn.mlp import activation as make_activation
from matgnn.nn.mlp import mlp
from matgnn.nn.pooling import pool


@register("classification_head")
class ClassificationHead(Head):
    """Mean-pool, then an MLP to ``num_classes`` logits (unnormalised; pair with
    ``cross_entropy``; ``softmax`` gives probabilities).

    Args:
        features: what the backbone emits (filled in by :class:`CrystalModel`).
        num_classes: number of classes (2 for binary tasks).
        hidden: widths of the hidden layers.
        activation: ``torch.nn`` activation class name.
        activate_input: apply the activation to the pooled features first (CGCNN does).
        readout: ``"mean"`` or ``"sum"``.
        dropout: dropout probability before every ``Linear`` of the MLP (MC dropout).

    Shapes:
        NodeFeatures -> ``[B, num_classes]``.
    """

    def __init__(
        self,
        features: FeatureSpec,
        num_classes: int = 2,
        hidden: Sequence[int] = (),
        activation: str = "SiLU",
        readout: str = "mean",
        dropout: float = 0.0,
        activate_input: bool = False,
    ) -> None:
        super().__init__()
        if num_classes < 2:
            raise ValueError(f"num_classes must be >= 2, got {num_classes}")
        self.readout = readout
        self.input_activation = make_activation(activation) if activate_input else nn.Identity()
        self.mlp = mlp(
            [features.scalar_features, *hidden, num_classes], act=activation, dropout=dropout
        )

    def forward(self, features: NodeFeatures) -> Tensor:
        pooled = pool(features.scalars, features.batch, features.num_crystals, self.readout)
        return self.mlp(self.input_activation(pooled))
