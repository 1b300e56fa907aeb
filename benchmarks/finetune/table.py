"""The README table and plot of benchmarks/finetune/learning_curve.sh (issue 12).

    python benchmarks/finetune/table.py [--collect <runs folder>] [--update README.md]

``--collect`` reads every finished run ``<runs>/<arm>/n<size>_s<seed>`` (its
``test_metrics.json``, ``split.json`` and metrics CSV) into
``benchmarks/finetune/results/learning_curve.csv`` (a run replaces the stored row of the same
arm, size and seed; stored rows of runs not in the folder are kept): one row per run with the
test MAE, RMSE and R2, the number of training crystals, the epochs run, the epoch of the
checkpoint tested and the summed epoch time;
and the test predictions of the seed-0 runs into ``results/predictions/<arm>_n<size>_s0.csv``
(for parity plots, e.g. in ``notebooks/02_finetuning.ipynb``).
The table (mean +- standard deviation over seeds, meV/atom, with the number of seeds; the
training-mean column too, one value per seed's split) and
``results/learning_curve.png`` are made from that CSV.
"""

from __future__ import annotations

import csv
import json
import re
import shutil
import sys
from pathlib import Path

import numpy as np

from matgnn.training.run_logs import training_summary

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: catalog.py

RESULTS = Path(__file__).parent / "results"
CURVE = RESULTS / "learning_curve.csv"
PREDICTIONS = RESULTS / "predictions"
PLOT = RESULTS / "learning_curve.png"
ARMS = {
    "scratch": "from scratch",
    "finetune": "fine-tuned (all layers)",
    "slow": "fine-tuned (backbone lr x0.1)",
    "frozen": "fine-tuned (backbone frozen)",
    "xie_finetune": "Xie's model, fine-tuned (all layers)",
    "xie_slow": "Xie's model (backbone lr x0.1)",
    "xie_frozen": "Xie's model (backbone frozen)",
}
TARGET = "ef_vs_binary_oxides"
FIELDS = (
    "arm", "size", "seed", "n_train", "mae", "rmse", "r2", "mae_predict_train_mean",
    "epochs", "best_epoch", "train_seconds",
)  # fmt: skip


def run_row(run: Path, arm: str) -> dict[str, object]:
    match = re.fullmatch(r"n(\w+)_s(\d+)", run.name)
    if match is None:
        raise ValueError(f"{run}: not a learning-curve run folder (n<size>_s<seed>)")
    metrics = json.loads((run / "test_metrics.json").read_text())
    split = json.loads((run / "split.json").read_text())
    summary = training_summary(run)
    if summary["best_epoch"] < 0:
        raise ValueError(f"{run}: no tested checkpoint's epoch (no best.ckpt and no log)")
    return {
        "arm": arm,
        "size": match[1],
        "seed": int(match[2]),
        "n_train": len(split["train"]),
        "mae": metrics[f"test_{TARGET}_mae"],
        "rmse": metrics[f"test_{TARGET}_rmse"],
        "r2": metrics[f"test_{TARGET}_r2"],
        "mae_predict_train_mean": metrics[f"test_{TARGET}_mae_predict_train_mean"],
        "epochs": summary["epochs"],
        "best_epoch": summary["best_epoch"],
        "train_seconds": summary["train_seconds"],
    }


def stored_rows() -> dict[tuple[str, str, int], dict[str, object]]:
    """The rows of the stored CSV by (arm, size, seed); none when there is no CSV yet."""
    if not CURVE.is_file():
        return {}
    with open(CURVE) as handle:
        return {(r["arm"], r["size"], int(r["seed"])): r for r in csv.DictReader(handle)}


