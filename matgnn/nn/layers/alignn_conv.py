"""ALIGNN layer (Choudhary & DeCost, npj Comput. Mater. 7, 185 (2021), Fig. 1)."""

from __future__ import annotations

from torch import Tensor, nn

from matgnn.nn.layers.edge_gated_conv import EdgeGatedGraphConv


class ALIGNNConv(nn.Module):
    r"""One ALIGNN update: an edge-gated convolution on the atom graph, then one on the line graph.

    .. math::
        (h, m) &= \mathrm{EGGC}_{g}(h, e) \\
        (e, t) &= \mathrm{EGGC}_{L(g)}(m, t)

    ``h`` atom, ``e`` bond and ``t`` angle (bond-pair) features. On the line graph the bonds are
    the nodes and the angles the edges, so the second step updates the bond features from the
    angles around them. The order (atom graph first) follows the reference ``ALIGNNConv``.

    Args:
        features: width of all three feature sets.
        update_angles: return updated angle features (False for the last ALIGNN layer, whose
            angle output nobody reads; ``t`` is then ``None``).
        norm: ``"batch"`` or ``"layer"``, for both convolutions (:class:`EdgeGatedGraphConv`).

    Shapes:
        h ``[N, F]``, e ``[E, F]``, t ``[T, F]``, edge_index ``[2, E]``,
        lg_edge_index ``[2, T]`` -> (``[N, F]``, ``[E, F]``, ``[T, F]``).
    """

    def __init__(self, features: int, update_angles: bool = True, norm: str = "batch") -> None:
        super().__init__()
        self.node_update = EdgeGatedGraphConv(features, features, norm=norm)
        self.edge_update = EdgeGatedGraphConv(
            features, features, update_edges=update_angles, norm=norm
        )

    def forward(
        self, h: Tensor, e: Tensor, t: Tensor, edge_index: Tensor, lg_edge_index: Tensor
    ) -> tuple[Tensor, Tensor, Tensor | None]:
        h, m = self.node_update(h, edge_index, e)
        e, t = self.edge_update(m, lg_edge_index, t)
        return h, e, t
