"""State-dict helpers shared by the converters."""

from __future__ import annotations

from collections.abc import Mapping

from torch import Tensor


def numbered_layers(state: Mapping[str, Tensor], prefix: str) -> int:
    """How many ``<prefix>.<i>.`` layers ``state`` holds; they must be numbered ``0 .. n-1``
    without gaps (``ValueError`` otherwise)."""
    found = {key[len(prefix) + 1 :].split(".")[0] for key in state if key.startswith(prefix + ".")}
    if any(not index.isdigit() for index in found):
        raise ValueError(f"{prefix}.<index> keys that are not numbered: {sorted(found)}")
    count = len(found)
    if {int(index) for index in found} != set(range(count)):
        raise ValueError(f"{prefix} layers are not numbered 0..{count - 1}: {sorted(found)}")
    return count
