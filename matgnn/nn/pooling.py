"""Per-crystal readout of per-atom features."""

from __future__ import annotations

import torch
from torch import Tensor
from torch_geometric.utils import scatter

READOUTS = ("mean", "sum")


def pool(x: Tensor, batch: Tensor | None, num_crystals: int, readout: str) -> Tensor:
    """Mean (intensive targets) or sum (extensive targets) over each crystal's atoms.

    Shapes:
        x ``[N, *]``, batch ``[N]`` -> ``[num_crystals, *]``.
    """
    if readout not in READOUTS:
        raise ValueError(f"readout must be one of {READOUTS}, got {readout!r}")
    if batch is None:
        batch = torch.zeros(x.size(0), dtype=torch.long, device=x.device)
    return scatter(x, batch, dim=0, dim_size=num_crystals, reduce=readout)
