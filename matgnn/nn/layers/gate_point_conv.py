"""Gated equivariant point convolution (Thomas et al., "Tensor field networks", 2018;
Geiger & Smidt, e3nn, ``gate_points_2101``), as used for phonon DOS by Chen et al., "Direct
Prediction of Phonon Density of States With Euclidean Neural Networks", Adv. Sci. 8, 2004214
(2021)."""

from __future__ import annotations

import math

import torch
from e3nn import o3
from e3nn.nn import FullyConnectedNet, Gate
from torch import Tensor, nn
from torch_geometric.utils import scatter

_SCALAR_ACT = {1: torch.nn.functional.silu, -1: torch.tanh}
_GATE_ACT = {1: torch.sigmoid, -1: torch.tanh}


def _path_exists(irreps_in1: o3.Irreps, irreps_in2: o3.Irreps, ir_out: o3.Irrep) -> bool:
    return any(ir_out in ir1 * ir2 for _, ir1 in irreps_in1 for _, ir2 in irreps_in2)


def gate_for(irreps_hidden: o3.Irreps, irreps_in: o3.Irreps, irreps_edge: o3.Irreps) -> Gate:
    """The e3nn ``Gate`` for the reachable part of ``irreps_hidden`` (SiLU/tanh on scalars,
    sigmoid/tanh gates on l > 0), as in ``gate_points_2101.Network``."""
    scalars = o3.Irreps(
        [
            (m, ir)
            for m, ir in irreps_hidden
            if ir.l == 0 and _path_exists(irreps_in, irreps_edge, ir)
        ]
    )
    gated = o3.Irreps(
        [
            (m, ir)
            for m, ir in irreps_hidden
            if ir.l > 0 and _path_exists(irreps_in, irreps_edge, ir)
        ]
    )
    gate_ir = "0e" if _path_exists(irreps_in, irreps_edge, o3.Irrep("0e")) else "0o"
    gates = o3.Irreps([(m, gate_ir) for m, _ in gated])
    return Gate(
        scalars,
        [_SCALAR_ACT[ir.p] for _, ir in scalars],
        gates,
        [_GATE_ACT[ir.p] for _, ir in gates],
        gated,
    )


class GatePointConv(nn.Module):
    r"""Equivariant convolution with self-connection, optionally followed by a gate.

    .. math::
        x_i' = c_s\, \mathrm{SC}(x_i, a_i) + c_x\, \mathrm{Lin}_2\Big(\frac{1}{\sqrt{\bar n}}
            \sum_{j} \mathrm{Lin}_1(x_j, a_j) \otimes_{R(|r_{ij}|)} f(|r_{ij}|) Y(\hat r_{ij}),
            a_i\Big)

    ``a`` are invariant node attributes (the element embedding), ``Y`` spherical harmonics,
    ``f`` the smooth cutoff, ``R`` a radial MLP on the Gaussian distance basis giving the
    tensor-product weights (``uvu`` paths), ``c_s = sin(pi/8)``, ``c_x = cos(pi/8)``; the
    optional e3nn ``Gate`` then applies SiLU to scalars and sigmoid-gates the l > 0 features.

    Args:
        irreps_in: input node irreps.
        irreps_node_attr: node attribute irreps (e.g. ``"64x0e"``).
        irreps_edge_attr: spherical-harmonic irreps of the edges
            (``Irreps.spherical_harmonics(2)``).
        irreps_out: output irreps; with ``gate=True`` the gate acts on them and
            :attr:`irreps_out` becomes the gate's output.
        num_basis: size of the radial basis.
        radial_layers: hidden layers of the radial MLP.
        radial_neurons: width of the radial MLP.
        num_neighbors: typical neighbour count, the sum is divided by its square root.
        gate: apply a ``Gate`` after the convolution (every layer but the last).

    Shapes:
        x ``[N, irreps_in.dim]``, node_attr ``[N, irreps_node_attr.dim]``, edge_index ``[2, E]``,
        edge_sh ``[E, irreps_edge_attr.dim]`` (already multiplied by the cutoff),
        edge_basis ``[E, num_basis]`` -> ``[N, irreps_out.dim]``.
    """

    def __init__(
        self,
        irreps_in: o3.Irreps | str,
        irreps_node_attr: o3.Irreps | str,
        irreps_edge_attr: o3.Irreps | str,
        irreps_out: o3.Irreps | str,
        num_basis: int,
        radial_layers: int,
        radial_neurons: int,
        num_neighbors: float,
        gate: bool,
    ) -> None:
        super().__init__()
        self.irreps_in = o3.Irreps(irreps_in)
        self.irreps_node_attr = o3.Irreps(irreps_node_attr)
        self.irreps_edge_attr = o3.Irreps(irreps_edge_attr)
        self.num_neighbors = float(num_neighbors)
        self.gate = (
            gate_for(o3.Irreps(irreps_out), self.irreps_in, self.irreps_edge_attr) if gate else None
        )
        conv_out = self.gate.irreps_in if self.gate is not None else o3.Irreps(irreps_out)
        self.irreps_out = self.gate.irreps_out if self.gate is not None else conv_out

        self.self_connection = o3.FullyConnectedTensorProduct(
            self.irreps_in, self.irreps_node_attr, conv_out
        )
        self.lin1 = o3.FullyConnectedTensorProduct(
            self.irreps_in, self.irreps_node_attr, self.irreps_in
        )
        irreps_mid, instructions = [], []
        for i, (mul, ir_in) in enumerate(self.irreps_in):
            for j, (_, ir_edge) in enumerate(self.irreps_edge_attr):
                for ir_out in ir_in * ir_edge:
                    if ir_out in conv_out:
                        instructions.append((i, j, len(irreps_mid), "uvu", True))
                        irreps_mid.append((mul, ir_out))
        irreps_mid = o3.Irreps(irreps_mid)
        irreps_mid, perm, _ = irreps_mid.sort()
        instructions = [(a, b, perm[k], mode, train) for a, b, k, mode, train in instructions]
        self.tensor_product = o3.TensorProduct(
            self.irreps_in,
            self.irreps_edge_attr,
            irreps_mid,
            instructions,
            internal_weights=False,
            shared_weights=False,
        )
        self.radial = FullyConnectedNet(
            [num_basis] + radial_layers * [radial_neurons] + [self.tensor_product.weight_numel],
            torch.nn.functional.silu,
        )
        self.lin2 = o3.FullyConnectedTensorProduct(irreps_mid, self.irreps_node_attr, conv_out)
        mask = self.self_connection.output_mask.to(torch.get_default_dtype())
        self.register_buffer("mix", (1 - mask) + math.cos(math.pi / 8) * mask)

    def forward(
        self,
        x: Tensor,
        node_attr: Tensor,
        edge_index: Tensor,
        edge_sh: Tensor,
        edge_basis: Tensor,
    ) -> Tensor:
        src, dst = edge_index
        weights = self.radial(edge_basis)
        self_term = self.self_connection(x, node_attr)
        h = self.lin1(x, node_attr)
        messages = self.tensor_product(h.index_select(0, src), edge_sh, weights)
        h = scatter(messages, dst, dim=0, dim_size=x.size(0), reduce="sum")
        h = self.lin2(h / math.sqrt(self.num_neighbors), node_attr)
        out = math.sin(math.pi / 8) * self_term + self.mix.to(h.dtype) * h
        return self.gate(out) if self.gate is not None else out
