"""``SiLU(norm(x))`` with BatchNorm or LayerNorm, as the forward and backward halves that the
fused autograd functions (:mod:`matgnn.nn.edge_gating`, :mod:`matgnn.nn.recomputed_mlp`) call.

The forward returns the two statistics the backward needs (BatchNorm: the batch mean and
inverse standard deviation per feature; LayerNorm: the mean and inverse standard deviation per
row, ``[M, 1]``); the backward recomputes the normalised values from ``x`` and those
statistics instead of keeping them, one elementwise pass for a ``[M, F]`` tensor less in memory.

A norm's arguments travel as one tuple, :data:`NormArgs`, ``(weight, bias, running_mean,
running_var, training, momentum, eps, layer_norm)``, as :func:`norm_arguments` reads them from
an ``nn.BatchNorm1d`` or ``nn.LayerNorm`` (LayerNorm: no running statistics, ``training``
unused).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.autograd.function import FunctionCtx

#: ``(weight, bias, running_mean, running_var, training, momentum, eps, layer_norm)``
NormArgs = tuple[
    Tensor | None, Tensor | None, Tensor | None, Tensor | None, bool, float, float, bool
]


def compute_dtype(reference: Tensor) -> torch.dtype:
    """The dtype a fused function computes in: autocast's where it is on, else the input's."""
    device = reference.device.type
    if torch.is_autocast_enabled(device):
        return torch.get_autocast_dtype(device)
    return reference.dtype


def norm_arguments(norm: nn.BatchNorm1d | nn.LayerNorm) -> NormArgs:
    """The norm's :data:`NormArgs`. For BatchNorm as ``nn.BatchNorm1d.forward`` would pass them
    to ``F.batch_norm``, with its running-stats bookkeeping (``num_batches_tracked``,
    cumulative averaging when ``momentum`` is None); a LayerNorm over more than the last
    dimension is refused."""
    if isinstance(norm, nn.LayerNorm):
        if len(norm.normalized_shape) != 1:
            raise ValueError(
                f"a fused LayerNorm normalises the last dimension only, got normalized_shape="
                f"{tuple(norm.normalized_shape)}"
            )
        return norm.weight, norm.bias, None, None, True, 0.0, norm.eps, True
    momentum = 0.0 if norm.momentum is None else norm.momentum
    if norm.training and norm.track_running_stats and norm.num_batches_tracked is not None:
        norm.num_batches_tracked.add_(1)
        if norm.momentum is None:
            momentum = 1.0 / float(norm.num_batches_tracked)
    training = norm.training or (norm.running_mean is None and norm.running_var is None)
    use_running = not norm.training or norm.track_running_stats
    return (
        norm.weight,
        norm.bias,
        norm.running_mean if use_running else None,
        norm.running_var if use_running else None,
        training,
        momentum,
        norm.eps,
        False,
    )


def _affine(weight: Tensor | None, bias: Tensor | None, dtype: torch.dtype) -> tuple:
    return (
        None if weight is None else weight.to(dtype),
        None if bias is None else bias.to(dtype),
    )


def norm_silu_forward(x: Tensor, args: NormArgs) -> tuple[Tensor, Tensor, Tensor]:
    """``(SiLU(norm(x)), mean, invstd)``; a BatchNorm in training mode updates its running
    statistics in place.

    Shapes: x ``[M, F]`` -> ``[M, F]``, and ``[F]`` (BatchNorm) or ``[M, 1]`` (LayerNorm) twice.
    """
    weight, bias, running_mean, running_var, training, momentum, eps, layer_norm = args
    if layer_norm:
        weight, bias = _affine(weight, bias, x.dtype)
        # x is in the compute dtype already; CUDA autocast would run LayerNorm in float32
        with torch.autocast(x.device.type, enabled=False):
            out, mean, invstd = torch.native_layer_norm(x, (x.size(-1),), weight, bias, eps)
    else:
        out, mean, invstd = torch.native_batch_norm(
            x, weight, bias, running_mean, running_var, training, momentum, eps
        )
    return F.silu(out, inplace=True), mean, invstd


def saved_running_stats(args: NormArgs) -> tuple[Tensor | None, Tensor | None]:
    """The running statistics a backward needs: none in training mode, where the backward uses
    the batch statistics (the running ones are updated in place by the next forward, so saving
    them would break two forwards then one backward)."""
    _, _, running_mean, running_var, training, _, _, layer_norm = args
    if training or layer_norm:
        return None, None
    return running_mean, running_var


def save_norm(ctx: FunctionCtx, args: NormArgs) -> tuple[Tensor | None, ...]:
    """Keep on ``ctx`` the scalars of ``args`` that a backward needs; returns the norm's
    tensors to pass to ``ctx.save_for_backward`` (weight, bias and :func:`saved_running_stats`),
    which :func:`saved_norm_args` turns back into :data:`NormArgs`."""
    weight, bias, _, _, training, _, eps, layer_norm = args
    ctx.norm_training, ctx.eps, ctx.layer_norm = training, eps, layer_norm
    return weight, bias, *saved_running_stats(args)


def saved_norm_args(ctx: FunctionCtx, saved: Sequence[Tensor | None]) -> NormArgs:
    """The :data:`NormArgs` of a backward, from the four tensors :func:`save_norm` returned
    (in ``ctx.saved_tensors``) and the scalars it kept; momentum is unused there (0)."""
    weight, bias, running_mean, running_var = saved
    return (
        weight, bias, running_mean, running_var, ctx.norm_training, 0.0, ctx.eps, ctx.layer_norm
    )  # fmt: skip


def norm_silu_backward(
    grad_out: Tensor, x: Tensor, args: NormArgs, mean: Tensor, invstd: Tensor
) -> tuple[Tensor, Tensor | None, Tensor | None]:
    """Gradients of ``SiLU(norm(x))`` with respect to ``x`` and the norm's weight and bias,
    recomputing the normalised values from ``x`` and the forward's ``mean`` and ``invstd``
    (for BatchNorm in eval mode, from the running statistics in ``args`` instead)."""
    weight, bias, running_mean, running_var, training, _, eps, layer_norm = args
    dtype = x.dtype
    if layer_norm:
        weight_c, bias_c = _affine(weight, bias, dtype)
        # the statistics may come in a wider dtype than x (a reduced-precision input on a GPU);
        # on a CPU they come in x's, so a bf16 backward evaluates SiLU' at bf16-rounded values
        normalized = torch.sub(x, mean.to(dtype)).mul_(invstd.to(dtype))
        if weight_c is not None:
            normalized.mul_(weight_c)
        if bias_c is not None:
            normalized.add_(bias_c)
    else:
        if training:
            stats_mean, stats_invstd = mean, invstd
        else:
            stats_mean, stats_invstd = running_mean, (running_var + eps).rsqrt()
        scale = stats_invstd if weight is None else weight * stats_invstd
        shift = -stats_mean * scale if bias is None else bias - stats_mean * scale
        normalized = torch.addcmul(shift.to(dtype), x, scale.to(dtype))
    grad_normalized = torch.ops.aten.silu_backward.grad_input(
        grad_out, normalized, grad_input=normalized
    )
    if layer_norm:
        return torch.ops.aten.native_layer_norm_backward(
            grad_normalized,
            x,
            [x.size(-1)],
            mean,
            invstd,
            weight_c,
            bias_c,
            [True, weight is not None, bias is not None],
        )
    return torch.ops.aten.native_batch_norm_backward(
        grad_normalized,
        x,
        weight,
        running_mean,
        running_var,
        mean if training else None,
        invstd if training else None,
        training,
        eps,
        [True, weight is not None, bias is not None],
    )
