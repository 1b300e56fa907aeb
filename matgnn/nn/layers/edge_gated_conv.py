"""Edge-gated graph convolution (Bresson & Laurent, arXiv:1711.07553) in the form used by
ALIGNN (Choudhary & DeCost, "Atomistic Line Graph Neural Network for improved materials property
predictions", npj Comput. Mater. 7, 185 (2021))."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from matgnn.nn.edge_gating import edge_gating
from matgnn.nn.mlp import NORMS


class EdgeGatedGraphConv(nn.Module):
    r"""Node and edge update with normalised sigmoid edge gates.

    .. math::
        m_{ij} &= A h_i + B h_j + C e_{ij}, \qquad \eta_{ij} = \sigma(m_{ij}) \\
        h_i' &= h_i + \mathrm{SiLU}\Big(\mathrm{BN}\big(U h_i + \frac{\sum_j \eta_{ij} \odot V h_j}
            {\sum_j \eta_{ij} + 10^{-6}}\big)\Big) \\
        e_{ij}' &= e_{ij} + \mathrm{SiLU}(\mathrm{BN}(m_{ij}))

    ``i`` is the receiving node (``dst``) and ``j`` the sender (``src``). Residual connections
    as in the reference ``EdgeGatedGraphConv(residual=True)``. The per-edge part runs as one
    autograd function (:func:`matgnn.nn.edge_gating.edge_gating`) that keeps two per-edge
    tensors for the backward pass instead of five, with BatchNorm (the published ALIGNN) or
    LayerNorm in place of BN (upstream's ``alignn_atomwise`` networks, ``norm="layer"``); first
    derivatives only.

    Args:
        in_features: width of node and edge inputs.
        out_features: width of node and edge outputs (equal to ``in_features`` when residual).
        residual: add the inputs to the outputs.
        update_edges: also return updated edge features; the last layer of a stack, whose edge
            output nobody reads, sets this to False (the edge gates still act on the nodes).
        norm: ``"batch"`` (``BatchNorm1d``, the published ALIGNN) or ``"layer"``
            (``LayerNorm``, upstream's ``alignn_atomwise``) for both BN above.

    Shapes:
        x ``[N, in]``, edge_index ``[2, E]``, edge_attr ``[E, in]`` ->
        (``[N, out]``, ``[E, out]`` or ``None`` without ``update_edges``).
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        residual: bool = True,
        update_edges: bool = True,
        norm: str = "batch",
    ) -> None:
        super().__init__()
        if residual and in_features != out_features:
            raise ValueError("a residual EdgeGatedGraphConv needs in_features == out_features")
        if norm not in ("batch", "layer"):
            raise ValueError(f"EdgeGatedGraphConv: norm must be 'batch' or 'layer', got {norm!r}")
        norm_layer = NORMS[norm]
        self.residual = residual
        self.src_gate = nn.Linear(in_features, out_features)
        self.dst_gate = nn.Linear(in_features, out_features)
        self.edge_gate = nn.Linear(in_features, out_features)
        self.bn_edges = norm_layer(out_features) if update_edges else None
        self.self_update = nn.Linear(in_features, out_features)
        self.neighbor_update = nn.Linear(in_features, out_features)
        self.bn_nodes = norm_layer(out_features)

    def forward(
        self, x: Tensor, edge_index: Tensor, edge_attr: Tensor
    ) -> tuple[Tensor, Tensor | None]:
        weighted, norm, e = edge_gating(
            self.src_gate(x) + self.edge_gate.bias,
            F.linear(x, self.dst_gate.weight, self.dst_gate.bias),
            edge_attr,
            self.edge_gate.weight,
            self.neighbor_update(x),
            edge_index,
            self.bn_edges,
            self.residual,
        )
        h = self.self_update(x) + weighted / (norm + 1e-6)
        h = F.silu(self.bn_nodes(h))
        return (x + h if self.residual else h), e
