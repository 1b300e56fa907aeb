"""PotNet backbone (Lin, Yan, Luo, Zhu, Qian & Ji, ICML 2023)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch_geometric.data import Data

from matgnn.checkpoints.registry import register
from matgnn.models.interfaces import Backbone, FeatureSpec, GraphRequirements, NodeFeatures
from matgnn.nn.embedding import atom_input
from matgnn.nn.layers import PotNetConv
from matgnn.nn.radial import GaussianBasis, MultiquadricBasis


@register("potnet")
class PotNet(Backbone):
    """Message passing over local edges and all-pairs infinite-potential edges.

    * Local edge ``d``: Gaussian basis (PotNet ``RBFExpansion``, width = spacing) of
      ``-0.75 / d`` on ``[rbf_min, rbf_max]`` with ``hidden_features`` bins, then
      ``Linear -> SiLU``.
    * Potential edge ``(i, j)``: ``s_ij = sum_k c_k S_k(i, j)`` with the lattice sums ``S_k``
      of the graph (Coulomb 1/d, London 1/d^6, Pauli exp(-3 d)) and the published coefficients
      ``c = (-0.801, -0.074, 0.145)``; multiquadric basis with ``potential_basis`` bins on
      ``[rbf_min, rbf_max]``, then ``Linear -> Softplus -> BatchNorm``.
    * ``num_layers`` x :class:`PotNetConv` on the union of both edge sets.

    Published defaults (reference ``PotNetConfig`` and AIRS ``configs/potnet.yaml``):
    ``conv_layers=3``, ``fc_features=256``, ``inf_edge_features=64``, ``rbf_min=-4``,
    ``rbf_max=4``, 92-dim CGCNN atom features through a ``Linear``. The pooled
    ``Linear -> (shifted) softplus -> Linear`` is the head's job.

    Args:
        atom_features: ``"cgcnn"`` or ``"learned"``.
        hidden_features: width of nodes and of both edge embeddings (``fc_features``).
        num_layers: number of :class:`PotNetConv`.
        potential_basis: bins of the potential expansion (``inf_edge_features``).
        potentials: the lattice sums used, in the graph's column order.
        coefficients: weight of each sum in ``s_ij``.
        rbf_min: first centre of both expansions.
        rbf_max: last centre of both expansions.
        dropout: dropout probability on the atom features after every layer (MC dropout).
    """

    def __init__(
        self,
        atom_features: str = "cgcnn",
        hidden_features: int = 256,
        num_layers: int = 3,
        potential_basis: int = 64,
        potentials: Sequence[str] = ("coulomb", "london", "pauli"),
        coefficients: Sequence[float] = (-0.801, -0.074, 0.145),
        rbf_min: float = -4.0,
        rbf_max: float = 4.0,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if len(potentials) != len(coefficients):
            raise ValueError(
                "PotNet needs one coefficient per potential: "
                f"{list(potentials)} vs {list(coefficients)}"
            )
        self.requirements = GraphRequirements(potentials=tuple(potentials))
        self.feature_spec = FeatureSpec(scalar_features=hidden_features)
        self.dropout = nn.Dropout(dropout)
        self.atom_input = atom_input(atom_features, hidden_features)
        self.atom_embedding = nn.Linear(self.atom_input.out_features, hidden_features)
        self.edge_embedding = nn.Sequential(
            GaussianBasis(rbf_min, rbf_max, hidden_features),
            nn.Linear(hidden_features, hidden_features),
            nn.SiLU(),
        )
        self.register_buffer(
            "coefficients", torch.tensor(list(coefficients), dtype=torch.get_default_dtype())
        )
        self.potential_basis = MultiquadricBasis(rbf_min, rbf_max, potential_basis)
        self.potential_linear = nn.Linear(potential_basis, hidden_features)
        self.potential_bn = nn.BatchNorm1d(hidden_features)
        self.convs = nn.ModuleList(PotNetConv(hidden_features) for _ in range(num_layers))

    def message_passing_layers(self) -> list[nn.Module]:
        return list(self.convs)

    def forward(self, batch: Data) -> NodeFeatures:
        local = self.edge_embedding(-0.75 / self.edge_vectors(batch).norm(dim=-1))
        combined = batch.potential_sums @ self.coefficients.to(batch.potential_sums.dtype)
        infinite = self.potential_bn(
            F.softplus(self.potential_linear(self.potential_basis(combined)))
        )
        edge_index = torch.cat([batch.edge_index, batch.pot_edge_index], dim=1)
        edge_attr = torch.cat([local, infinite], dim=0)
        x = self.atom_embedding(self.atom_input(batch.atomic_numbers))
        for conv in self.convs:
            x = self.dropout(conv(x, edge_index, edge_attr))
        return self.node_features(batch, x)
