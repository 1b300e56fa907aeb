"""CGCNN backbone (Xie & Grossman, PRL 120, 145301 (2018))."""

from __future__ import annotations

from torch import nn
from torch_geometric.data import Data

from matgnn.checkpoints.registry import register
from matgnn.models.interfaces import Backbone, FeatureSpec, GraphRequirements, NodeFeatures
from matgnn.nn.embedding import atom_input
from matgnn.nn.layers import CGCNNConv
from matgnn.nn.radial import GaussianBasis


@register("cgcnn")
class CGCNN(Backbone):
    """Atom features -> ``Linear`` -> ``num_layers`` x :class:`CGCNNConv`.

    Published defaults (reference ``CrystalGraphConvNet``): 92-dim CGCNN atom features,
    ``atom_fea_len=64``, ``n_conv=3``, Gaussian distance expansion 0-8 Å with step 0.2 (41
    centres, width 0.2). The pooled MLP (``h_fea_len=128``, softplus) is the head's job.

    Args:
        atom_features: ``"cgcnn"`` (fixed 92-dim table) or ``"learned"`` (embedding).
        hidden_features: atom feature width (``atom_fea_len``).
        num_layers: number of convolutions (``n_conv``).
        distance_max: last Gaussian centre, Å.
        distance_step: centre spacing and Gaussian width, Å.
        dropout: dropout probability on the atom features after every layer (MC dropout).
    """

    def __init__(
        self,
        atom_features: str = "cgcnn",
        hidden_features: int = 64,
        num_layers: int = 3,
        distance_max: float = 8.0,
        distance_step: float = 0.2,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.requirements = GraphRequirements()
        self.feature_spec = FeatureSpec(scalar_features=hidden_features)
        self.atom_input = atom_input(atom_features, hidden_features)
        self.embedding = nn.Linear(self.atom_input.out_features, hidden_features)
        num_basis = round(distance_max / distance_step) + 1
        self.distance_basis = GaussianBasis(0.0, distance_max, num_basis, width=distance_step)
        self.convs = nn.ModuleList(CGCNNConv(hidden_features, num_basis) for _ in range(num_layers))
        self.dropout = nn.Dropout(dropout)

    def message_passing_layers(self) -> list[nn.Module]:
        return list(self.convs)

    def forward(self, batch: Data) -> NodeFeatures:
        distance = self.edge_vectors(batch).norm(dim=-1)
        edge_attr = self.distance_basis(distance)
        x = self.embedding(self.atom_input(batch.atomic_numbers))
        weight = getattr(batch, "edge_weight", None)  # ties shared (GraphConfig.tie_weights)
        for conv in self.convs:
            x = self.dropout(conv(x, batch.edge_index, edge_attr, weight))
        return self.node_features(batch, x)
