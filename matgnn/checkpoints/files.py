"""Read, check and write matgnn checkpoint files; rebuild the model from the file alone.

A matgnn checkpoint (written by a training run) carries, in ``hyper_parameters``:

* ``model``: the model as data (:mod:`matgnn.checkpoints.safe_config`): the graph config with
  every field, the backbone, one head per output and the declared outputs, each object named
  by its registered name;
* ``provenance``: matgnn version, task, targets, data source, split SHA-256, training elements;
* ``recipe``: the optimizer and schedule, described (never instantiated);

``matgnn_format`` (:data:`~matgnn.checkpoints.migrations.FORMAT_VERSION`), and in
``state_dict`` the weights with every head's normalisation buffers. A file is read with
``torch.load(weights_only=True)``, migrated to the current format, and checked whole
(:func:`check_checkpoint`) before any object is constructed: a crafted file that names
anything outside the registry, or holds more than plain data where data belongs, is refused
with the file and the key path, and nothing of it runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from matgnn.checkpoints import safe_config
from matgnn.checkpoints.migrations import FORMAT_KEY, FORMAT_VERSION, migrate
from matgnn.checkpoints.safe_config import UnsafeConfigError

#: the estimators a checkpoint's ``uncertainty`` may name (matgnn.uncertainty)
ESTIMATORS = ("ensemble", "mc_dropout", "mean_variance", "latent_distance")
#: the tensors of a checkpoint's ``latent_distance`` (one per model, matgnn.uncertainty.latent)
LATENT_TENSORS = ("references", "center", "scale")
#: the root object of a checkpoint's model
MODEL_CLASS = "crystal_model"


class CheckpointError(ValueError):
    """A file that is not a usable, safe matgnn checkpoint; the message names the file."""


def _check_state(state: Any, where: str) -> None:
    if not isinstance(state, Mapping) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise UnsafeConfigError(f"{where}: must map parameter names to tensors")


def _check_latent(latent: Any) -> None:
    """``latent_distance``: plain values, and lists of tensors under :data:`LATENT_TENSORS`."""
    if not isinstance(latent, Mapping):
        raise UnsafeConfigError("latent_distance: must be a dict")
    safe_config.check_size(latent, "latent_distance")
    for key in LATENT_TENSORS:
        tensors = latent.get(key)
        if not isinstance(tensors, list | tuple) or not all(
            isinstance(t, torch.Tensor) and t.is_floating_point() for t in tensors
        ):
            raise UnsafeConfigError(f"latent_distance.{key}: must be a list of float tensors")
    plain = {k: v for k, v in latent.items() if k not in LATENT_TENSORS}
    safe_config.check_plain(plain, "latent_distance")
    references, center, scale = (latent[k] for k in LATENT_TENSORS)
    shapes_agree = len(references) == len(center) == len(scale) > 0 and all(
        r.ndim == 2 and c.shape == s.shape == (r.shape[1],)
        for r, c, s in zip(references, center, scale, strict=True)
    )
    if not shapes_agree:
        raise UnsafeConfigError(
            "latent_distance: one [R, F] reference and [F] centre and scale per model expected"
        )
    if not isinstance(latent.get("neighbours"), int) or latent["neighbours"] < 1:
        raise UnsafeConfigError("latent_distance.neighbours: must be an integer >= 1")
    for key in ("median", "threshold"):
        if latent.get(key) is not None and not isinstance(latent[key], int | float):
            raise UnsafeConfigError(f"latent_distance.{key}: must be a number or null")


def check_checkpoint(checkpoint: Any) -> dict[str, Any]:
    """``checkpoint`` migrated to the current format and checked whole; raises
    :class:`~matgnn.checkpoints.safe_config.UnsafeConfigError` naming the key path.

    Checked: the model config against the registry (root ``crystal_model``); every other
    hyper-parameter, the provenance and the uncertainty settings as plain data with no class
    names; the estimator name; the state dicts as name -> tensor; the latent distance as
    plain values and lists of tensors."""
    if not isinstance(checkpoint, Mapping):
        raise UnsafeConfigError(f"<root>: a checkpoint is a dict, got {type(checkpoint).__name__}")
    hyper = checkpoint.get("hyper_parameters")
    if not isinstance(hyper, Mapping) or "model" not in hyper:
        raise UnsafeConfigError("not a matgnn checkpoint (no hyper_parameters.model)")
    safe_config.check_size(hyper, "hyper_parameters")  # before anything walks it
    safe_config.check_size(checkpoint.get("uncertainty"), "uncertainty")
    checkpoint = migrate(checkpoint)
    hyper = checkpoint["hyper_parameters"]
    model = hyper["model"]
    safe_config.validate(model, "hyper_parameters.model", root=MODEL_CLASS)
    for key, value in hyper.items():
        if key != "model":
            safe_config.check_plain(value, f"hyper_parameters.{key}")
    if "uncertainty" in checkpoint:
        settings = checkpoint["uncertainty"]
        safe_config.check_plain(settings, "uncertainty")
        if not isinstance(settings, Mapping) or settings.get("estimator") not in ESTIMATORS:
            raise UnsafeConfigError(
                f"uncertainty.estimator: must be one of {ESTIMATORS}, got "
                f"{settings.get('estimator') if isinstance(settings, Mapping) else settings!r}"
            )
    if "latent_distance" in checkpoint:
        _check_latent(checkpoint["latent_distance"])
    _check_state(checkpoint.get("state_dict"), "state_dict")
    for k, state in enumerate(checkpoint.get("ensemble_state_dicts") or []):
        _check_state(state, f"ensemble_state_dicts[{k}]")
    return checkpoint


def load_file(path: str | Path) -> Any:
    """A checkpoint file's content as data (``torch.load(weights_only=True)``), unchecked; a
    missing file is a ``FileNotFoundError``, an unreadable one a :class:`CheckpointError`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint file")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"{path}: cannot be read as a checkpoint ({exc})") from None


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint's dictionary, read with ``weights_only=True``, migrated to the current
    format and checked (:func:`check_checkpoint`); a missing, unreadable or unsafe file is a
    :class:`CheckpointError` naming it."""
    checkpoint = load_file(path)
    try:
        return check_checkpoint(checkpoint)
    except UnsafeConfigError as exc:
        raise CheckpointError(f"{path}: refused: {exc}") from None


def parameter_count(checkpoint: Mapping[str, Any]) -> int:
    """Trainable parameters of the checkpoint's model, as a card states them: buffers
    (normaliser statistics, batch-norm running means, element references) are not counted."""
    network = model_from_checkpoint(checkpoint)
    return sum(p.numel() for p in network.parameters() if p.requires_grad)


def model_from_checkpoint(checkpoint: Mapping[str, Any]):
    """The :class:`~matgnn.models.CrystalModel` of a checkpoint dict (checked again here:
    a dict may come from anywhere), with its weights loaded strictly."""
    checkpoint = check_checkpoint(checkpoint)
    hyper = checkpoint["hyper_parameters"]
    model = safe_config.build(hyper["model"], "hyper_parameters.model", root=MODEL_CLASS)
    state = {
        key.removeprefix("model."): value
        for key, value in checkpoint["state_dict"].items()
        if key.startswith("model.")
    }
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:  # missing, unexpected or misshapen weights: say so, not torch
        detail = " ".join(line.strip() for line in str(exc).splitlines()[:4])
        raise CheckpointError(
            f"its weights do not fit the model its hyper_parameters describe ({detail})"
        ) from None
    model.provenance = dict(hyper.get("provenance") or {})
    return model


def load_model(path: str | Path):
    """The :class:`~matgnn.models.CrystalModel` of a matgnn checkpoint, in eval mode, with
    ``model.outputs`` (what it predicts) and ``model.provenance`` (what it was trained on)."""
    checkpoint = read_checkpoint(path)
    try:
        return model_from_checkpoint(checkpoint).eval()
    except ValueError as exc:  # CheckpointError and build's errors: named by the file
        raise CheckpointError(f"{path}: {exc}") from None


def stamp(checkpoint: dict[str, Any]) -> dict[str, Any]:
    """Mark a checkpoint dict as written in the current format."""
    checkpoint[FORMAT_KEY] = FORMAT_VERSION
    return checkpoint


#: what :func:`slim_checkpoint` keeps: enough for :func:`load_model` and to know the epoch
SLIM_KEYS = (
    FORMAT_KEY,
    "hyper_parameters",
    "state_dict",
    "epoch",
    "global_step",
    "pytorch-lightning_version",
    # matgnn.uncertainty: the estimator, its calibration and an ensemble's members
    "uncertainty",
    "ensemble_state_dicts",
    "latent_distance",
)


def kept_for_loading(checkpoint: Mapping[str, Any]) -> dict[str, Any]:
    """The entries of :data:`SLIM_KEYS` a checkpoint has: what loading it needs and what it
    says about itself, without what only resuming needs (a model's or a design network's)."""
    return {key: checkpoint[key] for key in SLIM_KEYS if key in checkpoint}


#: :func:`slim_checkpoint` with ``half=True`` stores float32 tensors of at least this many values
#: as float16; smaller ones (biases, normalisation statistics) stay exact
HALF_MIN_SIZE = 1024


def slim_checkpoint(
    checkpoint: dict[str, Any] | str | Path, target: str | Path, half: bool = False
) -> Path:
    """Save a training checkpoint (a file, or the dict :func:`read_checkpoint` returned)
    without what only resuming needs (optimizer and scheduler state, loops, callbacks), in the
    current format: a third of the size for AdamW, still read by :func:`load_model` (e.g. the
    per-fold ``model.ckpt`` of a Matbench submission).

    ``half=True`` halves it again: float32 weight tensors of :data:`HALF_MIN_SIZE` values or
    more are stored as float16 (a pretrained model shipped in the package). Loading casts them
    back to the model's float32 parameters (``load_state_dict`` copies across dtypes); the
    rounding is a relative 5e-4 per weight, so check the predictions of the stored model.
    """
    checkpoint = (
        check_checkpoint(checkpoint)
        if isinstance(checkpoint, Mapping)
        else read_checkpoint(checkpoint)
    )
    target = Path(target)
    slim = kept_for_loading(checkpoint)
    if half:
        slim["state_dict"] = {
            key: value.half()
            if value.dtype == torch.float32 and value.numel() >= HALF_MIN_SIZE
            else value
            for key, value in slim["state_dict"].items()
        }
    torch.save(stamp(slim), target)
    return target
