"""Energy above hull from stored test predictions (issue 13, "Energy above hull"): MAE, R2 and
the stable / unstable classification the prediction implies.

    python benchmarks/stability/ehull.py [--update docs/results/stability.md]

Reads ``benchmarks/results/<run>/test_predictions.csv.gz`` and ``metrics.csv`` of the
``mp2018_ehull`` runs listed in ``RUNS`` (columns ``id``, DFT value, prediction; eV/atom; the
same seeded test split for all). For each:
* MAE and R2 on the test split;
* ROC AUC of the negated prediction for "stable", with stable = DFT Ehull <= 0 and <= 0.1
  eV/atom, and the share of stable crystals at each threshold;
* a parity plot, ``results/ehull_parity_<model>.png`` (``cgcnn``, ``cgcnn_2k``, ``alignn_2k``).
The docs block ``ehull`` is computed from the stored predictions each time (a test checks it);
``results/ehull.json`` keeps the same numbers for readers.
"""

from __future__ import annotations

import argparse
import functools
import json
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import r2_score, roc_auc_score

from matgnn.analysis.plots import parity_plot
from matgnn.training.run_logs import training_summary

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: catalog.py

HERE = Path(__file__).parent
RESULTS = HERE / "results"
TARGET = "e_above_hull_mp2018_automatminer"  # the output of task mp2018_ehull (eV/atom)
STORED = HERE.parent / "results"
#: model -> (stored run folder, its training data and settings in words); epochs and epoch
#: time are read from the stored metrics.csv
RUNS = {
    "CGCNN": ("pretrained_cgcnn_mp2018_ehull", "all 29,389 training crystals"),
    "CGCNN (2k)": ("ehull_cgcnn_n2000", "2,000 of them (seeded subset)"),
    "ALIGNN (2k)": ("ehull_alignn_n2000", "the same 2,000; bf16-mixed"),
}
THRESHOLDS = (0.0, 0.1)  # eV/atom


def scores(true: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    result = {
        "test_crystals": len(true),
        "mae": float(np.abs(predicted - true).mean()),
        "r2": float(r2_score(true, predicted)),
    }
    for threshold in THRESHOLDS:
        stable = true <= threshold
        result[f"stable_share_{threshold}"] = float(stable.mean())
        result[f"roc_auc_{threshold}"] = float(roc_auc_score(stable, -predicted))
    return result


def measure() -> dict[str, dict]:
    """Every run's scores, computed from its stored per-crystal test predictions."""
    results = {}
    for model, (folder, data) in RUNS.items():
        summary = training_summary(STORED / folder)
        budget = (
            f"{data}; {summary['epochs']} epochs, {summary['train_seconds']:.0f} s of epoch time"
        )
        true, predicted = _predictions(folder)
        results[model] = {"run": folder, "budget": budget, **scores(true, predicted)}
    return results


@functools.cache
def _predictions(folder: str) -> tuple[np.ndarray, np.ndarray]:
    table = pd.read_csv(STORED / folder / "test_predictions.csv.gz")
    return table[TARGET].to_numpy(), table[f"predicted_{TARGET}"].to_numpy()


def evaluate() -> dict[str, dict]:
    """:func:`measure`, plus the parity plots and ``results/ehull.json`` (a summary for
    readers; the table never reads it)."""
    RESULTS.mkdir(exist_ok=True)
    results = measure()
    for model, (folder, _) in RUNS.items():
        slug = re.sub(r"[^a-z0-9]+", "_", model.lower()).strip("_")
        path = RESULTS / f"ehull_parity_{slug}.png"
        parity_plot(*_predictions(folder), path, f"E_hull (eV/atom), {model}")
    (RESULTS / "ehull.json").write_text(json.dumps(results, indent=1) + "\n")
    return results


def table(results: dict[str, dict] | None = None) -> str:
    """The docs table, from ``results`` or computed anew from the stored per-crystal test
    predictions (:func:`measure`)."""
    if results is None:
        results = measure()
    lines = [
        "| model | budget (2 CPU cores) | test MAE (eV/atom) | R² | ROC AUC, stable at 0 | "
        "ROC AUC, stable at <= 0.1 |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for model, r in results.items():
        lines.append(
            f"| {model} | {r['budget']} | {r['mae']:.4f} | {r['r2']:.3f} | "
            f"{r['roc_auc_0.0']:.3f} ({100 * r['stable_share_0.0']:.0f}% stable) | "
            f"{r['roc_auc_0.1']:.3f} ({100 * r['stable_share_0.1']:.0f}% stable) |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--update", nargs="*", default=[])
    args = parser.parse_args()
    text = table(evaluate())
    print(text)
    from catalog import write_block

    write_block(args.update, "ehull", text)


if __name__ == "__main__":
    main()
