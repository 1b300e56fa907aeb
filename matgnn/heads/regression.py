"""Scalar and multi-target regression head."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from matgnn.heads.normalizer import TargetNormalizer
from matgnn.interfaces import FeatureSpec, Head, NodeFeatures
from matgnn.nn.mlp import activation as make_activation
from matgnn.nn.mlp import mlp
from matgnn.nn.pooling import pool


class RegressionHead(Head):
    """Pool, then an MLP, then de-normalise: one or ``num_targets`` real values per crystal.

    ``readout="mean"`` (intensive targets, the default) pools the atom features first and applies
    the MLP to the crystal vector, as CGCNN, ALIGNN, Matformer and PotNet do.
    ``readout="sum"`` (extensive targets) applies the MLP to every atom and sums the
    de-normalised atom contributions, so the output scales exactly with a supercell.

    Args:
        features: what the backbone emits (filled in by :class:`CrystalModel`).
        num_targets: output columns; 1 gives shape ``[B]``, more give ``[B, num_targets]``.
        hidden: widths of the hidden layers of the MLP (``()`` is a single ``Linear``).
        activation: ``torch.nn`` activation class name.
        activate_input: apply the activation to the pooled features first (CGCNN does).
        readout: ``"mean"`` or ``"sum"``.

    Shapes:
        NodeFeatures -> ``[B]`` or ``[B, num_targets]``.
    """

    def __init__(
        self,
        features: FeatureSpec,
        num_targets: int = 1,
        hidden: Sequence[int] = (),
        activation: str = "SiLU",
        activate_input: bool = False,
        readout: str = "mean",
    ) -> None:
        super().__init__()
        self.num_targets = num_targets
        self.readout = readout
        self.input_activation = make_activation(activation) if activate_input else nn.Identity()
        dims = [features.scalar_features, *hidden, num_targets]
        self.mlp = mlp(dims, act=activation)
        self.normalizer = TargetNormalizer(num_targets, extensive=readout == "sum")

    def forward(self, features: NodeFeatures) -> Tensor:
        z, b, n = features.atomic_numbers, features.batch, features.num_crystals
        if self.readout == "sum":
            per_atom = self.mlp(self.input_activation(features.scalars))
            out = pool(self.normalizer.denormalize_atoms(per_atom, z), b, n, "sum")
        else:
            pooled = pool(features.scalars, b, n, self.readout)
            out = self.normalizer.denormalize_crystals(
                self.mlp(self.input_activation(pooled)), z, b, n
            )
        return out.squeeze(-1) if self.num_targets == 1 else out
