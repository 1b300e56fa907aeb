"""How an autoencoder's basis images are decoded, chosen on validation structures.

An exact basis image holds each atom as a Gaussian whose peak voxel is at least 0.74 high, so
:class:`~matgnn.design.images.ImageSpec`'s ``peak_threshold`` (0.3) counts every atom and no
tail. A basis autoencoder's reconstruction lowers the peaks of the atoms it is unsure of, down
to a few hundredths, where 0.3 loses them, and may split one atom's Gaussian into a peak and a
shoulder with a maximum of its own (``merge_saddle`` drops such shoulders). Both are therefore
chosen per basis autoencoder on the validation structures, never on the test or held-out ones
(:func:`choose_decoding` of :func:`~matgnn.design.evaluate.sweep_decodings` over
:data:`THRESHOLDS` x :data:`SADDLES`): the most structures fully reconstructed, then the most
taken for their original by ``StructureMatcher``, then the higher threshold, then the least
merging. The data support a range more than a single value where the counts differ by a few
structures. The same validation decodings calibrate what counts as overlapping atoms in a
generated crystal (``overlap_cut``): the shortest interatomic distance below which only 1% of
the validation crystals decoded correctly (matched by ``StructureMatcher``) fall, since a
correctly decoded structure may have bonds shorter than the original's (positions are off by
about 0.1 Å).

The choice is stored beside the run's checkpoints as ``decoding.json`` (the setting, the counts
behind it and the SHA-256 of the basis and cell checkpoints it was chosen through: data, read
as such; refused for other checkpoints) and used by
:func:`~matgnn.design.training.load_design_models` (so by ``python -m matgnn.generate``) and by
the evaluation; a run without the file decodes at the image geometry's defaults.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from matgnn.design.images import ImageSpec

#: the file in a basis autoencoder's run folder
DECODING = "decoding.json"
#: the thresholds compared (0.02: the floor below which an exact image holds zeros)
THRESHOLDS = (0.01, 0.02, 0.03, 0.05, 0.1, 0.2, 0.3)
#: the merge saddles compared (None: no maximum merged; exact images of same-element atoms 1 Å
#: apart decode alike at 0.5 and above, so the lowest compared, 0.6, keeps a margin)
SADDLES: tuple[float | None, ...] = (None, 0.9, 0.8, 0.7, 0.6)
#: the fraction of correctly decoded validation crystals the overlap cut may call overlapping
OVERLAP_QUANTILE = 0.01


@dataclass(frozen=True)
class Decoding:
    """A basis autoencoder's decoding, as ``decoding.json`` stores it.

    Args:
        peak_threshold: see :class:`~matgnn.design.images.ImageSpec`.
        merge_saddle: see :class:`~matgnn.design.images.ImageSpec` (``None``: no merging).
        overlap_cut: atoms closer than this (Å) in a generated crystal overlap (``None``:
            not calibrated; files written before it).
    """

    peak_threshold: float
    merge_saddle: float | None = None
    overlap_cut: float | None = None

    def applied(self, spec: ImageSpec) -> ImageSpec:
        """``spec`` decoding at this threshold and merge saddle."""
        return replace(spec, peak_threshold=self.peak_threshold, merge_saddle=self.merge_saddle)


def _settings(frame: pd.DataFrame) -> pd.DataFrame:
    """Per decoding setting of a sweep: ``threshold``, ``merge_saddle`` (NaN: none) and the
    counts of structures with every atom back, fully reconstructed and matched."""
    if "merge_saddle" not in frame:  # a sweep of thresholds alone
        frame = frame.assign(merge_saddle=math.nan)
    columns = [c for c in ("same_composition", "fully_reconstructed", "matches") if c in frame]
    return (
        frame.assign(saddle_key=frame["merge_saddle"].fillna(2.0))
        .groupby(["threshold", "saddle_key"], as_index=False)
        .agg({"merge_saddle": "first", **{c: "sum" for c in columns}})
    )


def choose_decoding(frame: pd.DataFrame) -> Decoding:
    """The setting of a sweep (one row per structure, ``threshold`` and ``merge_saddle``, with
    ``fully_reconstructed`` and ``matches``) with the most structures fully reconstructed, then
    the most matched, then the higher threshold (fewer spurious atoms where the counts tie),
    then the least merging (none, else the higher saddle)."""
    if frame.empty:
        raise ValueError("no structures in the decoding sweep")
    counts = _settings(frame)
    order = ["fully_reconstructed", "matches", "threshold", "saddle_key"]
    best = counts.sort_values(order, ascending=False).iloc[0]
    saddle = None if math.isnan(best["merge_saddle"]) else float(best["merge_saddle"])
    return Decoding(float(best["threshold"]), saddle)


def decoded_at(frame: pd.DataFrame, decoding: Decoding) -> pd.DataFrame:
    """The rows of a sweep (``threshold``, and ``merge_saddle`` where swept) decoded at
    ``decoding``'s threshold and merge saddle."""
    at = frame[frame["threshold"] == decoding.peak_threshold]
    if "merge_saddle" in at:
        saddle = at["merge_saddle"]
        at = at[saddle.isna() if decoding.merge_saddle is None else saddle == decoding.merge_saddle]
    return at


