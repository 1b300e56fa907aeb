"""Matformer attention layer (Yan, Liu, Lin & Ji, "Periodic Graph Transformers for Crystal
Material Property Prediction", NeurIPS 2022, eq. 4-6 and the reference ``MatformerConv``)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.utils import scatter


class MatformerConv(nn.Module):
    r"""Multi-head message passing with element-wise sigmoid attention over edges.

    For each head (width C), with ``i`` the receiver and ``j`` the sender:

    .. math::
        q_{ij} &= q_i \oplus q_i \oplus q_i, \qquad
        k_{ij} = k_i \oplus k_j \oplus W_e e_{ij}, \qquad
        v_{ij} = v_i \oplus v_j \oplus W_e e_{ij} \\
        \alpha_{ij} &= \sigma\big(\mathrm{LN}(q_{ij} \odot k_{ij} / \sqrt{3C})\big) \\
        m_{ij} &= \mathrm{LN}\big(W_m (W_u v_{ij} \odot \alpha_{ij})\big) \\
        h_i' &= \mathrm{SiLU}\Big(\mathrm{BN}\big(W_c \,\Vert_{heads}
            \textstyle\sum_j m_{ij}\big)\Big) + W_s h_i

    Unlike softmax attention the weights are not normalised over neighbours; this is the
    reference implementation's choice.

    Args:
        features: node and edge width (``node_features`` in the reference, 128).
        heads: number of attention heads (``node_layer_head``, 4).

    Shapes:
        x ``[N, F]``, edge_index ``[2, E]``, edge_attr ``[E, F]`` -> ``[N, F]``.
    """

    def __init__(self, features: int, heads: int = 4) -> None:
        super().__init__()
        self.heads = heads
        self.features = features
        hc = heads * features
        self.lin_query = nn.Linear(features, hc)
        self.lin_key = nn.Linear(features, hc)
        self.lin_value = nn.Linear(features, hc)
        self.lin_edge = nn.Linear(features, hc, bias=False)
        self.lin_concat = nn.Linear(hc, features)
        self.lin_skip = nn.Linear(features, features)
        self.lin_msg_update = nn.Linear(3 * features, 3 * features)
        self.layer_norm = nn.LayerNorm(3 * features)
        self.msg_layer = nn.Sequential(nn.Linear(3 * features, features), nn.LayerNorm(features))
        self.bn = nn.BatchNorm1d(features)

    def forward(self, x: Tensor, edge_index: Tensor, edge_attr: Tensor) -> Tensor:
        src, dst = edge_index
        h, c = self.heads, self.features
        query = self.lin_query(x).view(-1, h, c)
        key = self.lin_key(x).view(-1, h, c)
        value = self.lin_value(x).view(-1, h, c)
        edge = self.lin_edge(edge_attr).view(-1, h, c)

        q_i = query.index_select(0, dst)
        q = torch.cat([q_i, q_i, q_i], dim=-1)
        k = torch.cat([key.index_select(0, dst), key.index_select(0, src), edge], dim=-1)
        alpha = torch.sigmoid(self.layer_norm(q * k / math.sqrt(3 * c)))
        v = torch.cat([value.index_select(0, dst), value.index_select(0, src), edge], dim=-1)
        messages = self.msg_layer(self.lin_msg_update(v) * alpha)

        out = scatter(messages, dst, dim=0, dim_size=x.size(0), reduce="sum")
        out = self.lin_concat(out.reshape(-1, h * c))
        return F.silu(self.bn(out)) + self.lin_skip(x)
