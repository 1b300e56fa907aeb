"""ALIGNN backbone (Choudhary & DeCost, npj Comput. Mater. 7, 185 (2021))."""

from __future__ import annotations

from torch import nn
from torch_geometric.data import Data

from matgnn.checkpoints.registry import register
from matgnn.graphs.geometry import bond_cosines
from matgnn.models.interfaces import Backbone, FeatureSpec, GraphRequirements, NodeFeatures
from matgnn.nn.embedding import atom_input
from matgnn.nn.layers import ALIGNNConv, EdgeGatedGraphConv
from matgnn.nn.mlp import mlp
from matgnn.nn.radial import GaussianBasis


@register("alignn")
class ALIGNN(Backbone):
    """Embeddings -> ``alignn_layers`` x :class:`ALIGNNConv` -> ``gcn_layers`` x
    :class:`EdgeGatedGraphConv`.

    Published defaults (reference ``ALIGNNConfig``): 92-dim CGCNN atom features, 4 ALIGNN and 4
    gated-GCN layers, ``hidden_features=256``, ``embedding_features=64``, 80-bin RBF on bond
    lengths over 0-8 Å, 40-bin RBF on bond-angle cosines over [-1, 1] (jarvis ``RBFExpansion``),
    each followed by two ``Linear -> BatchNorm -> SiLU`` blocks; the atom input goes through
    one such block. Mean pooling and the final ``Linear`` are the head's job.

    ``norm="layer"`` puts LayerNorm wherever the published network has BatchNorm: upstream's
    ``alignn_atomwise`` network (``ALIGNNAtomWise``, the one its trainer ``train_alignn``
    trains, and the family of its force-field models), otherwise the same layers and widths.

    Args:
        atom_features: ``"cgcnn"`` or ``"learned"``.
        alignn_layers: number of :class:`ALIGNNConv`.
        gcn_layers: number of atom-graph-only edge-gated layers.
        hidden_features: width of atom, bond and angle features.
        embedding_features: width between the RBF and the hidden width.
        edge_basis: RBF bins for bond lengths.
        angle_basis: RBF bins for bond-angle cosines.
        distance_max: last bond-length RBF centre, Å.
        dropout: dropout probability on the atom features after every layer (MC dropout).
        norm: ``"batch"`` (the published ALIGNN) or ``"layer"`` (upstream's
            ``alignn_atomwise``), in every embedding block and convolution.
    """

    def __init__(
        self,
        atom_features: str = "cgcnn",
        alignn_layers: int = 4,
        gcn_layers: int = 4,
        hidden_features: int = 256,
        embedding_features: int = 64,
        edge_basis: int = 80,
        angle_basis: int = 40,
        distance_max: float = 8.0,
        dropout: float = 0.0,
        norm: str = "batch",
    ) -> None:
        super().__init__()
        if norm not in ("batch", "layer"):
            raise ValueError(f"ALIGNN: norm must be 'batch' or 'layer', got {norm!r}")
        # The bond and angle embeddings run over every edge and angle: they keep only their
        # inputs for the backward pass (``recompute=True``, same parameters).
        self.requirements = GraphRequirements(line_graph=alignn_layers > 0)
        self.feature_spec = FeatureSpec(scalar_features=hidden_features)
        self.dropout = nn.Dropout(dropout)
        self.atom_input = atom_input(atom_features, hidden_features)
        self.atom_embedding = mlp(
            [self.atom_input.out_features, hidden_features], norm=norm, activate_last=True
        )
        self.edge_embedding = nn.Sequential(
            GaussianBasis.jarvis(0.0, distance_max, edge_basis),
            mlp(
                [edge_basis, embedding_features, hidden_features],
                norm=norm,
                activate_last=True,
                recompute=True,
            ),
        )
        self.angle_embedding = nn.Sequential(
            GaussianBasis.jarvis(-1.0, 1.0, angle_basis),
            mlp(
                [angle_basis, embedding_features, hidden_features],
                norm=norm,
                activate_last=True,
                recompute=True,
            ),
        )
        # The last ALIGNN layer's angle output and the last GCN layer's edge output are never
        # read: those layers keep their gates but have no output norm (the reference keeps
        # two unused ones, 1,024 parameters that get no gradient).
        self.alignn_layers = nn.ModuleList(
            ALIGNNConv(hidden_features, update_angles=i < alignn_layers - 1, norm=norm)
            for i in range(alignn_layers)
        )
        self.gcn_layers = nn.ModuleList(
            EdgeGatedGraphConv(
                hidden_features, hidden_features, update_edges=i < gcn_layers - 1, norm=norm
            )
            for i in range(gcn_layers)
        )

    def message_passing_layers(self) -> list[nn.Module]:
        return [*self.alignn_layers, *self.gcn_layers]

    def forward(self, batch: Data) -> NodeFeatures:
        edge_vec = self.edge_vectors(batch)
        x = self.atom_embedding(self.atom_input(batch.atomic_numbers))
        e = self.edge_embedding(edge_vec.norm(dim=-1))
        if len(self.alignn_layers):
            t = self.angle_embedding(bond_cosines(edge_vec, batch.lg_edge_index))
            for layer in self.alignn_layers:
                x, e, t = layer(x, e, t, batch.edge_index, batch.lg_edge_index)
                x = self.dropout(x)
        for layer in self.gcn_layers:
            x, e = layer(x, batch.edge_index, e)
            x = self.dropout(x)
        return self.node_features(batch, x)
