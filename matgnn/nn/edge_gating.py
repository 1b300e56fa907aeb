"""The per-edge half of the edge-gated graph convolution as one autograd function.

:class:`~matgnn.nn.layers.EdgeGatedGraphConv` spends almost all of its time and memory on
per-edge tensors (on ALIGNN's line graph, about 100k angles x 256 features, 100 MB each, for a
batch of 64 MP crystals). Written as separate autograd ops, one layer keeps five of them alive
for the backward pass (the gate input, the gate, the gathered neighbour values, the normalised
output and the input features) and allocates about a dozen more. This function computes the same
quantities with in-place ops on a few buffers and keeps only two per-edge tensors (the gate input
``m`` and the input features ``e``); the gate, the gathered values and the normalised output are
recomputed in the backward pass, which costs three cheap elementwise passes and saves about
half of the per-edge traffic. The edge update's norm is BatchNorm (the published ALIGNN) or
LayerNorm (upstream's ``alignn_atomwise``), through :mod:`matgnn.nn.norm_silu`.
``benchmarks/alignn_upstream.py`` measures the effect.

Only first derivatives are supported (``once_differentiable``): forces by autograd work, training
on forces (a gradient of a gradient) does not.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.autograd.function import FunctionCtx, once_differentiable

from matgnn.nn.norm_silu import (
    NormArgs,
    compute_dtype,
    norm_arguments,
    norm_silu_backward,
    norm_silu_forward,
    save_norm,
    saved_norm_args,
)


class _EdgeGating(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: FunctionCtx,
        src_term: Tensor,
        dst_term: Tensor,
        edge_attr: Tensor,
        edge_weight: Tensor,
        values: Tensor,
        src: Tensor,
        dst: Tensor,
        norm_weight: Tensor | None,
        norm_bias: Tensor | None,
        running_mean: Tensor | None,
        running_var: Tensor | None,
        norm_training: bool,
        momentum: float,
        eps: float,
        layer_norm: bool,
        update_edges: bool,
        residual: bool,
    ) -> tuple[Tensor, Tensor, Tensor]:
        args: NormArgs = (
            norm_weight, norm_bias, running_mean, running_var,
            norm_training, momentum, eps, layer_norm,
        )  # fmt: skip
        dtype = compute_dtype(edge_attr)
        src_term, dst_term, edge_attr, edge_weight, values = (
            t.to(dtype) for t in (src_term, dst_term, edge_attr, edge_weight, values)
        )
        num_nodes = src_term.size(0)
        m = src_term.index_select(0, src)
        m.add_(dst_term.index_select(0, dst))
        m.addmm_(edge_attr, edge_weight.t())
        gate = torch.sigmoid(m)
        messages = values.index_select(0, src).mul_(gate)
        weighted = messages.new_zeros(num_nodes, m.size(1)).index_add_(0, dst, messages)
        del messages
        norm = gate.new_zeros(num_nodes, m.size(1)).index_add_(0, dst, gate)
        del gate
        mean = invstd = m.new_empty(0)
        if update_edges:
            out, mean, invstd = norm_silu_forward(m, args)
            if residual:
                out.add_(edge_attr)
        else:
            out = m.new_empty(0)
        ctx.save_for_backward(
            m, edge_attr, edge_weight, values, src, dst, *save_norm(ctx, args), mean, invstd
        )
        ctx.update_edges, ctx.residual = update_edges, residual
        return weighted, norm, out

    @staticmethod
    @once_differentiable
    def backward(
        ctx: FunctionCtx, grad_weighted: Tensor, grad_norm: Tensor, grad_out: Tensor
    ) -> tuple[Tensor | None, ...]:
        m, edge_attr, edge_weight, values, src, dst, *norm, mean, invstd = ctx.saved_tensors
        dtype = m.dtype
        grad_weighted, grad_norm = grad_weighted.to(dtype), grad_norm.to(dtype)
        gate = torch.sigmoid(m)
        grad_messages = grad_weighted.index_select(0, dst)
        # d gate = d weighted[dst] * values[src] + d norm[dst]; then through the sigmoid.
        grad_m = values.index_select(0, src).mul_(grad_messages)
        grad_values = torch.zeros_like(values).index_add_(0, src, grad_messages.mul_(gate))
        # reuse that buffer for d norm[dst]: one per-edge buffer less at the peak
        grad_m.add_(torch.index_select(grad_norm, 0, dst, out=grad_messages))
        del grad_messages
        torch.ops.aten.sigmoid_backward.grad_input(grad_m, gate, grad_input=grad_m)
        del gate
        grad_norm_weight = grad_norm_bias = None
        if ctx.update_edges:
            grad_out = grad_out.to(dtype)
            grad_norm_m, grad_norm_weight, grad_norm_bias = norm_silu_backward(
                grad_out, m, saved_norm_args(ctx, norm), mean, invstd
            )
            grad_m.add_(grad_norm_m)
            del grad_norm_m
        num_nodes = values.size(0)
        grad_src_term = grad_m.new_zeros(num_nodes, grad_m.size(1)).index_add_(0, src, grad_m)
        grad_dst_term = grad_m.new_zeros(num_nodes, grad_m.size(1)).index_add_(0, dst, grad_m)
        if ctx.update_edges and ctx.residual:
            grad_edge_attr = torch.addmm(grad_out, grad_m, edge_weight)
        else:
            grad_edge_attr = grad_m @ edge_weight
        grad_edge_weight = grad_m.t() @ edge_attr
        return (
            grad_src_term,
            grad_dst_term,
            grad_edge_attr,
            grad_edge_weight,
            grad_values,
            None,
            None,
            grad_norm_weight,
            grad_norm_bias,
            *(None,) * 8,
        )


def edge_gating(
    src_term: Tensor,
    dst_term: Tensor,
    edge_attr: Tensor,
    edge_weight: Tensor,
    values: Tensor,
    edge_index: Tensor,
    norm_edges: nn.BatchNorm1d | nn.LayerNorm | None,
    residual: bool,
) -> tuple[Tensor, Tensor, Tensor | None]:
    r"""Gate, aggregate and (optionally) update the edges of an edge-gated convolution.

    .. math::
        m_{ij} &= s_j + d_i + W e_{ij}, \qquad \eta_{ij} = \sigma(m_{ij}) \\
        \mathrm{weighted}_i &= \sum_j \eta_{ij} \odot v_j, \qquad
        \mathrm{norm}_i = \sum_j \eta_{ij} \\
        e_{ij}' &= [e_{ij} +] \mathrm{SiLU}(\mathrm{norm}(m_{ij}))

    ``j`` is the sender (``edge_index[0]``) and ``i`` the receiver (``edge_index[1]``); the bias
    of the edge term belongs in ``src_term``.

    Args:
        src_term: ``s``, the sender's gate term (with the edge term's bias added).
        dst_term: ``d``, the receiver's gate term.
        edge_attr: ``e``, the edge features.
        edge_weight: ``W``, the edge term's weight (``[F_out, F_in]``, as ``nn.Linear``).
        values: ``v``, the sender's values to aggregate.
        edge_index: senders and receivers.
        norm_edges: the edge update's ``BatchNorm1d`` or ``LayerNorm``, or None to skip the
            edge update.
        residual: add ``e`` to the updated edges.

    Shapes:
        src_term, dst_term, values ``[N, F]``, edge_attr ``[E, F_in]``, edge_index ``[2, E]``
        -> weighted ``[N, F]``, norm ``[N, F]``, updated edges ``[E, F]`` or None.
    """
    if norm_edges is None:
        args: NormArgs = (None, None, None, None, False, 0.0, 0.0, False)
    else:
        args = norm_arguments(norm_edges)
    weighted, norm, out = _EdgeGating.apply(
        src_term,
        dst_term,
        edge_attr,
        edge_weight,
        values,
        edge_index[0],
        edge_index[1],
        *args,
        norm_edges is not None,
        residual,
    )
    return weighted, norm, out if norm_edges is not None else None
