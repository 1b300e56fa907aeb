"""The README table of benchmarks/uncertainty/run_phonons.sh (issue 15).

    python benchmarks/uncertainty/table.py [--collect <runs folder>] [--update README.md]

``--collect`` copies from each ``<runs>/<estimator>`` what the table stands on into
``benchmarks/uncertainty/results/<estimator>/`` (``uncertainty_metrics.json``,
``test_uncertainty.csv``, the calibration plot, the resolved config and the metrics CSV; not the
checkpoints). The table is written from those copies: one row per estimator and calibration
state, test split (matbench_phonons fold 0).
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

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


def table() -> str:
    header = "| estimator | calibration | " + " | ".join(c[1] for c in COLUMNS) + " |"
    lines = [header, "|---|---|" + "---:|" * len(COLUMNS)]
    for estimator in ESTIMATORS:
        path = RESULTS / estimator / "uncertainty_metrics.json"
        if not path.is_file():
            raise FileNotFoundError(f"{path}: the {estimator} run is not stored")
        report = json.loads(path.read_text())
        (output,) = report["uncertainty"]["calibration"]
        scale = report["uncertainty"]["calibration"][output]["std_scale"]
        for state in ("uncalibrated", "calibrated"):
            values = report["test"][state][output]
            label = f"std x {scale:.2f}" if state == "calibrated" else "none"
            cells = " | ".join(fmt.format(values[key]) for key, _, fmt in COLUMNS)
            lines.append(f"| {estimator} | {label} | {cells} |")
    return "\n".join(lines)


def main() -> None:
    from catalog import table_script

    table_script(__doc__.split("\n\n")[0], "uncertainty-phonons", collect, table)


if __name__ == "__main__":
    main()
