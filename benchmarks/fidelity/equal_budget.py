"""The same recipe learns as well (issue 25, part 4): matgnn's CGCNN against the reference
trainer (cgcnn2's ``cgcnn-tr``) at an equal budget, from the runs of ``equal_budget.sh``.

    python benchmarks/fidelity/equal_budget.py [--collect <runs folder>] [--update README.md]

``--collect`` reads ``<runs>/<task>/{matgnn,reference}/s<seed>`` and stores, in
``results/equal_budget/``:

* ``curves.csv``: per epoch, the validation RMSE in the target's units (matgnn:
  ``val_<target>_rmse`` of its ``metrics.csv``; reference: the square root of the ``Valid
  Loss`` it logs, a mean of per-batch MSEs of the standardised target, times the training
  standard deviation of ``scaling.json``);
* ``runs.csv``: per run, the test MAE of the best-validation checkpoint (matgnn:
  ``test_metrics.json``; reference: ``test_results.csv``, de-standardised), the epoch of that
  checkpoint, the epochs run and the wall time per epoch, measured alike for both over epochs
  2 to N (epoch 1 holds one-off costs): matgnn's ``epoch_wall_time_s`` (training, validation
  and the best-checkpoint save), the reference's gaps between consecutive epoch log lines
  (the same, its save of the previous best included);
* ``test_predictions/<task>_<implementation>_s<seed>.csv.gz``.

The README block ``fidelity-equal-budget`` and ``results/equal_budget/curves.png`` (overlaid
validation curves) are written from those files alone; a task whose runs are missing for
one side is reported as missing, never filled in.
"""

from __future__ import annotations

import itertools
import json
import re
import shutil
import sys
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: catalog.py
from catalog import table_script

RESULTS = Path(__file__).parent / "results" / "equal_budget"
TASKS = {
    "mp2018_5k": ("formation_energy_per_atom", "eV/atom", "mp2018 5k (5,000 / 625 / 625)"),
    "matbench_phonons": ("last_phdos_peak", "cm^-1", "matbench_phonons fold 0 (partial copy)"),
}
IMPLEMENTATIONS = {"matgnn": "matgnn CGCNN", "reference": "cgcnn2 `cgcnn-tr` (reference)"}
_REF_TIME = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)(?:[.,](\d{3}))?")
_REF_EPOCH = re.compile(r"Epoch \[(\d+)/(\d+)\] - Train Loss: (\S+), Valid Loss: ([^,\s]+)")
_REF_BEST = re.compile(r"Best model at epoch (\d+)")


def _stamp(text: str, pattern: re.Pattern) -> datetime | None:
    """The time stamp cgcnn2's logger puts at the start of a line."""
    match = pattern.match(text)
    if match is None:
        return None
    millis = match.group(2) or "000"
    return datetime.strptime(f"{match.group(1)}.{millis}", "%Y-%m-%d %H:%M:%S.%f")


def matgnn_run(run: Path, task: str) -> tuple[dict, pd.DataFrame, pd.DataFrame]:
    target = TASKS[task][0]
    versions = sorted((run / "logs").glob("version_*"), key=lambda p: int(p.name.split("_")[1]))
    metrics = pd.read_csv(versions[-1] / "metrics.csv")
    val = metrics.dropna(subset=[f"val_{target}_rmse"]).groupby("epoch").last()
    wall = metrics.dropna(subset=["epoch_wall_time_s"]).groupby("epoch")["epoch_wall_time_s"].last()
    if len(wall) != len(val):
        raise SystemExit(f"{run}: {len(val)} validated epochs but {len(wall)} timed ones")
    test = json.loads((run / "test_metrics.json").read_text())
    predictions = pd.read_csv(run / "test_predictions.csv")
    best = int(val[f"val_{target}_rmse"].idxmin()) + 1  # the loss (MSE) ranks as the RMSE does
    curve = pd.DataFrame({"epoch": val.index + 1, "val_rmse": val[f"val_{target}_rmse"]})
    row = {
        "test_mae": float(test[f"test_{target}_mae"]),
        "best_epoch": best,
        "epochs": len(val),
        "wall_per_epoch_s": float(wall.iloc[1:].mean()),
        "n_test": len(predictions),
    }
    out = pd.DataFrame(
        {"id": predictions["id"], "true": predictions[target],
         "predicted": predictions[f"predicted_{target}"]}
    )  # fmt: skip
    return row, curve, out


def reference_run(run: Path, seed: int) -> tuple[dict, pd.DataFrame, pd.DataFrame]:
    scaling = json.loads((run / "scaling.json").read_text())
    lines = (run / "train.log").read_text().splitlines()
    epochs, times, best, planned = [], [], None, None
    for line in lines:
        match = _REF_EPOCH.search(line)
        if match:
            epochs.append((int(match.group(1)), float(match.group(4))))
            times.append(_stamp(line, _REF_TIME))
            planned = int(match.group(2))
        found = _REF_BEST.search(line)
        if found:
            best = int(found.group(1))
    if not epochs or best is None or len(epochs) != planned or None in times:
        raise SystemExit(f"{run}/train.log: {len(epochs)} of {planned} epochs logged with a "
                         "time stamp, or no best-model line (did cgcnn-tr finish?)")  # fmt: skip
    results = pd.read_csv(run / f"output_s{seed}" / "test_results.csv")
    for column in ("true", "pred"):
        results[column] = results[column] * scaling["std"] + scaling["mean"]
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(times)]
    curve = pd.DataFrame(
        {"epoch": [e for e, _ in epochs],
         "val_rmse": [np.sqrt(v) * scaling["std"] for _, v in epochs]}
    )  # fmt: skip
    row = {
        "test_mae": float(np.abs(results["pred"] - results["true"]).mean()),
        "best_epoch": best,
        "epochs": len(epochs),
        "wall_per_epoch_s": float(np.mean(gaps)) if gaps else float("nan"),
        "n_test": len(results),
    }
    out = results.rename(columns={"cif_id": "id", "pred": "predicted"})
    return row, curve, out[["id", "true", "predicted"]]


