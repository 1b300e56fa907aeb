"""``Linear -> norm -> SiLU`` blocks (BatchNorm or LayerNorm) that keep only their input for
the backward pass.

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

from matgnn.nn.norm_silu import (
    NormArgs,
    compute_dtype,
    norm_arguments,
    norm_silu_backward,
    norm_silu_forward,
    save_norm,
    saved_norm_args,
)


class _LinearNormSiLU(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: FunctionCtx,
        x: Tensor,
        weight: Tensor,
        bias: Tensor | None,
        norm_weight: Tensor | None,
        norm_bias: Tensor | None,
        running_mean: Tensor | None,
        running_var: Tensor | None,
        norm_training: bool,
        momentum: float,
        eps: float,
        layer_norm: bool,
    ) -> Tensor:
        args: NormArgs = (
            norm_weight, norm_bias, running_mean, running_var,
            norm_training, momentum, eps, layer_norm,
        )  # fmt: skip
        dtype = compute_dtype(x)
        x, weight = x.to(dtype), weight.to(dtype)
        bias = None if bias is None else bias.to(dtype)
        y = F.linear(x, weight, bias)
        out, mean, invstd = norm_silu_forward(y, args)
        del y
        ctx.save_for_backward(x, weight, bias, *save_norm(ctx, args), mean, invstd)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx: FunctionCtx, grad_out: Tensor) -> tuple[Tensor | None, ...]:
        x, weight, bias, *norm, mean, invstd = ctx.saved_tensors
        dtype = x.dtype
        grad_out = grad_out.to(dtype)
        y = F.linear(x, weight, bias)
        grad_y, grad_norm_weight, grad_norm_bias = norm_silu_backward(
            grad_out, y, saved_norm_args(ctx, norm), mean, invstd
        )
        del y
        grad_x = grad_y @ weight if ctx.needs_input_grad[0] else None
        grad_weight = grad_y.t() @ x
        grad_bias = None if bias is None else grad_y.sum(0)
        return (
            grad_x,
            grad_weight,
            grad_bias,
            grad_norm_weight,
            grad_norm_bias,
            *(None,) * 6,
        )


def linear_norm_silu(x: Tensor, linear: nn.Linear, norm: nn.BatchNorm1d | nn.LayerNorm) -> Tensor:
    """``SiLU(norm(linear(x)))`` keeping only ``x`` for the backward pass.

    Shapes: x ``[M, in]`` -> ``[M, out]``.
    """
    return _LinearNormSiLU.apply(x, linear.weight, linear.bias, *norm_arguments(norm))


#: the norms a recomputed block can hold
RECOMPUTED_NORMS = (nn.BatchNorm1d, nn.LayerNorm)


class RecomputedMLP(nn.Sequential):
    """An ``nn.Sequential`` of ``Linear``, norm and activation modules whose
    ``Linear -> BatchNorm1d | LayerNorm -> SiLU`` runs go through :func:`linear_norm_silu`;
    any other module runs as it is. Same parameters and state-dict keys as the plain
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
                and isinstance(block[1], RECOMPUTED_NORMS)
                and type(block[2]) is nn.SiLU
                and x.dim() == 2
            ):
                x = linear_norm_silu(x, block[0], block[1])
                i += 3
            else:
                x = modules[i](x)
                i += 1
        return x
