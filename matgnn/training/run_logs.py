"""What a run's CSV logs say (``<run>/logs/version_*/metrics.csv``; a resumed run writes a new
version, so every version is read): the validation curve, the test metrics, epochs and the
summed epoch time (``train_epoch_time_s`` of :class:`~matgnn.training.callbacks.EpochTimer`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def read_logs(run: Path) -> Any:
    """Every logged row of ``run`` (a pandas DataFrame), or ``None`` when it logged nothing. A
    folder of stored results with the log copied to ``<run>/metrics.csv`` (as
    ``benchmarks/results/pretrained_*``) reads too."""
    import pandas as pd

    logs = sorted(Path(run).glob("logs/version_*/metrics.csv"))
    if not logs and (Path(run) / "metrics.csv").is_file():
        logs = [Path(run) / "metrics.csv"]
    if not logs:
        return None
    return pd.concat([pd.read_csv(p) for p in logs], ignore_index=True)


def validation_curve(run: Path) -> tuple[str, np.ndarray, np.ndarray] | None:
    """The validation MAE (of the first output; else the loss) by epoch: ``(metric, epochs,
    values)``, the last value of each epoch."""
    return _curve(read_logs(run))


def _curve(frame: Any) -> tuple[str, np.ndarray, np.ndarray] | None:
    if frame is None:
        return None
    columns = [c for c in frame.columns if c.startswith("val_") and c.endswith("_mae")]
    metric = columns[0] if columns else "val_loss"
    if metric not in frame:
        return None
    series = frame[["epoch", metric]].dropna().drop_duplicates("epoch", keep="last")
    return metric, series["epoch"].to_numpy(), series[metric].to_numpy()


def training_summary(run: Path) -> dict[str, Any]:
    """The test metrics logged by ``run`` (the last value of each ``test_*`` column), its
    epochs trained, its best epoch (lowest point of :func:`validation_curve`; -1 without one)
    and ``train_seconds``, the summed epoch time."""
    frame = read_logs(run)
    if frame is None:
        return {"epochs": 0, "best_epoch": -1, "train_seconds": 0.0}
    summary: dict[str, Any] = {
        column: float(frame[column].dropna().iloc[-1])
        for column in frame.columns
        if column.startswith("test_") and frame[column].notna().any()
    }
    timed = frame.dropna(subset=["train_epoch_time_s"]) if "train_epoch_time_s" in frame else None
    summary["epochs"] = 0 if timed is None or timed.empty else int(timed["epoch"].max()) + 1
    summary["train_seconds"] = 0.0 if timed is None else round(timed["train_epoch_time_s"].sum(), 1)
    curve = _curve(frame)
    summary["best_epoch"] = -1 if curve is None else int(curve[1][int(np.argmin(curve[2]))])
    return summary
