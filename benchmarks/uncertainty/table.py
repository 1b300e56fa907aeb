"""The docs table of benchmarks/uncertainty/run_phonons.sh (issue 15).

    python benchmarks/uncertainty/table.py [--collect <runs folder>] \
        [--update docs/results/uncertainty.md]

``--collect`` copies from each ``<runs>/<estimator>`` what the table stands on into
``benchmarks/uncertainty/results/<estimator>/`` (``uncertainty_metrics.json``,
``test_uncertainty.csv``, the calibration plot, the resolved config and the metrics CSV; not the
checkpoints). The table is computed from those copies: one row per estimator and calibration
state, test split (matbench_phonons fold 0). Its scores come from the per-crystal
``test_uncertainty.csv`` (target, mean and calibrated std of every test crystal), scored with
the library's own :func:`matgnn.uncertainty.evaluation.regression_metrics`; of
``uncertainty_metrics.json`` it reads only the output's name and its calibration, the std
scale fitted on the validation split (the uncalibrated std is the stored one divided by it).
The test scores the run wrote there are not read.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: catalog.py

RESULTS = Path(__file__).parent / "results"
ESTIMATORS = ("ensemble", "mc_dropout", "mean_variance", "mean_variance_beta")
KEPT = ("uncertainty_metrics.json", "test_uncertainty.csv", "train.log")
COLUMNS = (
    ("mae", "MAE (cm^-1)", "{:.2f}"),
    ("nll", "NLL", "{:.3f}"),
    ("miscalibration_area", "miscalibration area", "{:.3f}"),
    ("sharpness", "sharpness (cm^-1)", "{:.1f}"),
    ("coverage_95", "95% coverage", "{:.3f}"),
    ("spearman_error_std", "Spearman(abs error, std)", "{:.3f}"),
)


def collect(runs: Path) -> None:
    for estimator in ESTIMATORS:
        source = runs / estimator
        if not (source / "uncertainty_metrics.json").is_file():
            raise SystemExit(f"{estimator}: no finished run in {source} (uncertainty_metrics.json)")
        target = RESULTS / estimator
        target.mkdir(parents=True, exist_ok=True)
        for name in KEPT:
            shutil.copy2(source / name, target / name)
        for png in source.glob("test_*.png"):
            shutil.copy2(png, target / png.name)
        shutil.copy2(source / ".hydra" / "config.yaml", target / "config.yaml")
        for path in sorted(source.glob("members/*/logs/*/metrics.csv")):
            member = path.relative_to(source).parts[1]
            shutil.copy2(path, target / f"member_{member}_metrics.csv")
        single = sorted(source.glob("logs/*/metrics.csv"))
        if single:
            shutil.copy2(single[-1], target / "metrics.csv")


def _stored(path: Path, estimator: str) -> Path:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: the {estimator} run is not stored (collect it)")
    return path


def scores_on_test(estimator: str) -> tuple[float, dict[str, dict[str, float]]]:
    """The std scale of ``estimator``'s calibration and its test scores ``{"uncalibrated":
    ..., "calibrated": ...}``, from its stored per-crystal ``test_uncertainty.csv``."""
    from matgnn.uncertainty.evaluation import regression_metrics

    folder = RESULTS / estimator
    report = json.loads(_stored(folder / "uncertainty_metrics.json", estimator).read_text())
    (output,) = report["uncertainty"]["calibration"]
    scale = float(report["uncertainty"]["calibration"][output]["std_scale"])
    path = _stored(folder / "test_uncertainty.csv", estimator)
    frame = pd.read_csv(path)
    columns = [output, f"predicted_{output}", f"std_{output}"]
    missing = [c for c in ["id", *columns] if c not in frame.columns]
    if missing:
        raise ValueError(f"{path}: no column {missing}")
    if frame.empty or frame[columns].isna().any().any() or not frame["id"].is_unique:
        raise ValueError(f"{path}: no rows, an empty value or a repeated id")
    target, mean, std = (frame[c].to_numpy(dtype=float) for c in columns)
    # the stored std is the calibrated one (every std times the scale)
    states = {"uncalibrated": std / scale, "calibrated": std}
    scores = {state: regression_metrics(mean, s, target) for state, s in states.items()}
    return scale, scores


def table() -> str:
    header = "| estimator | calibration | " + " | ".join(c[1] for c in COLUMNS) + " |"
    lines = [header, "|---|---|" + "---:|" * len(COLUMNS)]
    for estimator in ESTIMATORS:
        scale, scores = scores_on_test(estimator)
        for state in ("uncalibrated", "calibrated"):
            values = scores[state]
            label = f"std x {scale:.2f}" if state == "calibrated" else "none"
            cells = " | ".join(fmt.format(values[key]) for key, _, fmt in COLUMNS)
            lines.append(f"| {estimator} | {label} | {cells} |")
    return "\n".join(lines)


def main() -> None:
    from catalog import table_script

    table_script(__doc__.split("\n\n")[0], "uncertainty-phonons", collect, table)


if __name__ == "__main__":
    main()
