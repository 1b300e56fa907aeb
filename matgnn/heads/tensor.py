"""Equivariant rank-2 tensor head (e.g. the dielectric tensor) on an e3nn backbone."""

from __future__ import annotations

import torch
from e3nn import io, o3
from torch import Tensor

from matgnn.interfaces import FeatureSpec, Head, NodeFeatures
from matgnn.nn.pooling import pool


class TensorHead(Head):
    """Mean-pool the equivariant features, map them linearly to the irreps of a Cartesian
    tensor, and return the 3x3 matrix.

    ``formula="ij=ji"`` is a symmetric tensor, irreps ``1x0e + 1x2e`` (dielectric, polarisability);
    ``"ij"`` a general one (``0e + 1e + 2e``). ``e3nn.o3.Linear`` only mixes equal irreps and
    pooling is linear, so a rotation R of the structure turns the output T into ``R T R^T``.
    De-normalisation keeps equivariance: ``T = scale * T_raw + isotropic_mean * I``.

    Args:
        features: what the backbone emits; must carry irreps (an equivariant backbone).
        formula: e3nn ``CartesianTensor`` index formula.

    Shapes:
        NodeFeatures -> ``[B, 3, 3]``.
    """

    def __init__(self, features: FeatureSpec, formula: str = "ij=ji") -> None:
        super().__init__()
        if features.irreps is None:
            raise ValueError(
                f"{type(self).__name__} needs an equivariant backbone (features with irreps), "
                "such as model=e3nn; invariant backbones only give scalars"
            )
        self.cartesian = io.CartesianTensor(formula)
        self.linear = o3.Linear(o3.Irreps(features.irreps), self.cartesian)
        self.register_buffer("scale", torch.ones(()))
        self.register_buffer("isotropic_mean", torch.zeros(()))

    def cartesian_tensors(self, irreps: Tensor) -> Tensor:
        """``[M, irreps dim]`` equivariant features -> ``[M, 3, 3]`` raw Cartesian tensors."""
        return self.cartesian.to_cartesian(self.linear(irreps))

    def forward(self, features: NodeFeatures) -> Tensor:
        if features.irreps is None:
            raise ValueError(f"{type(self).__name__} got no equivariant features")
        pooled = pool(features.irreps, features.batch, features.num_crystals, "mean")
        matrix = self.cartesian_tensors(pooled)
        eye = torch.eye(3, dtype=matrix.dtype, device=matrix.device)
        return self.scale * matrix + self.isotropic_mean * eye

    @torch.no_grad()
    def fit(self, targets: Tensor) -> None:
        """Set ``isotropic_mean`` to the mean trace/3 and ``scale`` to the RMS of the remainder.

        Args:
            targets: ``[M, 3, 3]`` training tensors.
        """
        iso = torch.diagonal(targets, dim1=-2, dim2=-1).mean(dim=-1)
        rest = targets - iso[:, None, None] * torch.eye(3, dtype=targets.dtype)
        rms = rest.pow(2).mean().sqrt()
        self.isotropic_mean.copy_(iso.mean())
        self.scale.copy_(rms if rms > 0 else torch.ones_like(rms))


__all__ = ["TensorHead"]
