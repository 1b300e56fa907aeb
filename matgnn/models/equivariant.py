"""E(3)-equivariant gated point-convolution network (e3nn) in the style of Chen et al.,
"Direct Prediction of Phonon Density of States With Euclidean Neural Networks", Adv. Sci. 8,
2004214 (2021)."""

from __future__ import annotations

import math

import torch.nn.functional as F
from e3nn import o3
from e3nn.math import soft_one_hot_linspace
from e3nn.nn import Dropout
from torch import Tensor, nn
from torch_geometric.data import Data

from matgnn.checkpoints.registry import register
from matgnn.models.interfaces import Backbone, FeatureSpec, GraphRequirements, NodeFeatures
from matgnn.nn.embedding import MAX_Z
from matgnn.nn.layers import GatePointConv
from matgnn.nn.radial import cosine_cutoff


@register("e3nn")
class EquivariantNetwork(Backbone):
    """Element embedding -> ``num_layers`` gated :class:`GatePointConv` -> a final convolution to
    ``irreps_out``.

    Follows Chen et al.'s ``PeriodicNetwork`` (e3nn ``gate_points_2101.Network``): node inputs
    and node attributes are both ``ReLU(embedding(Z))`` of width ``embedding_features`` (Chen
    embed a mass-weighted one-hot vector with a ``Linear``, which is the same function class);
    hidden irreps ``mul x l`` for l <= ``lmax`` and both parities; edges carry spherical
    harmonics up to ``lmax`` times the smooth cutoff, and a radial MLP on ``num_basis``
    Gaussians over ``[0, r_max]``. Published values: ``em_dim=64``, ``layers=2``, ``mul=32``,
    ``number_of_basis=10``, ``radial_layers=1``, ``radial_neurons=100``; ``lmax=2`` and
    ``r_max=5`` Å as this project's defaults. The output irreps default to
    ``"64x0e + 16x2e"``: 64 invariant channels for scalar/DOS heads and 16 ``2e`` channels that
    a tensor head combines with the scalars into a symmetric rank-2 tensor.

    Args:
        r_max: cutoff radius, Å; must equal the graph's cutoff.
        lmax: highest spherical-harmonic degree.
        embedding_features: width of the element embedding.
        mul: multiplicity of each hidden irrep.
        num_layers: gated layers (the final, ungated convolution comes on top).
        num_basis: Gaussian radial basis size.
        radial_layers: hidden layers of the radial MLP.
        radial_neurons: width of the radial MLP.
        num_neighbors: typical neighbour count within ``r_max`` (sum normalisation).
        irreps_out: irreps of the per-atom output features; must contain ``0e``.
        dropout: probability of dropping a whole irrep of the features after every layer
            (``e3nn.nn.Dropout``: equivariant, for MC dropout).
    """

    @classmethod
    def with_irreps_for(cls, args: dict, needed: list[str]) -> dict:
        """``irreps_out`` widened by the irreps that the tensor heads need and it lacks (see
        :func:`matgnn.heads.tensor.with_irreps`)."""
        from matgnn.heads.tensor import with_irreps

        irreps_out = args.get("irreps_out")
        if not needed or not irreps_out:
            return args
        widened = with_irreps(irreps_out, needed)
        return args if widened == irreps_out else {**args, "irreps_out": widened}

    def __init__(
        self,
        r_max: float = 5.0,
        lmax: int = 2,
        embedding_features: int = 64,
        mul: int = 32,
        num_layers: int = 2,
        num_basis: int = 10,
        radial_layers: int = 1,
        radial_neurons: int = 100,
        num_neighbors: float = 30.0,
        irreps_out: str = "64x0e + 16x2e",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.r_max = float(r_max)
        self.num_basis = num_basis
        self.irreps_out = o3.Irreps(irreps_out).simplify()
        scalar_slices = [
            s
            for (m, ir), s in zip(self.irreps_out, self.irreps_out.slices(), strict=True)
            if ir == o3.Irrep("0e")
        ]
        if not scalar_slices:
            raise ValueError(
                f"irreps_out must contain 0e channels for invariant heads, got {irreps_out}"
            )
        self.scalar_slice = scalar_slices[0]
        self.requirements = GraphRequirements(radius_cutoff=self.r_max)
        self.feature_spec = FeatureSpec(
            scalar_features=self.scalar_slice.stop - self.scalar_slice.start,
            irreps=str(self.irreps_out),
        )
        self.irreps_sh = o3.Irreps.spherical_harmonics(lmax)
        irreps_attr = o3.Irreps(f"{embedding_features}x0e")
        irreps_hidden = o3.Irreps([(mul, (l, p)) for l in range(lmax + 1) for p in (-1, 1)])
        self.embedding = nn.Embedding(MAX_Z + 1, embedding_features)
        layers = []
        dropouts = []
        irreps = irreps_attr
        for _ in range(num_layers):
            conv = GatePointConv(
                irreps,
                irreps_attr,
                self.irreps_sh,
                irreps_hidden,
                num_basis,
                radial_layers,
                radial_neurons,
                num_neighbors,
                gate=True,
            )
            irreps = conv.irreps_out
            layers.append(conv)
            dropouts.append(Dropout(irreps, dropout))
        layers.append(
            GatePointConv(
                irreps,
                irreps_attr,
                self.irreps_sh,
                self.irreps_out,
                num_basis,
                radial_layers,
                radial_neurons,
                num_neighbors,
                gate=False,
            )
        )
        dropouts.append(Dropout(self.irreps_out, dropout))
        self.layers = nn.ModuleList(layers)
        self.dropouts = nn.ModuleList(dropouts)

    def edge_attributes(self, edge_vec: Tensor) -> tuple[Tensor, Tensor]:
        """Spherical harmonics times the smooth cutoff, and the scaled Gaussian radial basis."""
        length = edge_vec.norm(dim=-1)
        sh = o3.spherical_harmonics(
            self.irreps_sh, edge_vec, normalize=True, normalization="component"
        )
        sh = cosine_cutoff(length, self.r_max).unsqueeze(-1) * sh
        basis = soft_one_hot_linspace(
            length, 0.0, self.r_max, self.num_basis, basis="gaussian", cutoff=False
        ) * math.sqrt(self.num_basis)
        return sh, basis

    def message_passing_layers(self) -> list[nn.Module]:
        return list(self.layers)

    def forward(self, batch: Data) -> NodeFeatures:
        edge_sh, edge_basis = self.edge_attributes(self.edge_vectors(batch))
        attr = F.relu(self.embedding(batch.atomic_numbers))
        x = attr
        for layer, dropout in zip(self.layers, self.dropouts, strict=True):
            x = dropout(layer(x, attr, batch.edge_index, edge_sh, edge_basis))
        return self.node_features(batch, x[:, self.scalar_slice], irreps=x)

    def extra_repr(self) -> str:
        return f"r_max={self.r_max}, irreps_out={self.irreps_out}"


__all__ = ["EquivariantNetwork"]
