"""Rebuild a trained model from a checkpoint alone, loading it safely."""

from __future__ import annotations

from pathlib import Path

import torch
from hydra.utils import instantiate

from matgnn.models import CrystalModel


def load_model(path: str | Path) -> CrystalModel:
    """The :class:`CrystalModel` of a matgnn checkpoint, in eval mode.

    The checkpoint carries the resolved model config (``hyper_parameters["model"]``) and the
    weights including the normaliser buffers. It is read with ``weights_only=True``.
    """
    checkpoint = torch.load(Path(path), map_location="cpu", weights_only=True)
    try:
        config = checkpoint["hyper_parameters"]["model"]
    except KeyError:
        raise ValueError(f"{path}: not a matgnn checkpoint (no hyper_parameters.model)") from None
    model = instantiate(config)
    state = {
        key.removeprefix("model."): value
        for key, value in checkpoint["state_dict"].items()
        if key.startswith("model.")
    }
    model.load_state_dict(state)
    return model.eval()