def overlap_cut(frame: pd.DataFrame, decoding: Decoding) -> dict[str, object]:
    """The overlap cut of a sweep's decodings at ``decoding``: the :data:`OVERLAP_QUANTILE`
    quantile of the shortest interatomic distance of the crystals matched to their original,
    floored to 0.01 Å, with what it was read from (``None`` where no crystal matched)."""
    at = decoded_at(frame, decoding)
    matched = at.loc[at["matches"].astype(bool), "min_distance"].dropna().to_numpy(dtype=float)
    if not len(matched):  # nothing to calibrate on: generation falls back to the constant
        return {"overlap_cut": None, "overlap": {"matched_crystals": 0}}
    cut = math.floor(round(100 * float(np.quantile(matched, OVERLAP_QUANTILE)), 6)) / 100
    return {
        "overlap_cut": cut,
        "overlap": {
            "quantile": OVERLAP_QUANTILE,
            "matched_crystals": len(matched),
            "below_cut": int((matched < cut).sum()),
            "shortest_matched": round(float(matched.min()), 4),
            "median_matched": round(float(np.median(matched)), 4),
        },
    }


def write_decoding(
    run_dir: str | Path, frame: pd.DataFrame, chosen_on: str, checkpoints: dict[str, str]
) -> dict[str, object]:
    """Choose the decoding of the sweep ``frame`` and store it, with each setting's counts,
    the overlap cut (where the sweep has ``min_distance``) and the SHA-256 of the checkpoints
    it was chosen through (``checkpoints``: ``basis_sha256``, ``cell_sha256``, ``cell_run``),
    in ``run_dir/decoding.json``; returns the record written."""
    decoding = choose_decoding(frame)
    counts = _settings(frame)
    record: dict[str, object] = {
        "peak_threshold": decoding.peak_threshold,
        "merge_saddle": decoding.merge_saddle,
        "chosen_on": chosen_on,
        "structures": int(frame["id"].nunique()),
        "criterion": "most fully reconstructed, then most matched, then the higher threshold, "
        "then the least merging",
        **checkpoints,
        "counts": {
            _setting_name(row["threshold"], row["merge_saddle"]): {
                k: int(row[k]) for k in ("same_composition", "fully_reconstructed", "matches")
            }
            for _, row in counts.iterrows()
        },
    }
    if "min_distance" in frame:
        record.update(overlap_cut(frame, decoding))
    path = Path(run_dir) / DECODING
    path.write_text(json.dumps(record, indent=1) + "\n")
    return record


def _setting_name(threshold: float, saddle: float) -> str:
    """``"<threshold>/<saddle>"``, the saddle ``none`` where no maximum is merged."""
    return f"{threshold:g}/" + ("none" if math.isnan(saddle) else f"{saddle:g}")


def checked_threshold(value: object, where: str) -> float:
    """``value`` as a peak threshold: a number in (0, 1), else an error naming ``where``."""
    return _checked_number(value, where, "peak_threshold", 0.0, 1.0)


def checked_saddle(value: object, where: str) -> float | None:
    """``value`` as a merge saddle: ``None`` or a number in (0, 1], else an error naming
    ``where``."""
    if value is None:
        return None
    return _checked_number(value, where, "merge_saddle", 0.0, 1.0, closed=True)


def _checked_number(
    value: object, where: str, name: str, low: float, high: float, closed: bool = False
) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{where}: {name} {value!r} is not a number")
    inside = low < value <= high if closed else low < value < high
    if not (math.isfinite(value) and inside):
        bracket = "]" if closed else ")"
        raise ValueError(f"{where}: {name} {value!r} is not in ({low:g}, {high:g}{bracket}")
    return float(value)


def read_decoding(
    run_dir: str | Path, basis_sha256: str | None = None, cell_sha256: str | None = None
) -> Decoding | None:
    """The decoding stored in ``run_dir/decoding.json``, None without the file. A file whose
    values are not numbers in range, or (given their SHA-256) that was chosen through other
    basis or cell checkpoints than these, is refused, naming it."""
    path = Path(run_dir) / DECODING
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
        value = record["peak_threshold"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{path}: no peak_threshold in it ({exc})") from exc
    decoding = Decoding(
        checked_threshold(value, str(path)),
        checked_saddle(record.get("merge_saddle"), str(path)),
        None
        if record.get("overlap_cut") is None
        else _checked_number(record["overlap_cut"], str(path), "overlap_cut", 0.0, 5.0),
    )
    for kind, digest in (("basis", basis_sha256), ("cell", cell_sha256)):
        if digest is None:
            continue
        if f"{kind}_sha256" not in record:
            raise ValueError(
                f"{path}: records no {kind} checkpoint (written before they were recorded); "
                "choose it again: benchmarks/design/autoencoders.py --run"
            )
        if record[f"{kind}_sha256"] != digest:
            raise ValueError(
                f"{path}: chosen through another {kind} checkpoint than the one given "
                "(retrained since, or another run?); choose it again: "
                "benchmarks/design/autoencoders.py --run"
            )
    return decoding


__all__ = [
    "DECODING",
    "OVERLAP_QUANTILE",
    "SADDLES",
    "THRESHOLDS",
    "Decoding",
    "checked_saddle",
    "checked_threshold",
    "choose_decoding",
    "overlap_cut",
    "read_decoding",
    "write_decoding",
]