def collect(runs: Path) -> None:
    rows = stored_rows()
    found = [
        run_row(run.parent, arm)
        for arm in ARMS
        for run in sorted((runs / arm).glob("n*_s*/test_metrics.json"))
    ]
    if not found:
        raise FileNotFoundError(f"{runs}: no finished learning-curve run")
    rows.update({(r["arm"], r["size"], r["seed"]): r for r in found})
    PREDICTIONS.mkdir(parents=True, exist_ok=True)
    for arm in ARMS:
        for run in sorted((runs / arm).glob("n*_s0/test_metrics.json")):
            shutil.copy2(
                run.parent / "test_predictions.csv", PREDICTIONS / f"{arm}_{run.parent.name}.csv"
            )
    with open(CURVE, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows(
            sorted(
                rows.values(),
                key=lambda r: (list(ARMS).index(r["arm"]), int(r["n_train"]), int(r["seed"])),
            )
        )


def read_curve() -> dict[str, dict[int, list[dict[str, float]]]]:
    """``{arm: {n_train: [row per seed]}}`` from the stored CSV."""
    curve: dict[str, dict[int, list[dict[str, float]]]] = {}
    with open(CURVE) as handle:
        for row in csv.DictReader(handle):
            values = {k: float(v) for k, v in row.items() if k not in ("arm", "size")}
            curve.setdefault(row["arm"], {}).setdefault(int(row["n_train"]), []).append(values)
    return curve


def mean_std(rows: list[dict[str, float]], key: str, scale: float = 1.0) -> tuple[float, float]:
    values = np.array([r[key] for r in rows]) * scale
    return float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else 0.0


def train_mean_baseline(curve: dict, n: int) -> list[dict[str, float]]:
    """One row per seed of the training-mean predictor at ``n`` training crystals: it depends on
    the seed's split only, so every arm of that seed must give the same MAE (checked to 1e-6
    eV: float32 sums differ in the ninth digit)."""
    by_seed: dict[int, dict[str, float]] = {}
    for arm, per_size in curve.items():
        for row in per_size.get(n, []):
            seen = by_seed.setdefault(int(row["seed"]), row)
            if abs(seen["mae_predict_train_mean"] - row["mae_predict_train_mean"]) > 1e-6:
                raise ValueError(
                    f"{CURVE}: n_train {n}, seed {int(row['seed'])}: arm {arm}'s training-mean "
                    "MAE differs from another arm's (different test crystals?)"
                )
    return [by_seed[k] for k in sorted(by_seed)]


def _cell(rows: list[dict[str, float]], key: str) -> str:
    """Mean +- standard deviation over seeds (meV/atom) and the number of seeds."""
    mean, std = mean_std(rows, key, 1000.0)
    spread = f" +- {std:.1f}" if len(rows) > 1 else ""
    return f"{mean:.1f}{spread} ({len(rows)})"


def table() -> str:
    curve = read_curve()
    sizes = sorted({n for per_arm in curve.values() for n in per_arm})
    arms = [a for a in ARMS if a in curve]
    header = "| training crystals | " + " | ".join(ARMS[a] for a in arms)
    lines = [header + " | predicting the training mean |", "|---:|" + "---:|" * (len(arms) + 1)]
    for n in sizes:
        cells = []
        for arm in arms:
            rows = curve[arm].get(n, [])
            if not rows:
                cells.append("")
                continue
            cells.append(_cell(rows, "mae"))
        baseline = _cell(train_mean_baseline(curve, n), "mae_predict_train_mean")
        lines.append(f"| {n} | " + " | ".join(cells) + f" | {baseline} |")
    return "\n".join(lines)


def plot() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curve = read_curve()
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for arm, label in ARMS.items():
        if arm not in curve:
            continue
        sizes = sorted(curve[arm])
        stats = [mean_std(curve[arm][n], "mae", 1000.0) for n in sizes]
        ax.errorbar(sizes, [m for m, _ in stats], yerr=[s for _, s in stats], marker="o",
                    capsize=3, label=label)  # fmt: skip
    sizes = sorted({n for per_arm in curve.values() for n in per_arm})
    baseline = [mean_std(train_mean_baseline(curve, n), "mae_predict_train_mean", 1000.0)[0]
                for n in sizes]  # fmt: skip
    ax.plot(sizes, baseline, "k:", label="training mean (mean over seeds)")
    ax.set_xscale("log")
    ax.set_xticks(sizes, [str(n) for n in sizes])
    ax.minorticks_off()
    ax.set_xlabel("training crystals")
    ax.set_ylabel("test MAE (meV/atom)")
    ax.set_title("ye2018_perovskite: CGCNN, 67 test crystals")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(PLOT, dpi=120)
    plt.close(fig)


def main() -> None:
    from catalog import table_script

    table_script(__doc__.split("\n\n")[0], "finetune-curve", collect, table, after=plot)


if __name__ == "__main__":
    main()
