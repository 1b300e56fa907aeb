"""Chen et al. 2021 phonon DOS (issue 13): the e3nn model and the four other backbones with a
``VectorHead`` on the authors' split, against the Mat2Spec re-benchmark.

    python benchmarks/phonons/chen2021_table.py [--collect <runs folder>] \
        [--update docs/results/phonons.md]

``--collect`` copies the test predictions of ``<runs>/<model>`` (the runs of ``run_models.sh``)
to ``results/chen2021/predictions/<model>.csv.gz`` and their budget (epochs, best epoch, summed
epoch time) to ``results/chen2021/runs.csv``; a model with no run in the folder keeps its
stored files and row (so one new run can be collected alone); the e3nn run is the shipped
pretrained model's (``benchmarks/results/pretrained_e3nn_phonon_dos``). ``chgnet_frozen`` and
``sevennet_frozen`` are CHGNet 0.3.0 and SevenNet-0 frozen (issue 26), the VectorHead trained
alone with the same recipe; ``chgnet_finetuned`` trains CHGNet whole and ``chgnet_last_blocks``
its last 2 of 4 blocks, the backbone at a tenth of the head's learning rate (45-minute cap).
Every model
is scored on the test crystals that all of them predicted (e3nn's 4 Å graph rejects 2 test
crystals with an isolated Cs atom), with Mat2Spec's definitions (Kong et al., Nat. Commun.
13, 949 (2022), Table 1, "MaxNorm, MSE"):

* each predicted DOS clipped at 0 and re-scaled to a maximum of 1, then MSE and MAE over every
  bin, and R2 (sklearn ``r2_score`` over the ``[crystals, 51]`` arrays: the mean over bins);
* Wasserstein distance (cm^-1) between the unit-area DOS;
* average phonon frequency (cm^-1) and harmonic C_V at 300 K of the predicted DOS against
  those of the DFT DOS (:mod:`matgnn.analysis.phonons`): MAE, C_V in J/(mol K) per mole of atoms
  and per mole of unit cells (x atoms per cell, ``results/chen2021/num_atoms.csv`` written by
  ``--collect`` from the data set). Mat2Spec's C_V errors are on the scale of the per-cell
  value (their MAE 3.58 J/(mol K) is ~14% of a per-atom C_V but ~2% of a per-cell one); the
  paper does not say which it is, so both are reported.

The table is computed from the stored per-crystal files (``predictions/<model>.csv.gz``: the
DFT and predicted DOS of each test crystal; ``num_atoms.csv``) and ``runs.csv``;
``--collect`` also writes the scores to ``results/chen2021/metrics.csv`` for reading.

Also ``results/chen2021/examples.png``: the DFT DOS and every model's prediction for 6 test
crystals (best, median and worst e3nn Wasserstein distance, 2 each), and
``results/chen2021/learning_curves.png``: each model's validation MAE by epoch, from the logs
copied to ``results/chen2021/logs/<model>.csv`` (where the 10-minute cap stopped a model).
The CGCNN run's best checkpoint is kept as ``results/chen2021/checkpoints/cgcnn.ckpt``
(without optimizer state; the larger models' stay with their runs).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import r2_score

from matgnn.analysis.phonons import average_frequency, heat_capacity, wasserstein_distance
from matgnn.analysis.plots import learning_curves_plot
from matgnn.checkpoints.files import slim_checkpoint
from matgnn.config_dir import default_data_dir
from matgnn.data.sources.phonon import FREQUENCIES_CM, chen2021_phonon_dos
from matgnn.training.run_logs import read_logs, training_summary

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: catalog.py
from catalog import table_script

HERE = Path(__file__).parent
RESULTS = HERE / "results" / "chen2021"
PREDICTIONS = RESULTS / "predictions"
E3NN_RUN = HERE.parent / "results" / "pretrained_e3nn_phonon_dos"
MODELS = {
    "e3nn": "e3nn (Chen et al. network)",
    "cgcnn": "CGCNN + VectorHead",
    "alignn": "ALIGNN + VectorHead",
    "matformer": "Matformer + VectorHead",
    "potnet": "PotNet + VectorHead",
    "chgnet_frozen": "CHGNet 0.3.0 frozen + VectorHead",
    "sevennet_frozen": "SevenNet-0 frozen + VectorHead",
    "chgnet_finetuned": "CHGNet 0.3.0 fine-tuned + VectorHead",
    "chgnet_last_blocks": "CHGNet 0.3.0, last 2 blocks trained + VectorHead",
}
#: Kong et al. 2022 (Mat2Spec), Table 1, MaxNorm scaling, MSE loss; their own split of the
#: same 1,522-crystal Petretto set: R2, MAE, MSE, Wasserstein (cm^-1), C_V MAE, omega MAE
PUBLISHED = {
    "E3NN (Mat2Spec re-benchmark)": (0.56, 0.094, 0.034, 39, 3.58, 30.9),
    "Mat2Spec": (0.63, 0.086, 0.029, 33, 3.30, 26.2),
}
BINS = len(FREQUENCIES_CM)


def collect(runs: Path) -> None:
    PREDICTIONS.mkdir(parents=True, exist_ok=True)
    stored_file = RESULTS / "runs.csv"
    stored = pd.read_csv(stored_file).set_index("model") if stored_file.is_file() else None
    rows = []
    for model in MODELS:
        run = E3NN_RUN if model == "e3nn" else runs / model
        source = run / "test_predictions.csv"
        if model == "e3nn":
            shutil.copyfile(run / "test_predictions.csv.gz", PREDICTIONS / f"{model}.csv.gz")
        elif source.is_file():
            pd.read_csv(source).to_csv(
                PREDICTIONS / f"{model}.csv.gz",
                index=False,
                compression={"method": "gzip", "mtime": 0},
            )
        elif not run.exists() and stored is not None and model in stored.index:
            # not in this runs folder: its stored predictions, log and budget are kept
            kept = stored.loc[model]
            rows.append({"model": model, "epochs": int(kept["epochs"]),
                         "best_epoch": int(kept["best_epoch"]),
                         "train_seconds": float(kept["train_seconds"])})  # fmt: skip
            continue
        else:
            raise SystemExit(
                f"{model}: no finished run in {run} (test_predictions.csv) and none stored"
            )
        if model == "cgcnn":  # small enough to commit (0.4 MB without optimizer state)
            (RESULTS / "checkpoints").mkdir(exist_ok=True)
            slim_checkpoint(
                run / "checkpoints" / "best.ckpt", RESULTS / "checkpoints" / "cgcnn.ckpt"
            )
        summary = training_summary(run)
        (RESULTS / "logs").mkdir(exist_ok=True)
        read_logs(run).to_csv(RESULTS / "logs" / f"{model}.csv", index=False)
        rows.append(
            {
                "model": model,
                "epochs": summary["epochs"],
                "best_epoch": summary["best_epoch"],
                "train_seconds": summary["train_seconds"],
            }
        )
    pd.DataFrame(rows).to_csv(RESULTS / "runs.csv", index=False)
    records = chen2021_phonon_dos(default_data_dir())
    pd.DataFrame({"id": records.ids, "num_atoms": [len(s) for s in records.structures]}).to_csv(
        RESULTS / "num_atoms.csv", index=False
    )
    frames = load()
    scores(frames).to_csv(RESULTS / "metrics.csv", index=False)
    examples(frames)
    learning_curves()


def _arrays(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    true = frame[[f"phdos_{k}" for k in range(BINS)]].to_numpy(dtype=float)
    predicted = frame[[f"predicted_phdos_{k}" for k in range(BINS)]].to_numpy(dtype=float)
    return true, predicted


def _stored(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: stored result missing (benchmarks/phonons/chen2021_table.py --collect "
            "writes it)"
        )
    return pd.read_csv(path)


def load() -> dict[str, pd.DataFrame]:
    """Every model's stored test predictions, on the test crystals all of them predicted."""
    frames = {m: _stored(PREDICTIONS / f"{m}.csv.gz").set_index("id") for m in MODELS}
    for model, frame in frames.items():
        if not frame.index.is_unique or frame.isna().any().any():
            raise ValueError(f"{PREDICTIONS / f'{model}.csv.gz'}: a repeated id or an empty value")
    common = sorted(set.intersection(*(set(f.index) for f in frames.values())))
    return {m: f.loc[common] for m, f in frames.items()}


