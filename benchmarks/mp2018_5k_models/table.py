"""Every scalar model of matgnn on mp2018_eform with 5,000 training structures: the runs of
``benchmarks/mp2018_5k_models/run.sh``, one table.

    python benchmarks/mp2018_5k_models/table.py [--collect <runs folder>] \
        [--update docs/results/mp2018-5k.md]

``--collect`` copies from ``<runs>/<run>`` the test predictions to
``results/predictions/<run>.csv.gz``, the logs to ``results/logs/<run>.csv`` and the budget
(epochs, the epoch of the checkpoint tested, median and summed training-epoch time) and the
training split's mean target (from the run's ``split.json`` and the data set in
``--data-dir``) and the code each run ran (``<run>/commits.txt``) to ``results/runs.csv``; it
checks that every run has the same test crystals and that the MAE of the stored predictions is
the MAE the run logged. A run not finished in ``<runs folder>`` keeps what is stored of it (runs
of one table may come from several sessions); one neither finished nor stored, and not declared
PENDING, stops it, naming the run. The table is computed from these stored files alone: MAE and R²
from the per-crystal predictions, the training-mean baseline from the stored mean and the
test targets.
"""

from __future__ import annotations

import datetime
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

REPOSITORY = Path(__file__).resolve().parents[2]
if str(REPOSITORY) not in sys.path:
    sys.path.insert(0, str(REPOSITORY))

from benchmarks.catalog import table_script  # noqa: E402
from matgnn.training.run_logs import read_logs, training_summary  # noqa: E402

HERE = Path(__file__).parent
RESULTS = HERE / "results"
TARGET = "formation_energy_per_atom"
#: run folder -> (model label, epochs), in the order of run.sh
RUNS = {
    "cgcnn_3": ("CGCNN", 3),
    "potnet_3": ("PotNet", 3),
    "alignn_3": ("ALIGNN", 3),
    "matformer_3": ("Matformer", 3),
    "e3nn_3": ("e3nn", 3),
    "cgcnn_30": ("CGCNN", 30),
}
DATA = "mp36k/mp36k_with_ehull.csv.gz"
#: runs of run.sh declared not finished yet: the table shows them as such, by name; any other
#: missing run stops --collect and the table
PENDING: dict[str, str] = {}


def _train_mean(run: Path, targets: pd.Series) -> float:
    """The mean of ``targets`` (by id) over the run's training split."""
    train = json.loads((run / "split.json").read_text())["train"]
    return float(targets.loc[train].mean())


def _commits(run: Path, stored: pd.DataFrame) -> str:
    """The code a run ran (``<run>/commits.txt``, one line per attempt, written by
    ``benchmarks/train_run.sh``): the commit of each attempt, in order, consecutive repeats
    merged. A run older than commits.txt keeps the record stored for it."""
    path = run / "commits.txt"
    if not path.is_file():
        if run.name in stored.index:
            return str(stored.loc[run.name, "commit"])
        raise SystemExit(f"{path}: missing; train_run writes the code each attempt ran")
    return _attempts(path)


def _attempts(path: Path) -> str:
    """The lines of a ``train_run`` record (what, then the time) without their times, in
    order, consecutive repeats merged: ``"a; then b"``."""
    attempts = [" ".join(line.split()[:-1]) for line in path.read_text().splitlines() if line]
    merged = [a for i, a in enumerate(attempts) if i == 0 or a != attempts[i - 1]]
    return "; then ".join(merged)


def _stored_runs() -> pd.DataFrame:
    path = RESULTS / "runs.csv"
    if not path.is_file():
        return pd.DataFrame()
    return pd.read_csv(path, float_precision="round_trip").set_index("run")


