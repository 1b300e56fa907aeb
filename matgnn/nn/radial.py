"""Expansions of a scalar (distance, cosine, potential) onto a fixed set of radial functions."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

#: Exponents below this give exactly 0 (``exp(-60)`` is 9e-27). Left alone, the far tails of
#: the basis land in float32's subnormal range (``exp(-87.3)`` to ``exp(-103.3)``), and on some
#: x86 CPUs a matrix product with subnormal operands runs on a slow microcode path (on an
#: Intel Xeon here; the AMD EPYC of other runs showed little sign of it): a CGCNN
#: training step (batch of 64 perovskites, 2 cores) took 0.58 s instead of 0.17 s, nearly all of
#: it in the weight gradients of the three convolutions, which all take the basis. -60 rather
#: than -87 leaves room for the products of kept values in the backward pass. Whenever the
#: width is at least about a fifteenth of the centre spacing (every basis in matgnn's models),
#: an ``x`` in ``[start, stop]`` has a value of ``O(1)`` at its nearest centre, so the dropped
#: tails are below the rounding of any sum that includes it (a training run gave bitwise the
#: same predictions); beyond ``stop`` + ``sqrt(60)`` widths a row is all zero, where before it
#: held values below 9e-27.
EXPONENT_FLOOR = -60.0


class GaussianBasis(nn.Module):
    """``exp(-((x - c_k) / width)^2)`` on ``num_basis`` centres evenly spaced in ``[start, stop]``.

    The reference codes differ only in the width:

    * CGCNN ``GaussianDistance(dmin=0, dmax=8, step=0.2)``: ``width = step``.
    * jarvis/ALIGNN/Matformer ``RBFExpansion``: ``exp(-(x - c)^2 / spacing)``, i.e.
      ``width = sqrt(spacing)`` (:meth:`jarvis`).
    * PotNet ``RBFExpansion``: ``exp(-((x - c) / spacing)^2)``, i.e. ``width = spacing``.

    Args:
        start: first centre.
        stop: last centre.
        num_basis: number of centres.
        width: Gaussian width; ``None`` means the centre spacing.

    Values below ``exp(EXPONENT_FLOOR)`` are exactly 0 (and so is their gradient): subnormal
    floats would slow every matrix product downstream.

    Shapes:
        input ``[*]`` -> output ``[*, num_basis]``.
    """

    def __init__(self, start: float, stop: float, num_basis: int, width: float | None = None):
        super().__init__()
        centers = torch.linspace(start, stop, num_basis)
        spacing = (stop - start) / max(num_basis - 1, 1)
        self.width = float(spacing if width is None else width)
        self.register_buffer("centers", centers)

    @classmethod
    def jarvis(cls, start: float, stop: float, num_basis: int) -> GaussianBasis:
        """jarvis-tools ``RBFExpansion(vmin, vmax, bins)``: gamma = 1 / spacing."""
        spacing = (stop - start) / max(num_basis - 1, 1)
        return cls(start, stop, num_basis, width=math.sqrt(spacing))

    def forward(self, x: Tensor) -> Tensor:
        exponent = -(((x.unsqueeze(-1) - self.centers) / self.width) ** 2)
        return torch.exp(exponent.masked_fill(exponent < EXPONENT_FLOOR, -math.inf))


class MultiquadricBasis(nn.Module):
    """``sqrt(1 + ((x - c_k) / width)^2)``: PotNet's basis for the infinite potential sums.

    Args:
        start: the first centre, as in :class:`GaussianBasis`.
        stop: the last centre.
        num_basis: the number of evenly spaced centres.
        width: ``None`` means the centre spacing (PotNet's ``lengthscale``).

    Shapes:
        input ``[*]`` -> output ``[*, num_basis]``.
    """

    def __init__(self, start: float, stop: float, num_basis: int, width: float | None = None):
        super().__init__()
        spacing = (stop - start) / max(num_basis - 1, 1)
        self.width = float(spacing if width is None else width)
        self.register_buffer("centers", torch.linspace(start, stop, num_basis))

    def forward(self, x: Tensor) -> Tensor:
        return torch.sqrt(1.0 + ((x.unsqueeze(-1) - self.centers) / self.width) ** 2)


def cosine_cutoff(distance: Tensor, r_max: float) -> Tensor:
    """Smooth step from 1 to 0 on ``[r_max / 2, r_max]`` (e3nn ``gate_points_2101``).

    ``f(r) = 1`` for ``r <= r_max/2``, ``(1 - cos(pi u)) / 2`` with ``u = 2 (r/r_max - 1)``
    in between, and 0 beyond ``r_max``; written with ``torch.where`` so it stays
    differentiable (no in-place masking).
    """
    u = 2.0 * (distance / r_max - 1.0)
    y = (1.0 - torch.cos(math.pi * u)) / 2.0
    y = torch.where(u > 0, torch.zeros_like(y), y)
    return torch.where(u < -1, torch.ones_like(y), y)