def cv_difference(grid: np.ndarray, true: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """Predicted minus DFT C_V(300 K) per mole of atoms ``[B]``. An all-zero prediction has no
    DOS to derive a C_V from and is scored as C_V = 0 (the table counts such predictions)."""
    usable = predicted.sum(axis=1) > 0
    out = -heat_capacity(grid, true)
    out[usable] += heat_capacity(grid, predicted[usable])
    return out


def max_normalised(predicted: np.ndarray) -> np.ndarray:
    clipped = np.clip(predicted, 0.0, None)
    peak = clipped.max(axis=1, keepdims=True)
    return np.divide(clipped, peak, out=np.zeros_like(clipped), where=peak > 0)


def scores(frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
    atoms = _stored(RESULTS / "num_atoms.csv").set_index("id")["num_atoms"]
    rows = []
    for model, frame in frames.items():
        per_cell = atoms.loc[frame.index].to_numpy(dtype=float)
        true, raw = _arrays(frame)
        predicted = max_normalised(raw)
        usable = predicted.sum(axis=1) > 0
        empty = int(np.sum(~usable))
        grid = FREQUENCIES_CM
        rows.append(
            {
                "model": model,
                "n_test": len(true),
                "all_zero_predictions": empty,
                "mse_as_trained": float(np.mean((raw - true) ** 2)),
                "mse": float(np.mean((predicted - true) ** 2)),
                "mae": float(np.mean(np.abs(predicted - true))),
                "r2": float(r2_score(true, predicted)),
                "wasserstein_cm": float(
                    wasserstein_distance(grid, true[usable], predicted[usable]).mean()
                ),
                "cv300_mae": float(np.abs(cv_error := cv_difference(grid, true, predicted)).mean()),
                "cv300_cell_mae": float(np.abs(cv_error * per_cell).mean()),
                "omega_mae_cm": float(
                    np.abs(
                        average_frequency(grid, true[usable])
                        - average_frequency(grid, predicted[usable])
                    ).mean()
                ),
            }
        )
    return pd.DataFrame(rows)


def examples(frames: dict[str, pd.DataFrame]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    true = _arrays(frames["e3nn"])[0]
    predicted = {model: max_normalised(_arrays(frame)[1]) for model, frame in frames.items()}
    distance = wasserstein_distance(FREQUENCIES_CM, true, predicted["e3nn"])
    order = np.argsort(distance)
    middle = len(order) // 2
    picks = [*order[:2], *order[middle : middle + 2], *order[-2:]]
    fig, axes = plt.subplots(2, 3, figsize=(11, 5.5), sharex=True)
    for ax, index in zip(axes.flat, picks, strict=True):
        ax.fill_between(FREQUENCIES_CM, true[index], color="0.8", label="DFT")
        for model, values in predicted.items():
            ax.plot(FREQUENCIES_CM, values[index], lw=1, label=model)
        ax.set_title(f"{frames['e3nn'].index[index]} (e3nn W {distance[index]:.0f} cm$^{{-1}}$)")
    for ax in axes[1]:
        ax.set_xlabel("frequency (cm$^{-1}$)")
    axes[0, 0].legend(fontsize=7)
    fig.suptitle("Phonon DOS of 6 test crystals (best, median, worst e3nn), max-normalised")
    fig.tight_layout()
    fig.savefig(RESULTS / "examples.png", dpi=110)
    plt.close(fig)


def learning_curves() -> None:
    curves = {}
    for model in MODELS:
        path = RESULTS / "logs" / f"{model}.csv"
        if path.is_file():
            frame = pd.read_csv(path)[["epoch", "val_phdos_mae"]].dropna()
            curves[model] = (frame["epoch"].to_numpy(), frame["val_phdos_mae"].to_numpy())
    learning_curves_plot(
        curves, RESULTS / "learning_curves.png", "validation MAE (max-normalised DOS)"
    )


def table() -> str:
    metrics = scores(load()).set_index("model")
    empty = metrics[metrics["all_zero_predictions"] > 0]
    if not empty.empty:  # their Wasserstein and frequency terms would silently skip them
        raise ValueError(
            "predicted DOS that are zero everywhere (no normalised spectrum), which the "
            f"table's columns cannot score alike: {empty['all_zero_predictions'].to_dict()}"
        )
    runs = _stored(RESULTS / "runs.csv").set_index("model")
    lines = [
        "| model | setup | epochs run (tested checkpoint's), summed epoch time | test crystals | "
        "R² | MAE | MSE (MSE as trained) | Wasserstein (cm⁻¹) | "
        "C_V(300 K) MAE, J/(mol K): per mol atoms, per mol cells | mean frequency MAE (cm⁻¹) |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for model, name in MODELS.items():
        if model not in runs.index:
            raise ValueError(f"{RESULTS / 'runs.csv'}: no run of {model}; collect its run")
        m, r = metrics.loc[model], runs.loc[model]
        setup = "ours: Chen split and recipe" if model == "e3nn" else "ours: same split and recipe"
        lines.append(
            f"| {name} | {setup} | {r['epochs']:.0f} ({r['best_epoch']:.0f}), "
            f"{r['train_seconds']:.0f} s | {m['n_test']:.0f} | {m['r2']:.2f} | {m['mae']:.3f} | "
            f"{m['mse']:.4f} ({m['mse_as_trained']:.4f}) | {m['wasserstein_cm']:.1f} | "
            f"{m['cv300_mae']:.2f}, {m['cv300_cell_mae']:.2f} | {m['omega_mae_cm']:.1f} |"
        )
    for name, (r2, mae, mse, wd, cv, omega) in PUBLISHED.items():
        lines.append(
            f"| {name} | published (Kong et al. 2022): their split of the same data | - | - | "
            f"{r2:.2f} | {mae:.3f} | {mse:.3f} | {wd} | {cv:.2f} (unit not stated) | "
            f"{omega:.1f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    table_script(__doc__.split("\n\n")[0], "chen2021", collect, table)
