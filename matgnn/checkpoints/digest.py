"""SHA-256 digests of tensors and of a network's weights: one byte format for every place that
names weights by their content (the feature cache's backbone fingerprint, a benchmark's record
of which generator made its numbers).

A tensor contributes its dtype, its shape and its bytes (row-major, on the CPU); a state dict
its tensors in sorted name order, each after its name. So the same weights give the same digest
whatever device or module instance holds them, and another dtype, shape, name or value gives
another.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn


def update_with_tensor(h: Any, tensor: Tensor) -> None:
    """Feed a tensor's dtype, shape and bytes to the hash object ``h``."""
    tensor = tensor.detach().cpu().contiguous()
    h.update(f"{tensor.dtype}{tuple(tensor.shape)}".encode())
    h.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())


def update_with_state(h: Any, state: Mapping[str, Tensor]) -> None:
    """Feed a state dict to ``h``: each tensor after its name, names sorted."""
    for name, tensor in sorted(state.items()):
        h.update(name.encode())
        update_with_tensor(h, tensor)


def state_digest(weights: nn.Module | Mapping[str, Tensor]) -> str:
    """SHA-256 (hex) of a network's state dict, or of a state dict itself."""
    h = hashlib.sha256()
    update_with_state(h, weights.state_dict() if isinstance(weights, nn.Module) else weights)
    return h.hexdigest()
