"""Calibrate an :class:`UncertainModel` on the validation split, score it on the test split
before and after calibration, and write what a run folder keeps:

* ``uncertainty_metrics.json``: the estimator settings, the calibration parameters and, for the
  validation and test splits, every output's metrics uncalibrated and calibrated;
* ``test_uncertainty.csv``: targets, means and stds (or probabilities, entropy, mutual
  information) of every test crystal, calibrated;
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
from matgnn.outputs import ClassOutput, Output
from matgnn.uncertainty.evaluation import (
    classification_metrics,
    regression_calibration_plot,
    regression_metrics,
    reliability_plot,
)
from matgnn.uncertainty.model import UncertainModel, targets

STATES = ("uncalibrated", "calibrated")


def score(
    outputs: Sequence[Output],
    summaries: Mapping[str, Mapping[str, np.ndarray]],
    truth: Mapping[str, np.ndarray],
) -> dict[str, dict[str, float]]:
    """``{output: metrics}`` of summarised predictions against the targets ``truth``."""
    scores = {}
    for output in outputs:
        summary, target = summaries[output.name], truth[output.name]
        if isinstance(output, ClassOutput):
            scores[output.name] = classification_metrics(
                summary["probability"], summary["entropy"], summary["mutual_information"], target
            )
        else:
            scores[output.name] = regression_metrics(summary["mean"], summary["std"], target)
    return scores


def calibrate_and_report(
    model: UncertainModel,
    val: Sequence[CrystalGraph],
    test: Sequence[CrystalGraph],
    directory: str | Path,
    calibrate: bool = True,
    batch_size: int = 64,
) -> dict[str, Any]:
    """Fit the calibration on ``val`` (when ``calibrate``), score ``val`` and ``test`` with and
    without it, write the report files into ``directory``; returns the report. Each split is
    drawn once and summarised once per calibration state."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    val_draws = model.raw_draws(val, batch_size, progress=True) if val else None
    if calibrate:
        model.calibrate(val, batch_size, draws=val_draws)
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
    model.predictions(test, test_draws, summaries["test"][states[-1]]).to_csv(
        directory / "test_uncertainty.csv", targets=truth["test"]
    )
    for output in model.outputs:
        curves = {}
        for state in states:
            s, target = summaries["test"][state][output.name], truth["test"][output.name]
            curves[state] = (
                (s["probability"], target)
                if isinstance(output, ClassOutput)
                else (s["mean"], s["std"], target)
            )
        plot = reliability_plot if isinstance(output, ClassOutput) else regression_calibration_plot
        plot(curves, directory / f"test_calibration_{output.name}.png", f"{output.name} (test)")
    (directory / "uncertainty_metrics.json").write_text(json.dumps(_plain(report), indent=2))
    return report


def _plain(value):
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, np.generic):
        return value.item()
    return value
