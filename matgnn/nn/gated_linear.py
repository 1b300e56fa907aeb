"""A gated equivariant linear layer: e3nn's ``o3.Linear`` followed by its ``Gate`` (Weiler et
al., "3D Steerable CNNs", NeurIPS 2018; the nonlinearity of e3nn's ``gate_points_2101``), one
layer of an equivariant MLP on per-atom features."""

from __future__ import annotations

from e3nn import o3
from torch import Tensor, nn

from matgnn.nn.layers.gate_point_conv import gate_for


class GatedLinear(nn.Module):
    r"""Equivariant linear map, then a gate.

    .. math::
        x' = \mathrm{Gate}(\mathrm{Lin}(x)), \qquad
        \mathrm{Gate}(s, g, v) = \big(\phi(s),\ \sigma(g) \odot v\big)

    ``Lin`` mixes only equal irreps; ``s`` are the scalar channels (``phi``: SiLU for even,
    tanh for odd ones), ``v`` the l > 0 irreps, each scaled by the sigmoid of its own extra
    scalar ``g``. Irreps of ``irreps_out`` that the input cannot reach through a linear map
    (absent from ``irreps_in``) are dropped.

    Args:
        irreps_in: input irreps.
        irreps_out: irreps after the gate.

    Shapes:
        x ``[N, irreps_in.dim]`` -> ``[N, self.irreps_out.dim]``.
    """

    def __init__(self, irreps_in: str | o3.Irreps, irreps_out: str | o3.Irreps) -> None:
        super().__init__()
        irreps_in = o3.Irreps(irreps_in)
        self.gate = gate_for(o3.Irreps(irreps_out).simplify(), irreps_in, o3.Irreps("0e"))
        self.linear = o3.Linear(irreps_in, self.gate.irreps_in)
        self.irreps_out = self.gate.irreps_out

    def forward(self, x: Tensor) -> Tensor:
        return self.gate(self.linear(x))
