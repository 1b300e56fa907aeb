"""PNG plots a person would rather look at than read.

Drawn with matplotlib's object API (``Figure``), not ``pyplot``: importing this module or
plotting never switches the backend of a user's notebook or application."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure


def parity_plot(target: np.ndarray, prediction: np.ndarray, path: Path, label: str) -> None:
    """Predicted against true values with the y = x line and the MAE in the title."""
    mae = float(np.mean(np.abs(prediction - target)))
    low = float(min(target.min(), prediction.min()))
    high = float(max(target.max(), prediction.max()))
    fig = Figure(figsize=(4.5, 4.5), dpi=120)
    ax = fig.subplots()
    ax.plot([low, high], [low, high], color="0.5", lw=1)
    ax.scatter(target, prediction, s=6, alpha=0.6)
    ax.set_xlabel(f"true {label}")
    ax.set_ylabel(f"predicted {label}")
    ax.set_title(f"test MAE {mae:.4g} (n = {len(target)})")
    fig.tight_layout()
    fig.savefig(path)


def dos_plot(
    grid: np.ndarray,
    target: np.ndarray,
    prediction: np.ndarray,
    ids: list[str],
    path: Path,
    xlabel: str = "frequency (cm$^{-1}$)",
) -> None:
    """Predicted spectra over the true ones for 12 test crystals, chosen at evenly spaced
    quantiles of the per-crystal MSE (best top left, worst bottom right), as in Chen et al.'s
    figures. Shapes: ``grid`` ``[K]``, ``target``/``prediction`` ``[N, K]``."""
    error = ((prediction - target) ** 2).mean(axis=1)
    order = np.argsort(error)
    picks = order[
        np.unique(np.linspace(0, len(order) - 1, min(12, len(order))).round().astype(int))
    ]
    rows = int(np.ceil(len(picks) / 4))
    fig = Figure(figsize=(12, 2.4 * rows), dpi=110)
    axes = fig.subplots(rows, 4, squeeze=False)
    for ax in axes.flat[len(picks) :]:
        ax.axis("off")
    for ax, i in zip(axes.flat, picks, strict=False):
        ax.fill_between(grid, target[i], color="0.8", label="true")
        ax.plot(grid, prediction[i], color="C3", lw=1.5, label="predicted")
        ax.set_title(f"{ids[i]}  MSE {error[i]:.3g}", fontsize=8)
        ax.tick_params(labelsize=7)
    axes.flat[0].legend(fontsize=7)
    for ax in axes[-1]:
        ax.set_xlabel(xlabel, fontsize=8)
    fig.suptitle(f"test set: median MSE {np.median(error):.3g} (n = {len(error)})", fontsize=10)
    fig.tight_layout()
    fig.savefig(path)


def learning_curves_plot(
    curves: dict[str, tuple[np.ndarray, np.ndarray]], path: Path, ylabel: str
) -> None:
    """One line per run (``{label: (epochs, values)}``) on a log scale, e.g. the validation
    MAE of each Matbench fold against the epoch."""
    fig = Figure(figsize=(6, 4), dpi=120)
    ax = fig.subplots()
    for label, (epochs, values) in curves.items():
        ax.plot(epochs, values, lw=1.2, label=label)
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    if all((v > 0).all() for _, v in curves.values()):
        ax.set_yscale("log")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
