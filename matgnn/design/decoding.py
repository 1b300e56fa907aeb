"""The peak threshold that decodes an autoencoder's basis images, chosen on validation structures.

An exact basis image holds each atom as a Gaussian whose peak voxel is at least 0.74 high, so
:class:`~matgnn.design.images.ImageSpec`'s ``peak_threshold`` (0.3) counts every atom and no
tail. A basis autoencoder's reconstruction lowers the peaks of the atoms it is unsure of, down
to a few hundredths, where 0.3 loses them. The threshold for decoded images is therefore
chosen per basis autoencoder on the validation structures, never on the test or held-out ones
(:func:`choose_peak_threshold` of :func:`~matgnn.design.evaluate.sweep_peak_thresholds`): the
most structures fully reconstructed, then the most taken for their original by
``StructureMatcher``, then the higher threshold. The data support a range more than a single
value where the counts differ by a few structures. It is stored beside the run's checkpoints
as ``decoding.json`` (one number, the counts behind it and the SHA-256 of the checkpoints it
was chosen through: data, read as such; refused for another basis checkpoint, while the cell
checkpoint's is recorded, not checked) and used by
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


def write_decoding(
    run_dir: str | Path, frame: pd.DataFrame, chosen_on: str, checkpoints: dict[str, str]
) -> float:
    """Choose the threshold of the sweep ``frame`` and store it, with each threshold's counts
    and the SHA-256 of the checkpoints it was chosen through (``checkpoints``: ``basis_sha256``,
    ``cell_sha256``, ``cell_run``), in ``run_dir/decoding.json``; returns it."""
    threshold = choose_peak_threshold(frame)
    counts = frame.groupby("threshold")[["same_composition", "fully_reconstructed", "matches"]]
    record = {
        "peak_threshold": threshold,
        "chosen_on": chosen_on,
        "structures": int(frame["id"].nunique()),
        "criterion": "most fully reconstructed, then most matched, then the higher threshold",
        **checkpoints,
        "counts": {
            f"{t:g}": {k: int(v) for k, v in row.items()} for t, row in counts.sum().iterrows()
        },
    }
    path = Path(run_dir) / DECODING
    path.write_text(json.dumps(record, indent=1) + "\n")
    return threshold


def checked_threshold(value: object, where: str) -> float:
    """``value`` as a peak threshold: a number in (0, 1), else an error naming ``where``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{where}: peak_threshold {value!r} is not a number")
    if not (math.isfinite(value) and 0 < value < 1):
        raise ValueError(f"{where}: peak_threshold {value!r} is not in (0, 1)")
    return float(value)


def read_peak_threshold(run_dir: str | Path, basis_sha256: str | None = None) -> float | None:
    """The threshold stored in ``run_dir/decoding.json``, None without the file; a file whose
    threshold is not a number in (0, 1), or (given ``basis_sha256``) that was chosen for another
    basis checkpoint than the run's, is refused, naming it."""
    path = Path(run_dir) / DECODING
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
        value = record["peak_threshold"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{path}: no peak_threshold in it ({exc})") from exc
    threshold = checked_threshold(value, str(path))
    if basis_sha256 is not None and "basis_sha256" not in record:
        raise ValueError(
            f"{path}: records no basis checkpoint (written before they were recorded); choose "
            "it again: benchmarks/design/autoencoders.py --run"
        )
    if basis_sha256 is not None and record["basis_sha256"] != basis_sha256:
        raise ValueError(
            f"{path}: chosen for another basis checkpoint than {Path(run_dir)}'s best.ckpt "
            "(retrained since?); choose it again: benchmarks/design/autoencoders.py --run"
        )
    return threshold


def decoding_spec(
    spec: ImageSpec, basis_run: str | Path, basis_sha256: str | None = None
) -> ImageSpec:
    """``spec`` with the peak threshold chosen for the basis autoencoder of ``basis_run``
    (unchanged where the run has none; refused when chosen for another checkpoint than the one
    of SHA-256 ``basis_sha256``)."""
    threshold = read_peak_threshold(basis_run, basis_sha256)
    return spec if threshold is None else replace(spec, peak_threshold=threshold)


__all__ = [
    "DECODING",
    "THRESHOLDS",
    "checked_threshold",
    "choose_peak_threshold",
    "decoding_spec",
    "read_peak_threshold",
    "write_decoding",
]
