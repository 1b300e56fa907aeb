"""Calibrate an :class:`UncertainModel` on the validation split, score it on the test split
before and after calibration, and write what a run folder keeps:

* ``uncertainty_metrics.json``: the estimator settings, the calibration parameters and, for the
  validation and test splits, every output's metrics uncalibrated and calibrated, and with a
  latent distance how well the ood score ranks each crystal-level regression output's errors
  (state ``ood``: Spearman, ROC-AUC for the worst 10%, the fraction above the threshold);
* ``test_uncertainty.csv`` and ``val_uncertainty.csv``: targets, means and stds (or
  probabilities, entropy, mutual information), intervals and ood scores of every test and
  validation crystal, calibrated (the validation ones are what the calibration was fitted on);
* ``test_calibration_<output>.png``: calibration curves (regression) or reliability diagrams
  (classification), before and after calibration.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from matgnn.graphs.data import CrystalGraph
from matgnn.outputs import Output
from matgnn.uncertainty.model import UncertainModel, targets

STATES = ("uncalibrated", "calibrated")


def score(
    outputs: Sequence[Output],
    summaries: Mapping[str, Mapping[str, np.ndarray]],
    truth: Mapping[str, np.ndarray],
) -> dict[str, dict[str, float]]:
    """``{output: metrics}`` of summarised predictions against the targets ``truth``."""
    return {o.name: o.uncertainty_metrics(summaries[o.name], truth[o.name]) for o in outputs}


def ood_metrics(
    model: UncertainModel,
    summaries: Mapping[str, Mapping[str, np.ndarray]],
    truth: Mapping[str, np.ndarray],
    ood: np.ndarray,
) -> dict[str, dict[str, float]]:
    """Per crystal-level regression output: how the ood score ranks the crystals' absolute
    errors (mean over components) and the fraction of crystals above the stored threshold."""
    from matgnn.uncertainty.evaluation import ranking_metrics

    threshold = model.latent.threshold if model.latent is not None else None
    out = {}
    for o in model.outputs:
        if o.level != "crystal" or not o.supports_conformal:
            continue
        mean = np.asarray(summaries[o.name]["mean"], dtype=float)
        error = np.abs(truth[o.name].reshape(mean.shape) - mean).reshape(len(mean), -1)
        metrics = ranking_metrics(error.mean(axis=1), ood)
        if threshold is not None:
            metrics["flagged_fraction"] = float(np.mean(ood > threshold))
        out[o.name] = metrics
    return out


def calibrate_and_report(
    model: UncertainModel,
    val: Sequence[CrystalGraph],
    test: Sequence[CrystalGraph],
    directory: str | Path,
    calibrate: bool = True,
    batch_size: int = 64,
    coverage: float | None = None,
    interval: str = "normalized",
    distance_std: bool = False,
) -> dict[str, Any]:
    """Fit the calibration on ``val`` (when ``calibrate``), score ``val`` and ``test`` with and
    without it, write the report files into ``directory``; returns the report. Each split is
    drawn once and summarised once per calibration state. ``coverage``: also fit intervals of
    that nominal coverage and kind ``interval`` (regression outputs). ``distance_std``: a
    distance-aware std (:meth:`UncertainModel.calibrate`)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    val_draws = model.raw_draws(val, batch_size, progress=True) if val else None
    if calibrate:
        model.calibrate(
            val, batch_size, draws=val_draws, coverage=coverage, interval=interval,
            distance_std=distance_std,
        )  # fmt: skip
    states = STATES if calibrate else STATES[:1]
    report: dict[str, Any] = {"uncertainty": model.settings()}
    test_draws = model.raw_draws(test, batch_size, progress=True)
    splits = {"val": (val, val_draws), "test": (test, test_draws)}
    summaries, truth = {}, {}
    for split, (graphs, draws) in splits.items():
        if draws is None:
            continue
        truth[split] = {o.name: targets(graphs, o) for o in model.outputs}
        summaries[split] = {
            state: model.summarize(draws, state == "calibrated") for state in states
        }
        report[split] = {
            state: score(model.outputs, summaries[split][state], truth[split]) for state in states
        }
        ood = model.ood_scores(draws)
        if ood is not None:
            report[split]["ood"] = ood_metrics(
                model, summaries[split][states[0]], truth[split], ood
            )
    for split, (graphs, draws) in splits.items():
        if draws is None:
            continue
        predictions = model.predict_graphs(graphs, draws=draws, calibrated=calibrate)
        per_crystal = {
            o.name: [g[o.key][0] if o.level == "crystal" else g[o.key] for g in graphs]
            for o in model.outputs
        }
        predictions.to_csv(directory / f"{split}_uncertainty.csv", targets=per_crystal)
    for output in model.outputs:
        curves = {
            state: (summaries["test"][state][output.name], truth["test"][output.name])
            for state in states
        }
        output.calibration_plot(curves, directory / f"test_calibration_{output.name}.png")
    (directory / "uncertainty_metrics.json").write_text(json.dumps(_plain(report), indent=2))
    return report


def _plain(value):
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, np.generic):
        return value.item()
    return value
