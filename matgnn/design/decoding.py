"""The peak threshold that decodes an autoencoder's basis images, chosen on validation structures.

An exact basis image holds each atom as a Gaussian whose peak voxel is at least 0.74 high, so
:class:`~matgnn.design.images.ImageSpec`'s ``peak_threshold`` (0.3) counts every atom and no
tail. A basis autoencoder's reconstruction lowers the peaks of the atoms it is unsure of, down
to a few hundredths, where 0.3 loses them. The threshold for decoded images is therefore
chosen per basis autoencoder on the validation structures, never on the test or held-out ones
(:func:`choose_peak_threshold` of :func:`~matgnn.design.evaluate.sweep_peak_thresholds`): the
most structures fully reconstructed, then the most taken for their original by
``StructureMatcher``, then the higher threshold. It is stored beside the run's checkpoints
as ``decoding.json`` (one number and the counts behind it: data, read as such) and used by
:func:`~matgnn.design.training.load_design_models` (so by ``python -m matgnn.generate``) and by
the evaluation; a run without the file decodes at the default.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import pandas as pd

from matgnn.design.images import ImageSpec

#: the file in a basis autoencoder's run folder
DECODING = "decoding.json"
#: the thresholds compared (0.02: the floor below which an exact image holds zeros)
THRESHOLDS = (0.01, 0.02, 0.03, 0.05, 0.1, 0.2, 0.3)


def choose_peak_threshold(frame: pd.DataFrame) -> float:
    """The threshold of a sweep (one row per structure and ``threshold``, with
    ``fully_reconstructed`` and ``matches``) with the most structures fully reconstructed, then
    the most matched, then the higher threshold (fewer spurious atoms where the counts tie)."""
    if frame.empty:
        raise ValueError("no structures in the peak-threshold sweep")
    counts = frame.groupby("threshold", as_index=False)[["fully_reconstructed", "matches"]].sum()
    ranked = counts.sort_values(["fully_reconstructed", "matches", "threshold"], ascending=False)
    return float(ranked["threshold"].iloc[0])


def write_decoding(run_dir: str | Path, frame: pd.DataFrame, chosen_on: str) -> float:
    """Choose the threshold of the sweep ``frame`` and store it, with each threshold's counts,
    in ``run_dir/decoding.json``; returns it."""
    threshold = choose_peak_threshold(frame)
    counts = frame.groupby("threshold")[["same_composition", "fully_reconstructed", "matches"]]
    record = {
        "peak_threshold": threshold,
        "chosen_on": chosen_on,
        "structures": int(frame["id"].nunique()),
        "criterion": "most fully reconstructed, then most matched, then the higher threshold",
        "counts": {
            f"{t:g}": {k: int(v) for k, v in row.items()} for t, row in counts.sum().iterrows()
        },
    }
    path = Path(run_dir) / DECODING
    path.write_text(json.dumps(record, indent=1) + "\n")
    return threshold


def read_peak_threshold(run_dir: str | Path) -> float | None:
    """The threshold stored in ``run_dir/decoding.json``, None without the file; a file whose
    threshold is not a number in (0, 1) is refused, naming it."""
    path = Path(run_dir) / DECODING
    if not path.is_file():
        return None
    try:
        value = json.loads(path.read_text())["peak_threshold"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{path}: no peak_threshold in it ({exc})") from exc
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{path}: peak_threshold {value!r} is not a number")
    if not (math.isfinite(value) and 0 < value < 1):
        raise ValueError(f"{path}: peak_threshold {value!r} is not in (0, 1)")
    return float(value)


def decoding_spec(spec: ImageSpec, basis_run: str | Path) -> ImageSpec:
    """``spec`` with the peak threshold chosen for the basis autoencoder of ``basis_run``
    (unchanged where the run has none)."""
    threshold = read_peak_threshold(basis_run)
    return spec if threshold is None else replace(spec, peak_threshold=threshold)


__all__ = [
    "DECODING",
    "THRESHOLDS",
    "choose_peak_threshold",
    "decoding_spec",
    "read_peak_threshold",
    "write_decoding",
]
