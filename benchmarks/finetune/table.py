"""The docs table and plot of benchmarks/finetune/learning_curve.sh (issue 12).

    python benchmarks/finetune/table.py [--collect <runs folder>] \
        [--update docs/results/fine-tuning.md]

``--collect`` reads every finished run ``<runs>/<arm>/n<size>_s<seed>`` (its
``test_metrics.json``, ``split.json``, test predictions and metrics CSV) into
``benchmarks/finetune/results/`` (a run replaces the stored rows of the same arm, size and seed;
stored rows of runs not in the folder are kept):

* ``learning_curve.csv``: one row per run with the test MAE, RMSE and R2 the run logged, the
  number of training crystals, the epochs run, the epoch of the checkpoint tested and the
  summed epoch time;
* ``test_predictions.csv.gz``: every run's test predictions (``arm, size, seed, id, target,
  prediction``, eV/atom);
* ``train_means.csv``: per training size and seed, the mean target of the training crystals
  (``split.json``, targets from ``<data dir>/ye2018``; the same in every arm, checked);
* the test predictions of the seed-0 runs again as ``results/predictions/<arm>_n<size>_s0.csv``
  (for parity plots, e.g. in ``notebooks/02_finetuning.ipynb``).

The table (mean +- standard deviation over seeds, meV/atom, with the number of seeds; the
training-mean column too, one value per seed's split) and ``results/learning_curve.png`` are
computed from the per-crystal ``test_predictions.csv.gz`` (each run's MAE) and
``train_means.csv`` (the MAE of predicting the training mean on the stored test crystals), with
``learning_curve.csv`` as the list of runs; a listed run without stored predictions is an
error.
"""

from __future__ import annotations

import csv
import json
import re
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from matgnn.training.run_logs import training_summary

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: catalog.py

RESULTS = Path(__file__).parent / "results"
CURVE = RESULTS / "learning_curve.csv"
PREDICTIONS = RESULTS / "predictions"
ALL_PREDICTIONS = RESULTS / "test_predictions.csv.gz"
TRAIN_MEANS = RESULTS / "train_means.csv"
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
KEY = ["arm", "size", "seed"]
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


def _size_order(size: str) -> float:
    return float("inf") if size == "all" else float(size)


def _merged(stored: Path, fresh: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """``fresh`` and the rows of the stored CSV ``stored`` whose ``keys`` are not in it."""
    if not stored.is_file():
        return fresh
    old = pd.read_csv(stored, dtype={"size": str})
    new = set(map(tuple, fresh[keys].astype(str).to_numpy().tolist()))
    kept = old[[tuple(k) not in new for k in old[keys].astype(str).to_numpy().tolist()]]
    return pd.concat([kept, fresh], ignore_index=True)


def store_predictions(runs: dict[tuple[str, str, int], Path]) -> None:
    """Merge the test predictions of ``runs`` (``(arm, size, seed)`` -> run folder) into
    ``test_predictions.csv.gz``, written as the float32 values the (fp32) runs computed."""
    frames = []
    for (arm, size, seed), run in runs.items():
        frame = pd.read_csv(run / "test_predictions.csv", float_precision="round_trip")
        for column in (TARGET, f"predicted_{TARGET}"):
            values = frame[column].to_numpy(dtype=np.float64)
            if not np.array_equal(values.astype(np.float32).astype(np.float64), values):
                raise SystemExit(f"{run}: {column} is not float32; store it at full precision")
            frame[column] = values.astype(np.float32)
        frames.append(
            pd.DataFrame(
                {"arm": arm, "size": size, "seed": seed, "id": frame["id"],
                 "target": frame[TARGET], "prediction": frame[f"predicted_{TARGET}"]}
            )
        )  # fmt: skip
    merged = _merged(ALL_PREDICTIONS, pd.concat(frames, ignore_index=True), KEY)
    # the stored rows read back as float64: to float32 again, written as the shortest text
    merged = merged.astype({"target": np.float32, "prediction": np.float32})
    order = merged.assign(
        _arm=merged["arm"].map(list(ARMS).index), _size=merged["size"].map(_size_order)
    ).sort_values(["_arm", "_size", "seed"], kind="stable")
    order[["arm", "size", "seed", "id", "target", "prediction"]].to_csv(
        ALL_PREDICTIONS, index=False, compression={"method": "gzip", "mtime": 0}
    )


def store_train_means(runs: dict[tuple[str, str, int], Path]) -> None:
    """Merge the training mean of each size and seed of ``runs`` into ``train_means.csv`` (the
    targets as the runs saw them: float32); every arm of a size and seed must have trained on
    the same crystals."""
    from matgnn.config_dir import default_data_dir
    from matgnn.data.sources.ye2018 import ye2018_perovskite

    records = ye2018_perovskite(default_data_dir())
    targets = dict(zip(records.ids, records.targets[TARGET].astype(np.float32), strict=True))
    seen: dict[tuple[str, int], tuple[frozenset, Path]] = {}
    rows = []
    for (_, size, seed), run in runs.items():
        train = frozenset(json.loads((run / "split.json").read_text())["train"])
        if (size, seed) in seen:
            if seen[size, seed][0] != train:
                raise SystemExit(f"{run}: other training crystals than {seen[size, seed][1]}")
            continue
        seen[size, seed] = (train, run)
        values = np.array([targets[i] for i in sorted(train)], dtype=np.float64)
        rows.append(
            {"size": size, "seed": seed, "n_train": len(train), "train_mean": values.mean()}
        )
    merged = _merged(TRAIN_MEANS, pd.DataFrame(rows), ["size", "seed"])
    merged = merged.assign(_size=merged["size"].map(_size_order))
    merged.sort_values(["_size", "seed"]).drop(columns="_size").to_csv(TRAIN_MEANS, index=False)


def collect(runs: Path) -> None:
    rows = stored_rows()
    finished = {
        (arm, run.parent): run_row(run.parent, arm)
        for arm in ARMS
        for run in sorted((runs / arm).glob("n*_s*/test_metrics.json"))
    }
    found = list(finished.values())
    if not found:
        raise FileNotFoundError(f"{runs}: no finished learning-curve run")
    rows.update({(r["arm"], r["size"], r["seed"]): r for r in found})
    by_key = {(r["arm"], r["size"], r["seed"]): run for (_, run), r in finished.items()}
    store_predictions(by_key)
    store_train_means(by_key)
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


def _stored(path: Path) -> Path:
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: stored result missing (benchmarks/finetune/table.py --collect writes it)"
        )
    return path