def collect(runs: Path, data_dir: Path | None = None) -> None:
    """Collect every finished run in ``runs``; a run not there keeps what is stored of it
    (runs of one table may come from several sessions). A run neither finished there nor
    stored, and not PENDING, stops it by name."""
    from matgnn.config_dir import default_data_dir

    data_dir = Path(data_dir or default_data_dir())
    targets = pd.read_csv(data_dir / DATA, usecols=["mp_id", TARGET]).set_index("mp_id")[TARGET]
    (RESULTS / "predictions").mkdir(parents=True, exist_ok=True)
    (RESULTS / "logs").mkdir(exist_ok=True)
    stored = _stored_runs()
    rows, test_ids = [], None
    for name, (_, epochs) in RUNS.items():
        run = runs / name
        if not (run / "test_metrics.json").is_file():
            if name in stored.index:
                rows.append({"run": name, **stored.loc[name].to_dict()})
                ids = sorted(_predictions(name)["id"])
            elif name in PENDING:
                continue
            else:
                raise SystemExit(f"{name}: no finished run in {run} (test_metrics.json) and "
                                 "none stored; the table needs every run of run.sh")  # fmt: skip
        else:
            ids = _collect_run(name, epochs, run, targets, rows, stored)
        if test_ids is not None and ids != test_ids:
            raise ValueError(f"{name}: other test crystals than the runs before it")
        test_ids = ids
    pd.DataFrame(rows).to_csv(RESULTS / "runs.csv", index=False)
    provenance = {
        "collected": datetime.date.today().isoformat(),
        "command": "bash benchmarks/mp2018_5k_models/run.sh",
        "data": f"the first 6,250 rows of {DATA}, seeded 80/10/10 split (seed 0)",
    }
    (RESULTS / "run.json").write_text(json.dumps(provenance, indent=1) + "\n")


def _collect_run(
    name: str, epochs: int, run: Path, targets: pd.Series, rows: list, stored: pd.DataFrame
) -> list:
    """Store one finished run's predictions, logs and budget row; returns its test ids."""
    predictions = pd.read_csv(run / "test_predictions.csv")
    logged = json.loads((run / "test_metrics.json").read_text())
    mae = float(np.mean(np.abs(predictions[f"predicted_{TARGET}"] - predictions[TARGET])))
    if abs(mae - logged[f"test_{TARGET}_mae"]) > 1e-5:
        raise ValueError(f"{name}: predictions give MAE {mae}, the run logged "
                         f"{logged[f'test_{TARGET}_mae']}")  # fmt: skip
    predictions.to_csv(RESULTS / "predictions" / f"{name}.csv.gz", index=False,
                       compression={"method": "gzip", "mtime": 0})  # fmt: skip
    frame = read_logs(run)
    frame.to_csv(RESULTS / "logs" / f"{name}.csv", index=False)
    summary = training_summary(run)
    if summary["epochs"] != epochs:
        raise ValueError(f"{name}: {summary['epochs']} epochs logged, run.sh asks {epochs}")
    times = frame["train_epoch_time_s"].dropna()
    rows.append(
        {
            "run": name,
            "epochs": summary["epochs"],
            "tested_epoch": summary["best_epoch"],
            "median_train_epoch_s": round(float(times.median()), 2),
            "train_seconds": summary["train_seconds"],
            "train_mean": _train_mean(run, targets),
            "train_crystals": len(json.loads((run / "split.json").read_text())["train"]),
            "rejected": "; ".join(_rejected(run)),
            "commit": _commits(run, stored),
            "machine": _machines(run, stored),
        }
    )
    return sorted(predictions["id"])


def _machines(run: Path, stored: pd.DataFrame) -> str:
    """The machine(s) a run ran on (``<run>/machines.txt``, written by train_run); a run older
    than that file keeps what is stored for it, or "not recorded"."""
    path = run / "machines.txt"
    if not path.is_file():
        if run.name in stored.index and "machine" in stored.columns:
            value = stored.loc[run.name, "machine"]
            return str(value) if isinstance(value, str) and value else "not recorded"
        return "not recorded"
    return _attempts(path)


def _rejected(run: Path) -> list[str]:
    """``id: reason`` of every crystal the run's data module rejected (``<run>/rejected.csv``,
    written by ``matgnn.train``; a run without rejections has an empty one or none)."""
    path = run / "rejected.csv"
    if not path.is_file():
        return []
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    return [f"{sid}: {reason.removeprefix(f'{sid}: ')}" for sid, reason in
            zip(frame["id"], frame["reason"], strict=True)]  # fmt: skip


