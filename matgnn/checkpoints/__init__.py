"""Checkpoints and pretrained models: the registry of names a checkpoint may use, the model
config as validated data, format versions with migrations, reading and writing files, and the
pretrained models with their cards.

* :mod:`~matgnn.checkpoints.registry`: stable name -> matgnn class (``@register("cgcnn")``);
* :mod:`~matgnn.checkpoints.safe_config`: model configs as data, validated before anything is
  built;
* :mod:`~matgnn.checkpoints.migrations`: format versions and how older files are read;
* :mod:`~matgnn.checkpoints.files`: :func:`read_checkpoint`, :func:`load_model`,
  :func:`slim_checkpoint`;
* :mod:`~matgnn.checkpoints.pretrained`: :func:`list_pretrained`, :func:`load_pretrained`.

This package imports no model at import time (the models import the registry); the functions
below import what they need when called.
"""

from __future__ import annotations

from typing import Any

from matgnn.checkpoints.registry import register, registered

_LAZY = {
    "read_checkpoint": "matgnn.checkpoints.files",
    "load_model": "matgnn.checkpoints.files",
    "model_from_checkpoint": "matgnn.checkpoints.files",
    "slim_checkpoint": "matgnn.checkpoints.files",
    "CheckpointError": "matgnn.checkpoints.files",
    "UnsafeConfigError": "matgnn.checkpoints.safe_config",
    "list_pretrained": "matgnn.checkpoints.pretrained",
    "load_pretrained": "matgnn.checkpoints.pretrained",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'matgnn.checkpoints' has no attribute {name!r}")


__all__ = [*sorted(_LAZY), "register", "registered"]