def run_errors() -> tuple[dict[tuple[str, str, int], float], dict[tuple[str, int], float]]:
    """From the stored per-crystal test predictions: each run's test MAE by ``(arm, size,
    seed)``, and by ``(size, seed)`` the MAE of predicting that split's training mean
    (``train_means.csv``) for every test crystal (eV/atom)."""
    predictions = pd.read_csv(
        _stored(ALL_PREDICTIONS),
        dtype={"size": str, "target": np.float32, "prediction": np.float32},
    ).astype({"target": np.float64, "prediction": np.float64})
    if predictions[["id", "target", "prediction"]].isna().any().any():
        raise ValueError(f"{ALL_PREDICTIONS}: an empty value")
    if predictions.duplicated([*KEY, "id"]).any():
        raise ValueError(f"{ALL_PREDICTIONS}: a run with a repeated test crystal")
    if predictions.groupby("id")["target"].nunique().max() > 1:
        raise ValueError(f"{ALL_PREDICTIONS}: a test crystal with two different targets")
    error = (predictions["prediction"] - predictions["target"]).abs()
    mae = {
        (arm, size, int(seed)): float(v)
        for (arm, size, seed), v in error.groupby([predictions[k] for k in KEY]).mean().items()
    }
    means = pd.read_csv(_stored(TRAIN_MEANS), dtype={"size": str})
    baseline = {}
    for (size, seed), group in predictions.groupby(["size", "seed"]):
        tested = group.groupby("arm")["id"].apply(frozenset)
        if tested.nunique() > 1:
            raise ValueError(f"{ALL_PREDICTIONS}: n{size}_s{seed}: arms with other test crystals")
        train = means[(means["size"] == size) & (means["seed"] == seed)]["train_mean"]
        if len(train) != 1:
            raise ValueError(f"{TRAIN_MEANS}: no single training mean of n{size}_s{seed}")
        targets = group.drop_duplicates("id")["target"].to_numpy(dtype=float)
        baseline[size, int(seed)] = float(np.abs(targets - float(train.iloc[0])).mean())
    return mae, baseline


def read_curve() -> dict[str, dict[int, list[dict[str, float]]]]:
    """``{arm: {n_train: [row per seed]}}``: the runs of the stored CSV, with their test MAE
    (``mae``) and the training-mean MAE of their split (``mae_predict_train_mean``) computed
    from the stored test predictions (:func:`run_errors`)."""
    mae, baseline = run_errors()
    curve: dict[str, dict[int, list[dict[str, float]]]] = {}
    listed = set()
    with open(_stored(CURVE)) as handle:
        for row in csv.DictReader(handle):
            values = {k: float(v) for k, v in row.items() if k not in ("arm", "size")}
            key = (row["arm"], row["size"], int(row["seed"]))
            listed.add(key)
            if key not in mae:
                raise ValueError(
                    f"{ALL_PREDICTIONS}: no test predictions of the run {row['arm']}/"
                    f"n{row['size']}_s{row['seed']} (listed in {CURVE}); collect it"
                )
            values["mae"] = mae[key]
            if (row["size"], key[2]) not in baseline:
                raise ValueError(
                    f"{ALL_PREDICTIONS}: no test crystals of n{row['size']}_s{row['seed']}"
                )
            values["mae_predict_train_mean"] = baseline[row["size"], key[2]]
            curve.setdefault(row["arm"], {}).setdefault(int(row["n_train"]), []).append(values)
    unlisted = sorted(set(mae) - listed)
    if unlisted:
        raise ValueError(f"{ALL_PREDICTIONS}: runs not in {CURVE}: {unlisted[:5]}")
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
