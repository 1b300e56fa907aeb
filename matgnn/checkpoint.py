"""Rebuild a trained model from its checkpoint file alone, safely, without Lightning.

A matgnn checkpoint (written by ``matgnn.train``) carries, in ``hyper_parameters``:

* ``model``: the resolved model config as data: the graph config with every field (no preset
  reference), the backbone, one head per output, and the declared outputs;
* ``provenance``: matgnn version, task name, target columns, data source, split-file SHA-256;

and in ``state_dict`` the weights with the normalisation buffers of every head. Nothing is
read from ``configs/`` or the working directory, and the file is read with
``torch.load(weights_only=True)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from hydra.utils import instantiate

from matgnn.models import CrystalModel


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint's dictionary (``weights_only=True``), with a clear error for a file that
    is missing or is no matgnn checkpoint."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint file")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ValueError(f"{path}: cannot be read as a checkpoint ({exc})") from None
    if not isinstance(checkpoint, dict) or "model" not in checkpoint.get("hyper_parameters", {}):
        raise ValueError(f"{path}: not a matgnn checkpoint (no hyper_parameters.model)")
    return checkpoint


def model_from_checkpoint(checkpoint: dict[str, Any]) -> CrystalModel:
    """Instantiate the model config of a checkpoint dict and load its weights strictly."""
    hyper = checkpoint["hyper_parameters"]
    model = instantiate(hyper["model"])
    state = {
        key.removeprefix("model."): value
        for key, value in checkpoint["state_dict"].items()
        if key.startswith("model.")
    }
    model.load_state_dict(state)
    model.provenance = dict(hyper.get("provenance") or {})
    return model


def load_model(path: str | Path) -> CrystalModel:
    """The :class:`~matgnn.models.CrystalModel` of a matgnn checkpoint, in eval mode, with
    ``model.outputs`` (what it predicts) and ``model.provenance`` (what it was trained on)."""
    return model_from_checkpoint(read_checkpoint(path)).eval()


#: what :func:`slim_checkpoint` keeps: enough for :func:`load_model` and to know the epoch
SLIM_KEYS = (
    "hyper_parameters",
    "state_dict",
    "epoch",
    "global_step",
    "pytorch-lightning_version",
    # matgnn.uncertainty: the estimator, its calibration and an ensemble's members
    "uncertainty",
    "ensemble_state_dicts",
)


#: :func:`slim_checkpoint` with ``half=True`` stores float32 tensors of at least this many values
#: as float16; smaller ones (biases, normalisation statistics) stay exact
HALF_MIN_SIZE = 1024


def slim_checkpoint(
    checkpoint: dict[str, Any] | str | Path, target: str | Path, half: bool = False
) -> Path:
    """Save a training checkpoint (a file, or the dict :func:`read_checkpoint` returned)
    without what only resuming needs (optimizer and scheduler state, loops, callbacks): a third
    of the size for AdamW, still read by :func:`load_model` (e.g. the per-fold ``model.ckpt``
    of a Matbench submission).

    ``half=True`` halves it again: float32 weight tensors of :data:`HALF_MIN_SIZE` values or
    more are stored as float16 (a pretrained model shipped in the package). Loading casts them
    back to the model's float32 parameters (``load_state_dict`` copies across dtypes); the
    rounding is a relative 5e-4 per weight, so check the predictions of the stored model.
    """
    if not isinstance(checkpoint, dict):
        checkpoint = read_checkpoint(checkpoint)
    target = Path(target)
    slim = {k: checkpoint[k] for k in SLIM_KEYS if k in checkpoint}
    if half:
        slim["state_dict"] = {
            key: value.half()
            if value.dtype == torch.float32 and value.numel() >= HALF_MIN_SIZE
            else value
            for key, value in slim["state_dict"].items()
        }
    torch.save(slim, target)
    return target
