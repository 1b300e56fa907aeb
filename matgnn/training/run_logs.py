"""What a run's CSV logs say (``<run>/logs/version_*/metrics.csv``; a resumed run writes a new
version, so every version is read): the validation curve, the test metrics, epochs, the summed
epoch time (``train_epoch_time_s`` of :class:`~matgnn.training.callbacks.EpochTimer`) and the
epoch of the checkpoint that was tested.

The tested epoch is what a table reports as a run's best epoch. It is the epoch of the weights
the test metrics came from (the checkpoint callback's pick by ``task.monitor``), not the lowest
point of a validation MAE curve: the two differ whenever the monitored loss and the MAE
disagree. Runs log it as ``tested_epoch``; for older logs :func:`tested_epoch` falls back to the
run's ``checkpoints/best.ckpt``, then to the first best value of the monitored metric (which is
the epoch :class:`~lightning.pytorch.callbacks.ModelCheckpoint` keeps)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def read_logs(run: Path) -> Any:
    """Every logged row of ``run`` (a pandas DataFrame), or ``None`` when it logged nothing. A
    folder of stored results with the log copied to ``<run>/metrics.csv`` (as
    ``benchmarks/results/pretrained_*``) reads too."""
    import pandas as pd

    logs = sorted(
        Path(run).glob("logs/version_*/metrics.csv"),
        key=lambda p: int(p.parent.name.removeprefix("version_")),
    )  # by number: version_10 comes after version_2
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


def monitored_best_epoch(frame: Any, monitor: str = "val_loss", mode: str = "min") -> int | None:
    """The first epoch at which ``monitor`` reached its best value (``mode`` ``min`` or
    ``max``) in a run's logged rows: the epoch ``ModelCheckpoint`` keeps (it replaces its best
    only on a strict improvement). ``None`` when the metric was never logged."""
    if mode not in ("min", "max"):
        raise ValueError(f"mode={mode!r}; choose min or max")
    if frame is None or monitor not in frame:
        return None
    series = frame[["epoch", monitor]].dropna().drop_duplicates("epoch", keep="last")
    if series.empty:
        return None
    values = series[monitor].to_numpy()
    index = int(np.argmin(values) if mode == "min" else np.argmax(values))
    return int(series["epoch"].iloc[index])


def run_monitor(run: Path) -> tuple[str, str]:
    """The metric and mode the run's checkpoint callback watched: ``task.monitor`` and
    ``task.monitor_mode`` of the run's ``.hydra/config.yaml`` (or of a stored results folder's
    ``config.yaml``); ``val_loss``/``min``, every task's default, without one."""
    import yaml

    task: dict = {}
    for config in (Path(run) / ".hydra" / "config.yaml", Path(run) / "config.yaml"):
        if config.is_file():
            task = (yaml.safe_load(config.read_text()) or {}).get("task") or {}
            break
    return str(task.get("monitor", "val_loss")), str(task.get("monitor_mode", "min"))


def _logged_column(frame: Any) -> int | None:
    """The ``tested_epoch`` a run logged (its last value), or ``None`` (an older run)."""
    if frame is not None and "tested_epoch" in frame and frame["tested_epoch"].notna().any():
        return int(frame["tested_epoch"].dropna().iloc[-1])
    return None


def logged_tested_epoch(frame: Any, monitor: str = "val_loss", mode: str = "min") -> int | None:
    """The tested epoch a run's logged rows say: its ``tested_epoch`` column, else the first
    best epoch of the metric its checkpoint callback watched (:func:`monitored_best_epoch`)."""
    logged = _logged_column(frame)
    return logged if logged is not None else monitored_best_epoch(frame, monitor, mode)


def tested_epoch(run: Path, frame: Any = None) -> int | None:
    """The epoch (from 0) of the weights ``run`` was tested with: its logged ``tested_epoch``,
    else the epoch stored in ``<run>/checkpoints/best.ckpt``, else the monitored metric's first
    best epoch in its logs (:func:`monitored_best_epoch` with :func:`run_monitor`); ``None``
    when none of these exists."""
    frame = read_logs(run) if frame is None else frame
    logged = _logged_column(frame)
    if logged is not None:
        return logged
    best = Path(run) / "checkpoints" / "best.ckpt"
    if best.is_file():
        from matgnn.checkpoints.files import read_checkpoint

        epoch = read_checkpoint(best).get("epoch")
        if epoch is not None:
            return int(epoch)
    return logged_tested_epoch(frame, *run_monitor(run))


def training_summary(run: Path) -> dict[str, Any]:
    """The test metrics logged by ``run`` (the last value of each ``test_*`` column), its
    epochs trained, ``best_epoch``: the epoch of the checkpoint it tested
    (:func:`tested_epoch`; -1 when unknown) and ``train_seconds``, the summed epoch time."""
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
    epoch = tested_epoch(run, frame)
    summary["best_epoch"] = -1 if epoch is None else epoch
    return summary
