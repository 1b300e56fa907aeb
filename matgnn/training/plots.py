"""PNG plots a person would rather look at than read."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np


def parity_plot(target: np.ndarray, prediction: np.ndarray, path: Path, label: str) -> None:
    """Predicted against true values with the y = x line and the MAE in the title."""
    mae = float(np.mean(np.abs(prediction - target)))
    low = float(min(target.min(), prediction.min()))
    high = float(max(target.max(), prediction.max()))
    fig, ax = plt.subplots(figsize=(4.5, 4.5), dpi=120)
    ax.plot([low, high], [low, high], color="0.5", lw=1)
    ax.scatter(target, prediction, s=6, alpha=0.6)
    ax.set_xlabel(f"true {label}")
    ax.set_ylabel(f"predicted {label}")
    ax.set_title(f"test MAE {mae:.4g} (n = {len(target)})")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
