"""CGCNN convolution (Xie & Grossman, "Crystal Graph Convolutional Neural Networks for an
Accurate and Interpretable Prediction of Material Properties", PRL 120, 145301 (2018), eq. 5)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.utils import scatter


class CGCNNConv(nn.Module):
    r"""Gated crystal-graph convolution with batch norm.

    .. math::
        z_{ij} = v_i \oplus v_j \oplus u_{ij}, \qquad
        v_i \leftarrow g\Big(v_i + \mathrm{BN}\big(\textstyle\sum_j
            \sigma(z_{ij} W_f + b_f) \odot g(z_{ij} W_s + b_s)\big)\Big)

    with ``g = softplus`` and the gate/core pre-activations batch-normalised together, as in
    the reference ``ConvLayer`` (one ``Linear(2F + E, 2F)`` split into halves). Optional edge
    weights ``w_ij`` scale each message in the sum (``GraphConfig.tie_weights``).

    Args:
        atom_features: width F of the atom features.
        edge_features: width E of the edge features ``u_ij`` (the Gaussian expansion).

    Shapes:
        x ``[N, F]``, edge_index ``[2, E]`` (src = neighbour j, dst = centre i),
        edge_attr ``[E, edge_features]``, edge_weight ``[E]`` or ``None`` -> ``[N, F]``.
    """

    def __init__(self, atom_features: int, edge_features: int) -> None:
        super().__init__()
        self.linear = nn.Linear(2 * atom_features + edge_features, 2 * atom_features)
        self.bn_messages = nn.BatchNorm1d(2 * atom_features)
        self.bn_sum = nn.BatchNorm1d(atom_features)

    def forward(
        self, x: Tensor, edge_index: Tensor, edge_attr: Tensor, edge_weight: Tensor | None = None
    ) -> Tensor:
        src, dst = edge_index
        z = torch.cat([x.index_select(0, dst), x.index_select(0, src), edge_attr], dim=-1)
        gate, core = self.bn_messages(self.linear(z)).chunk(2, dim=-1)
        messages = torch.sigmoid(gate) * F.softplus(core)
        if edge_weight is not None:
            messages = messages * edge_weight.unsqueeze(-1)
        summed = scatter(messages, dst, dim=0, dim_size=x.size(0), reduce="sum")
        return F.softplus(x + self.bn_sum(summed))