def collect(runs: Path) -> None:
    (RESULTS / "test_predictions").mkdir(parents=True, exist_ok=True)
    rows, curves = [], []
    for task in TASKS:
        for implementation in IMPLEMENTATIONS:
            for run in sorted((runs / task / implementation).glob("s*")):
                seed = int(run.name[1:])
                done = (
                    (run / "test_metrics.json").is_file()
                    if implementation == "matgnn"
                    else (run / f"output_s{seed}" / "test_results.csv").is_file()
                )
                if not done:
                    print(f"skipped unfinished {run}")
                    continue
                row, curve, predictions = (
                    matgnn_run(run, task) if implementation == "matgnn"
                    else reference_run(run, seed)
                )  # fmt: skip
                key = {"task": task, "implementation": implementation, "seed": seed}
                rows.append({**key, **row})
                curves.append(curve.assign(**key))
                predictions.to_csv(
                    RESULTS / "test_predictions" / f"{task}_{implementation}_s{seed}.csv.gz",
                    index=False,
                )
                shutil.copyfile(run / "train.log", RESULTS / f"{task}_{implementation}_s{seed}.log")
    if not rows:
        raise SystemExit(f"no finished run under {runs}")
    pd.DataFrame(rows).to_csv(RESULTS / "runs.csv", index=False)
    pd.concat(curves).to_csv(RESULTS / "curves.csv", index=False)


def _pm(values: pd.Series, digits: int) -> str:
    text = f"{values.mean():.{digits}f}"
    return text + (f" ± {values.std(ddof=1):.{digits}f}" if len(values) > 1 else "")


def table() -> str:
    path = RESULTS / "runs.csv"
    if not path.is_file():
        raise SystemExit(f"{path} missing: run equal_budget.sh and --collect first")
    runs = pd.read_csv(path)
    lines = [
        "| task | implementation | seeds | test MAE (mean ± std over seeds) | best epoch | "
        "epochs | wall s / epoch | matgnn speed-up |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for task, (_, units, label) in TASKS.items():
        here = runs[runs["task"] == task]
        wall = {i: here[here["implementation"] == i]["wall_per_epoch_s"] for i in IMPLEMENTATIONS}
        for implementation, name in IMPLEMENTATIONS.items():
            r = here[here["implementation"] == implementation]
            if r.empty:
                lines.append(f"| {label} | {name} | 0 | not run | - | - | - | - |")
                continue
            speed = (
                f"{wall['reference'].mean() / wall['matgnn'].mean():.2f}x"
                if implementation == "matgnn" and len(wall["reference"]) and len(wall["matgnn"])
                else "-"
            )
            lines.append(
                f"| {label} | {name} | {len(r)} ({', '.join(str(s) for s in r['seed'])}) | "
                f"{_pm(r['test_mae'], 4 if units == 'eV/atom' else 1)} {units} | "
                f"{_pm(r['best_epoch'], 0)} | {r['epochs'].max()} | "
                f"{_pm(r['wall_per_epoch_s'], 1)} | {speed} |"
            )
    curves_file = RESULTS / "curves.csv"
    if curves_file.is_file():
        curves = pd.read_csv(curves_file)
        paired = curves.pivot_table(
            index=["task", "seed", "epoch"], columns="implementation", values="val_rmse"
        ).dropna()
        if not paired.empty:
            relative = (paired["matgnn"] / paired["reference"] - 1).abs()
            medians = relative.groupby(level=["task", "seed"]).median()
            lines.append("")
            lines.append(
                f"Validation RMSE, same seed, matgnn vs reference: median relative difference "
                f"per run {100 * medians.min():.1f}-{100 * medians.max():.1f}% over "
                f"{len(medians)} runs (largest single epoch {100 * relative.max():.0f}%)."
            )
    return "\n".join(lines)


def plot() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = RESULTS / "curves.csv"
    if not path.is_file():
        return
    curves = pd.read_csv(path)
    tasks = [t for t in TASKS if t in set(curves["task"])]
    fig, axes = plt.subplots(1, len(tasks), figsize=(5.5 * len(tasks), 4), squeeze=False)
    for ax, task in zip(axes[0], tasks, strict=True):
        for implementation, color in (("matgnn", "tab:blue"), ("reference", "tab:orange")):
            part = curves[(curves["task"] == task) & (curves["implementation"] == implementation)]
            for seed, run in part.groupby("seed"):
                label = f"{IMPLEMENTATIONS[implementation]}" if seed == part["seed"].min() else None
                ax.plot(run["epoch"], run["val_rmse"], color=color, alpha=0.8, label=label)
        ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.set_ylabel(f"validation RMSE ({TASKS[task][1]})")
        ax.set_title(TASKS[task][2], fontsize=10)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(RESULTS / "curves.png", dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    table_script(__doc__.split("\n\n")[0], "fidelity-equal-budget", collect, table, after=plot)
