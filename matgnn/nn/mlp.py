"""Small MLP helpers."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from torch import nn

from matgnn.nn.recomputed_mlp import RecomputedMLP


def activation(name: str) -> nn.Module:
    """An activation module by its ``torch.nn`` class name (``"SiLU"``, ``"Softplus"``, ...);
    only classes of ``torch.nn.modules.activation`` (and ``Identity``): the name may come from
    a checkpoint."""
    cls = getattr(nn, str(name), None)
    allowed = isinstance(cls, type) and issubclass(cls, nn.Module)
    allowed = allowed and (cls.__module__ == "torch.nn.modules.activation" or cls is nn.Identity)
    if not allowed:
        raise ValueError(
            f"unknown activation {name!r}: give a torch.nn activation class name like 'SiLU'"
        )
    return cls()


#: the normalisation layers :func:`mlp` and the edge-gated convolutions can put before an
#: activation, by name (ALIGNN's published network: ``"batch"``; upstream's ``alignn_atomwise``:
#: ``"layer"``)
NORMS: dict[str | None, type[nn.Module] | None] = {
    None: None,
    "batch": nn.BatchNorm1d,
    "layer": nn.LayerNorm,
}


def mlp(
    dims: Sequence[int],
    act: str = "SiLU",
    norm: str | None = None,
    activate_last: bool = False,
    recompute: bool = False,
    dropout: float = 0.0,
) -> nn.Sequential:
    """``Linear -> [norm] -> act`` for each step of ``dims``; the last step has no
    activation unless ``activate_last``. ``norm``: ``None``, ``"batch"`` (``BatchNorm1d``) or
    ``"layer"`` (``LayerNorm``), before each activation. With ``recompute``, a
    :class:`~matgnn.nn.recomputed_mlp.RecomputedMLP` (same parameters and keys) that keeps only
    the input of each ``Linear -> norm -> SiLU`` block for the backward pass: for MLPs
    applied to very many rows (ALIGNN's bond-angle embedding). ``dropout > 0`` puts an
    ``nn.Dropout`` before every ``Linear`` (what MC dropout samples, Gal & Ghahramani 2016)."""
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")
    if norm not in NORMS:
        raise ValueError(f"norm must be one of {sorted(NORMS, key=str)}, got {norm!r}")
    if recompute and norm is None:
        raise ValueError(
            "a recomputed MLP is Linear -> norm -> SiLU blocks: norm='batch' or norm='layer'"
        )
    if dropout and recompute:
        raise ValueError("a recomputed MLP cannot have dropout (its backward pass replays it)")
    layers: list[nn.Module] = []
    for i, (d_in, d_out) in enumerate(itertools.pairwise(dims)):
        if dropout:
            layers.append(nn.Dropout(dropout))
        layers.append(nn.Linear(d_in, d_out))
        last = i == len(dims) - 2
        if not last or activate_last:
            if norm is not None:
                layers.append(NORMS[norm](d_out))
            layers.append(activation(act))
    return (RecomputedMLP if recompute else nn.Sequential)(*layers)
