"""The docs table of benchmarks/uncertainty/ood/run.sh (issue 28): every estimator on random and
out-of-distribution splits.

    python benchmarks/uncertainty/ood/table.py [--collect <runs folder>] \
        [--update docs/results/uncertainty.md]

``--collect`` copies from each ``<runs>/<task>/<split>/<estimator>`` what the table stands on
into ``benchmarks/uncertainty/ood/results/<task>/<split>/<estimator>/``: the per-crystal
``val_uncertainty.csv.gz`` and ``test_uncertainty.csv.gz`` (target, mean, calibrated std,
conformal interval and ood score of every validation and test crystal), the run's
``uncertainty_metrics.json`` (for the output's name and calibration), its split, resolved
config, tested epoch and the commit it ran at. Every number is computed here from the
per-crystal files with the library's functions; the scores the runs wrote are not read:

* ranking: Spearman(|error|, std) and the ROC-AUC of the std for the worst 10% of |error|
  (:func:`matgnn.uncertainty.evaluation.ranking_metrics`), the same for the ood score;
* calibration: Gaussian NLL and the share of test targets in the Gaussian 95% interval of the
  calibrated std (:func:`~matgnn.uncertainty.evaluation.regression_metrics`);
* intervals at 95%, fitted on the validation crystals' stored (mean, calibrated std, target):
  split-conformal (normalised by the std; the run's own lower/upper columns, checked against a
  refit here), conformalised Gaussian quantiles and isotonic; the share of test targets inside
  and the mean width of the conformal one;
* flagged: the share of test crystals whose ood score is above the validation split's 99th
  percentile (1% of in-distribution crystals are, by construction).
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd

REPOSITORY = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPOSITORY / "benchmarks"))  # catalog.py

RESULTS = Path(__file__).parent / "results"
TASKS = {  # task: (label, units, splits)
    "mp_sample_eform": ("MP sample, formation energy", "eV/atom", ("random", "chemsys", "element")),
    "matbench_phonons": ("matbench_phonons, last phonon DOS peak", "cm^-1", ("random", "chemsys")),
}
SPLIT_LABELS = {
    "random": "random",
    "chemsys": "chemical systems held out",
    "element": "elements held out",
}
ESTIMATORS = ("ensemble", "ensemble_distance", "mc_dropout", "mean_variance", "latent_distance")
#: how a stored run is named in the table
LABELS = {"ensemble_distance": "ensemble, distance_std=true"}
#: the recommended default (docs/concepts/uncertainty.md says why)
RECOMMENDED = "ensemble_distance"
COVERAGE = 0.95
#: the goals of issue 28 for the recommended default
GOALS = {"spearman": 0.4, "auroc_ood": 0.75, "coverage": (0.93, 0.97)}
#: runs named here are not stored yet; the table says so instead of failing
PENDING: dict[str, str] = {}


def _copy_compressed(source: Path, target: Path) -> None:
    pd.read_csv(source).to_csv(target, index=False, compression={"method": "gzip", "mtime": 0})


def collect(runs: Path) -> None:
    from matgnn.training.run_logs import tested_epoch

    for task, (_, _, splits) in TASKS.items():
        for split in splits:
            for estimator in ESTIMATORS:
                source = runs / task / split / estimator
                if not (source / "test_metrics.json").is_file():
                    print(f"not finished, skipped: {source}")
                    continue
                target = RESULTS / task / split / estimator
                target.mkdir(parents=True, exist_ok=True)
                for name in ("val_uncertainty.csv", "test_uncertainty.csv"):
                    _copy_compressed(source / name, target / f"{name}.gz")
                shutil.copy2(source / "uncertainty_metrics.json", target)
                shutil.copy2(source / "split.json", target)
                shutil.copy2(source / ".hydra" / "config.yaml", target / "config.yaml")
                if not (source / "commits.txt").is_file():
                    raise SystemExit(f"{source}: no commits.txt (benchmarks/train_run.sh)")
                shutil.copy2(source / "commits.txt", target)
                folders = sorted(source.glob("members/*"), key=lambda p: int(p.name)) or [source]
                epochs = [tested_epoch(f) for f in folders]
                if None in epochs:
                    raise SystemExit(f"{source}: a tested epoch is not logged ({epochs})")
                run = {"tested_epochs": epochs}
                (target / "run.json").write_text(json.dumps(run, indent=1) + "\n")


def _stored(path: Path) -> Path:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not stored (run run.sh, then --collect)")
    return path


def load(task: str, split: str, estimator: str):
    """``(output name, val frame, test frame)`` of one stored run, checked."""
    folder = RESULTS / task / split / estimator
    report = json.loads(_stored(folder / "uncertainty_metrics.json").read_text())
    (output,) = report["uncertainty"]["calibration"]
    frames = []
    for name in ("val", "test"):
        path = _stored(folder / f"{name}_uncertainty.csv.gz")
        frame = pd.read_csv(path)
        needed = ["id", output, f"predicted_{output}", f"std_{output}", "ood_score"]
        needed += [f"lower_{output}", f"upper_{output}"]
        missing = [c for c in needed if c not in frame.columns]
        if missing:
            raise ValueError(f"{path}: no column {missing}")
        if frame.empty or frame[needed].isna().any().any() or not frame["id"].is_unique:
            raise ValueError(f"{path}: no rows, an empty value or a repeated id")
        frames.append(frame)
    return output, *frames


def scores(task: str, split: str, estimator: str) -> dict[str, float]:
    """Every number of one row, from the stored per-crystal predictions."""
    from matgnn.uncertainty import calibration as cal
    from matgnn.uncertainty.evaluation import ranking_metrics, regression_metrics

    output, val, test = load(task, split, estimator)

    def columns(frame):
        return (frame[c].to_numpy(dtype=float) for c in
                (output, f"predicted_{output}", f"std_{output}", "ood_score"))  # fmt: skip

    y_val, mean_val, std_val, ood_val = columns(val)
    y, mean, std, ood = columns(test)
    half_width, _ = cal.conformal_half_width(mean_val, std_val, y_val, COVERAGE)
    lower, upper = (test[f"{side}_{output}"].to_numpy(dtype=float) for side in ("lower", "upper"))
    close = {"rtol": 1e-4, "atol": 1e-6}
    if not (np.allclose(lower, mean - half_width * std, **close)
            and np.allclose(upper, mean + half_width * std, **close)):  # fmt: skip
        raise ValueError(f"{task}/{split}/{estimator}: the stored intervals are not the refit")
    error = np.abs(y - mean)
    gaussian = regression_metrics(mean, std, y)
    by_std = ranking_metrics(error, std)
    by_ood = ranking_metrics(error, ood)
    threshold = np.percentile(ood_val, 99)
    margin, _ = cal.quantile_margin(mean_val, std_val, y_val, COVERAGE)
    band = cal.normal_quantile(COVERAGE) * std + margin
    z_low, z_high, _ = cal.isotonic_bounds(mean_val, std_val, y_val, COVERAGE)
    return {
        "crystals": len(test),
        "mae": float(error.mean()),
        "spearman": by_std["spearman"],
        "auroc": by_std["auroc_worst_decile"],
        "nll": gaussian["nll"],
        "coverage_gaussian": gaussian["coverage_95"],
        "coverage_conformal": float(np.mean((y >= lower) & (y <= upper))),
        "width_conformal": float(np.mean(upper - lower)),
        "coverage_quantile": float(np.mean(np.abs(y - mean) <= band)),
        "coverage_isotonic": float(np.mean((y >= mean + z_low * std) & (y <= mean + z_high * std))),
        "spearman_ood": by_ood["spearman"],
        "auroc_ood": by_ood["auroc_worst_decile"],
        "flagged": float(np.mean(ood > threshold)),
    }


HEADER = (
    "| split (test crystals) | estimator | MAE | Spearman (error, std) | AUROC worst 10% (std) "
    "| NLL | 95% Gaussian | 95% conformal (width) | 95% CQR | 95% isotonic "
    "| Spearman (error, ood) | AUROC worst 10% (ood) | flagged |"
)


def row(task: str, split: str, estimator: str) -> str:
    key, label = f"{task}/{split}/{estimator}", LABELS.get(estimator, estimator)
    if key in PENDING:
        return f"| {SPLIT_LABELS[split]} | {label} | {PENDING[key]} |" + " - |" * 10
    s = scores(task, split, estimator)
    width = f"{s['width_conformal']:.3g}"
    cells = [
        f"{SPLIT_LABELS[split]} ({s['crystals']})",
        label,
        f"{s['mae']:.3g}",
        f"{s['spearman']:.2f}",
        f"{s['auroc']:.2f}",
        f"{s['nll']:.2f}",
        f"{s['coverage_gaussian']:.3f}",
        f"{s['coverage_conformal']:.3f} ({width})",
        f"{s['coverage_quantile']:.3f}",
        f"{s['coverage_isotonic']:.3f}",
        f"{s['spearman_ood']:.2f}",
        f"{s['auroc_ood']:.2f}",
        f"{100 * s['flagged']:.0f}%",
    ]
    return "| " + " | ".join(cells) + " |"


def runs_line(task: str) -> str:
    """Which code and tested epochs the task's stored runs stand on (each run's
    ``commits.txt``: one line per attempt, the commit and whether matgnn/ had uncommitted
    changes)."""
    commits, epochs, runs = set(), [], 0
    for split in TASKS[task][2]:
        for estimator in ESTIMATORS:
            folder = RESULTS / task / split / estimator
            if not (folder / "run.json").is_file():
                continue
            runs += 1
            epochs += json.loads((folder / "run.json").read_text())["tested_epochs"]
            attempts = _stored(folder / "commits.txt").read_text().splitlines()
            commits |= {line.split(" 20")[0] for line in attempts}
    if not runs:
        return "No run stored yet."
    return (
        f"{runs} runs; code: {'; '.join(sorted(commits))}; tested checkpoints' epochs (from 0, "
        f"every ensemble member counted) {min(epochs)}-{max(epochs)}."
    )


def goals_line(task: str) -> str:
    """The recommended default against the goals of issue 28, on ``task``."""
    stored = [s for s in TASKS[task][2] if f"{task}/{s}/{RECOMMENDED}" not in PENDING]
    if "random" not in stored or len(stored) < 2:
        return ""
    chosen = {split: scores(task, split, RECOMMENDED) for split in stored}
    random, shifted = chosen["random"], [s for s in stored if s != "random"]
    low, high = GOALS["coverage"]

    def verdict(ok: bool) -> str:
        return "met" if ok else "not met"

    aurocs = ", ".join(f"{SPLIT_LABELS[s]} {chosen[s]['auroc']:.2f}" for s in shifted)
    coverages = ", ".join(f"{SPLIT_LABELS[s]} {chosen[s]['coverage_conformal']:.3f}"
                          for s in shifted)  # fmt: skip
    met = [SPLIT_LABELS[s] for s in shifted if chosen[s]["auroc"] >= GOALS["auroc_ood"]]
    return (
        f"Goals of issue 28 for the recommended default ({LABELS.get(RECOMMENDED, RECOMMENDED)}, "
        f"95% conformal intervals): Spearman(error, std) >= {GOALS['spearman']} on the random "
        f"split: {random['spearman']:.2f}, {verdict(random['spearman'] >= GOALS['spearman'])}; "
        f"AUROC for the worst 10% >= {GOALS['auroc_ood']} out of distribution: {aurocs}, "
        f"{'met on ' + ', '.join(met) if met else 'not met on any shifted split'}; 95% "
        f"coverage in [{low}, {high}] on the random split: {random['coverage_conformal']:.3f}, "
        f"{verdict(low <= random['coverage_conformal'] <= high)}; out of distribution: "
        f"{coverages}."
    )


def table() -> str:
    parts = []
    for task, (label, units, splits) in TASKS.items():
        recipe = "CGCNN, seed 0; the ensembles: seeds 0-4"
        parts += [f"**{label}** (MAE and width in {units}; {recipe})", "", HEADER]
        parts.append("|---|---|" + "---:|" * 11)
        parts += [row(task, split, e) for split in splits for e in ESTIMATORS]
        parts += ["", runs_line(task), "", goals_line(task), ""]
    return "\n".join(p for p in parts if p is not None).rstrip()


def main() -> None:
    from catalog import table_script

    table_script(__doc__.split("\n\n")[0], "uncertainty-ood", collect, table)


if __name__ == "__main__":
    main()