def _predictions(name: str) -> pd.DataFrame:
    path = RESULTS / "predictions" / f"{name}.csv.gz"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: run {name} is not stored; run run.sh and --collect")
    return pd.read_csv(path)


def _training_counts(runs: pd.DataFrame) -> str:
    """The training crystals of every run: the usual count, and the runs that differ with the
    crystals their graphs rejected; runs whose count was not recorded are named."""
    counts = pd.to_numeric(runs.get("train_crystals"), errors="coerce")
    known = counts.dropna().astype(int)
    if known.empty:
        return "not recorded"
    usual = int(known.value_counts().idxmax())
    others = [
        f"{RUNS[name][0]} {known[name]:,} (rejected: "
        f"{runs.loc[name, 'rejected'] or 'not recorded'})"
        for name in known.index
        if known[name] != usual
    ]
    unknown = [RUNS[name][0] for name in counts.index if name not in known.index]
    return (
        f"{usual:,} for every run"
        + (f" but {'; '.join(others)}" if others else "")
        + (f" (not recorded for {', '.join(unknown)})" if unknown else "")
    )


def table() -> str:
    runs = pd.read_csv(RESULTS / "runs.csv", float_precision="round_trip").set_index("run")
    for column in ("machine", "rejected"):  # absent or empty in records older than them
        runs[column] = runs[column].fillna("") if column in runs else ""
    runs["machine"] = runs["machine"].replace("", "not recorded")
    unknown = sorted(set(runs.index) - set(RUNS))
    if unknown:
        raise ValueError(f"results/runs.csv has runs that run.sh does not make: {unknown}")
    provenance = json.loads((RESULTS / "run.json").read_text())
    missing = sorted(set(RUNS) - set(runs.index) - set(PENDING))
    if missing:
        raise ValueError(f"results/runs.csv lacks the runs {missing}")
    lines = [
        "| model | epochs (tested checkpoint's, from 0) | s / training epoch (median) "
        "| machine | test MAE (eV/atom) | test R² |",
        "|---|---|---:|---|---:|---:|",
    ]
    baselines: dict[str, float] = {}
    counts = set()
    for name, (label, epochs) in RUNS.items():
        if name in PENDING and name not in runs.index:
            lines.append(f"| {label} | {epochs}: not run yet ({PENDING[name]}) | - | - | - | - |")
            continue
        frame = _predictions(name)
        counts.add(len(frame))
        error = frame[f"predicted_{TARGET}"] - frame[TARGET]
        target = frame[TARGET]
        r2 = 1 - float((error**2).sum() / ((target - target.mean()) ** 2).sum())
        row = runs.loc[name]
        baselines[name] = float(np.mean(np.abs(target - row["train_mean"])))
        lines.append(
            f"| {label} | {int(row['epochs'])} ({int(row['tested_epoch'])}) | "
            f"{row['median_train_epoch_s']:.1f} | {row['machine']} | "
            f"{np.mean(np.abs(error)):.4f} | {r2:.3f} |"
        )
    (count,) = counts  # the same test crystals (collect checks the ids)
    machines = sorted(set(runs["machine"]))
    # one split: one training mean, up to the crystals a model's graph rejected
    baseline = float(np.median(list(baselines.values())))
    apart = {k: v for k, v in baselines.items() if abs(v - baseline) > 5e-4}
    if apart:
        raise ValueError(f"training-mean baselines {apart} are not {baseline:.4f}: another split?")
    lines += [
        "",
        f"Test crystals: {count}, the same for every run (checked). Training crystals: "
        + _training_counts(runs)
        + f"; predicting the training mean gives a test MAE of {baseline:.3f} eV/atom. "
        f"Data: {provenance['data']}. Budget: 2 CPU cores, one run at a time, "
        f"{runs['train_seconds'].sum() / 60:.0f} min of training epochs in all"
        + (
            f", on {len(machines)} machines or sessions (times per epoch compare only within "
            "one machine)"
            if len(machines) > 1
            else ""
        )
        + "; the code "
        "each run ran: "
        + "; ".join(f"{name} {runs.loc[name, 'commit']}" for name in runs.index)
        + f"; collected {provenance['collected']}.",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    table_script(__doc__.splitlines()[0], "mp2018-5k", collect, table)
