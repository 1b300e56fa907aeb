"""Matformer backbone (Yan, Liu, Lin & Ji, NeurIPS 2022)."""

from __future__ import annotations

from torch import nn
from torch_geometric.data import Data

from matgnn.checkpoints.registry import register
from matgnn.models.interfaces import Backbone, FeatureSpec, GraphRequirements, NodeFeatures
from matgnn.nn.embedding import atom_input
from matgnn.nn.layers import MatformerConv
from matgnn.nn.radial import GaussianBasis


@register("matformer")
class Matformer(Backbone):
    """Atom ``Linear`` embedding, RBF edge embedding, ``num_layers`` x :class:`MatformerConv`
    over the neighbour edges and the lattice self-edges alike.

    Published defaults (reference ``MatformerConfig``): 92-dim CGCNN atom features,
    ``node_features=128``, ``edge_features=128`` RBF bins over 0-8 Å followed by
    ``Linear -> Softplus -> Linear``, ``conv_layers=5``, ``node_layer_head=4``. The pooled
    ``Linear -> SiLU -> Linear`` (``fc_features=128``) is the head's job.

    Args:
        atom_features: ``"cgcnn"`` or ``"learned"``.
        hidden_features: node and edge width.
        num_layers: number of attention layers.
        heads: attention heads per layer.
        edge_basis: RBF bins for edge lengths.
        distance_max: last RBF centre, Å.
        lattice_edges: consume the lattice self-edges (Matformer's periodic encoding).
        dropout: dropout probability on the atom features after every layer (MC dropout).
    """

    def __init__(
        self,
        atom_features: str = "cgcnn",
        hidden_features: int = 128,
        num_layers: int = 5,
        heads: int = 4,
        edge_basis: int = 128,
        distance_max: float = 8.0,
        lattice_edges: bool = True,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.requirements = GraphRequirements(lattice_edges=lattice_edges)
        self.feature_spec = FeatureSpec(scalar_features=hidden_features)
        self.dropout = nn.Dropout(dropout)
        self.atom_input = atom_input(atom_features, hidden_features)
        self.atom_embedding = nn.Linear(self.atom_input.out_features, hidden_features)
        self.edge_embedding = nn.Sequential(
            GaussianBasis.jarvis(0.0, distance_max, edge_basis),
            nn.Linear(edge_basis, hidden_features),
            nn.Softplus(),
            nn.Linear(hidden_features, hidden_features),
        )
        self.layers = nn.ModuleList(
            MatformerConv(hidden_features, heads) for _ in range(num_layers)
        )

    def message_passing_layers(self) -> list[nn.Module]:
        return list(self.layers)

    def forward(self, batch: Data) -> NodeFeatures:
        e = self.edge_embedding(self.edge_vectors(batch).norm(dim=-1))
        x = self.atom_embedding(self.atom_input(batch.atomic_numbers))
        for layer in self.layers:
            x = self.dropout(layer(x, batch.edge_index, e))
        return self.node_features(batch, x)
