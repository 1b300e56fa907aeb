"""What the pretrained backbones (:mod:`matgnn.models.chgnet`, :mod:`matgnn.models.sevennet`)
check alike when built: the release of the package that holds their weights, and which of
their interaction blocks' features to read."""

from __future__ import annotations

import logging
from collections.abc import Sequence

log = logging.getLogger(__name__)


def warn_on_another_release(model: str, package: str, installed: str, expected: str) -> None:
    """A warning naming both releases when ``installed`` is not the release ``expected`` (a
    checkpoint stores the one it was made with); weights still load."""
    if installed != expected:
        log.warning(
            "%s backbone: written for %s %s, %s %s is installed",
            model,
            package,
            expected,
            package,
            installed,
        )


def chosen_blocks(model: str, blocks: Sequence[int] | None, count: int) -> tuple[int, ...]:
    """``blocks`` as distinct block numbers from 0 to ``count - 1`` (``None``: every block);
    a ``ValueError`` naming ``model`` otherwise."""
    chosen = tuple(range(count)) if blocks is None else tuple(int(b) for b in blocks)
    if not chosen or any(not 0 <= b < count for b in chosen):
        raise ValueError(
            f"{model} blocks must be integers from 0 to {count - 1}, got {list(chosen)}"
        )
    if len(set(chosen)) != len(chosen):
        raise ValueError(f"{model} blocks must be distinct, got {list(chosen)}")
    return chosen
