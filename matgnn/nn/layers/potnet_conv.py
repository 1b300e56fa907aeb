"""PotNet convolution (Lin, Yan, Luo, Zhu, Qian & Ji, "Efficient Approximations of Complete
Interatomic Potentials for Crystal Property Prediction", ICML 2023, eq. 7 and the reference
``PotNetConv``)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.utils import scatter


class PotNetConv(nn.Module):
    r"""Gated message passing over local and infinite-potential edges alike.

    .. math::
        z_{ij} &= h_i \oplus h_j \oplus e_{ij} \\
        h_i' &= \mathrm{ReLU}\Big(h_i + \mathrm{BN}\big(\textstyle\sum_j
            \sigma(\mathrm{BN}(\mathrm{MLP}_g(z_{ij}))) \odot \mathrm{MLP}_m(z_{ij})\big)\Big)

    with two-layer SiLU MLPs ``3F -> F -> F``. The edge set is the union of the local
    neighbour edges and the all-pairs potential edges; the model embeds each kind into the
    same width ``F`` beforehand.

    Args:
        features: width F of node and edge features (``fc_features``, 256).

    Shapes:
        x ``[N, F]``, edge_index ``[2, E]``, edge_attr ``[E, F]`` -> ``[N, F]``.
    """

    def __init__(self, features: int) -> None:
        super().__init__()
        self.gate = nn.Sequential(
            nn.Linear(3 * features, features), nn.SiLU(), nn.Linear(features, features)
        )
        self.message = nn.Sequential(
            nn.Linear(3 * features, features), nn.SiLU(), nn.Linear(features, features)
        )
        self.bn_gate = nn.BatchNorm1d(features)
        self.bn = nn.BatchNorm1d(features)

    def forward(self, x: Tensor, edge_index: Tensor, edge_attr: Tensor) -> Tensor:
        src, dst = edge_index
        z = torch.cat([x.index_select(0, dst), x.index_select(0, src), edge_attr], dim=-1)
        messages = torch.sigmoid(self.bn_gate(self.gate(z))) * self.message(z)
        summed = scatter(messages, dst, dim=0, dim_size=x.size(0), reduce="sum")
        return F.relu(x + self.bn(summed))
