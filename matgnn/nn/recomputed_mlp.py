"""``Linear -> BatchNorm -> SiLU`` blocks that keep only their input for the backward pass.

ALIGNN embeds every bond angle with two such blocks (40 -> 64 -> 256 features). Written as
separate autograd ops they keep five per-angle tensors for the backward pass, the two widest
ones ``[T, 256]`` (about 100 MB each for a batch of 64 MP crystals); :class:`RecomputedMLP`
keeps only each block's input and recomputes the linear map, the normalisation and the
activation in the backward pass: one more forward GEMM per block (about 1% of an ALIGNN step)
for 250 MB less memory per batch. The parameters and their names are those of the
``nn.Sequential`` that :func:`matgnn.nn.mlp.mlp` builds, so checkpoints load either way.

Only first derivatives are supported (``once_differentiable``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.autograd.function import FunctionCtx, once_differentiable

from matgnn.nn.edge_gating import (
    batch_norm_arguments,
    batch_norm_silu_backward,
    compute_dtype,
)


class _LinearBatchNormSiLU(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: FunctionCtx,
        x: Tensor,
        weight: Tensor,
        bias: Tensor | None,
        bn_weight: Tensor | None,
        bn_bias: Tensor | None,
        running_mean: Tensor | None,
        running_var: Tensor | None,
        bn_training: bool,
        momentum: float,
        eps: float,
    ) -> Tensor:
        dtype = compute_dtype(x)
        x, weight = x.to(dtype), weight.to(dtype)
        bias = None if bias is None else bias.to(dtype)
        y = F.linear(x, weight, bias)
        out, mean, invstd = torch.native_batch_norm(
            y, bn_weight, bn_bias, running_mean, running_var, bn_training, momentum, eps
        )
        del y
        F.silu(out, inplace=True)
        if bn_training:  # as in edge_gating: the running statistics are not needed
            running_mean = running_var = None
        ctx.save_for_backward(
            x, weight, bias, bn_weight, bn_bias, running_mean, running_var, mean, invstd
        )
        ctx.bn_training, ctx.eps = bn_training, eps
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx: FunctionCtx, grad_out: Tensor) -> tuple[Tensor | None, ...]:
        x, weight, bias, bn_weight, bn_bias, running_mean, running_var, mean, invstd = (
            ctx.saved_tensors
        )
        dtype = x.dtype
        grad_out = grad_out.to(dtype)
        y = F.linear(x, weight, bias)
        grad_y, grad_bn_weight, grad_bn_bias = batch_norm_silu_backward(
            grad_out, y, bn_weight, bn_bias, running_mean, running_var,
            mean, invstd, ctx.bn_training, ctx.eps,
        )  # fmt: skip
        del y
        grad_x = grad_y @ weight if ctx.needs_input_grad[0] else None
        grad_weight = grad_y.t() @ x
        grad_bias = None if bias is None else grad_y.sum(0)
        return (
            grad_x,
            grad_weight,
            grad_bias,
            grad_bn_weight,
            grad_bn_bias,
            None,
            None,
            None,
            None,
            None,
        )


def linear_batch_norm_silu(x: Tensor, linear: nn.Linear, bn: nn.BatchNorm1d) -> Tensor:
    """``SiLU(BN(linear(x)))`` keeping only ``x`` for the backward pass.

    Shapes: x ``[M, in]`` -> ``[M, out]``.
    """
    return _LinearBatchNormSiLU.apply(x, linear.weight, linear.bias, *batch_norm_arguments(bn))


class RecomputedMLP(nn.Sequential):
    """An ``nn.Sequential`` of ``Linear``, ``BatchNorm1d`` and activation modules whose
    ``Linear -> BatchNorm1d -> SiLU`` runs go through :func:`linear_batch_norm_silu`; any
    other module runs as it is. Same parameters and state-dict keys as the plain
    ``nn.Sequential``.

    Shapes: ``[M, in]`` -> ``[M, out]``.
    """

    def forward(self, x: Tensor) -> Tensor:
        modules = list(self)
        i = 0
        while i < len(modules):
            block = modules[i : i + 3]
            if (
                len(block) == 3
                and isinstance(block[0], nn.Linear)
                and isinstance(block[1], nn.BatchNorm1d)
                and type(block[2]) is nn.SiLU
                and x.dim() == 2
            ):
                x = linear_batch_norm_silu(x, block[0], block[1])
                i += 3
            else:
                x = modules[i](x)
                i += 1
        return x
