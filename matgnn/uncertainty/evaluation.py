"""Scores of predicted uncertainty, through uncertainty-toolbox (Chung et al. 2021) where it
has the metric.

Regression (every component of every crystal pooled): MAE over all values; over the values
whose std is above 0 (the others, e.g. tensor components fixed by symmetry, are counted as
``zero_std_fraction``): Gaussian NLL, miscalibration area and sharpness from
uncertainty-toolbox, the fraction of targets inside the central 95% interval
(uncertainty-toolbox ``get_proportion_in_interval``, nominal 0.95), the Spearman rank
correlation between absolute error and std (scipy), and the ROC-AUC of the std for flagging
the worst 10% of absolute errors (:func:`ranking_metrics`, which also scores an ood score).

Classification: accuracy, NLL, expected calibration error (torchmetrics, 15 bins), mean
entropy and mutual information, and how well each ranks the misclassified crystals first
(ROC-AUC of entropy / mutual information against "prediction is wrong").
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from matgnn.uncertainty.calibration import class_nll

#: nominal level of the reported interval coverage
COVERAGE_LEVEL = 0.95
#: the share of largest absolute errors that a good uncertainty should flag first
WORST_FRACTION = 0.1


def ranking_metrics(error, score) -> dict[str, float]:
    """How well ``score`` ranks absolute ``error`` (both ``[M]``): the Spearman correlation,
    and the ROC-AUC of ``score`` for the rows among the :data:`WORST_FRACTION` largest errors
    (0.5: no better than chance). ``nan`` when either is constant."""
    from scipy.stats import spearmanr

    error, score = (np.asarray(a, dtype=float).reshape(-1) for a in (error, score))
    if error.size < 2 or np.ptp(score) == 0 or np.ptp(error) == 0:
        return {"spearman": float("nan"), "auroc_worst_decile": float("nan")}
    worst = error >= np.quantile(error, 1 - WORST_FRACTION)
    return {
        "spearman": float(spearmanr(error, score).statistic),
        "auroc_worst_decile": auroc(worst, score),
    }


def auroc(positive, score) -> float:
    """ROC-AUC of ``score`` for the boolean ``positive`` rows: the probability that a positive
    scores above a negative, ties counted half (the Mann-Whitney U statistic over
    ``n_pos n_neg``); ``nan`` without both kinds of rows."""
    from scipy.stats import rankdata

    positive = np.asarray(positive, dtype=bool).reshape(-1)
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if not n_pos or not n_neg:
        return float("nan")
    ranks = rankdata(np.asarray(score, dtype=float).reshape(-1))
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def interval_metrics(lower, upper, target, std) -> dict[str, float]:
    """How often a row's target lies wholly in ``[lower, upper]`` (every component with a std
    above 0, as the conformal intervals are fitted) and the mean interval width over those
    components."""
    lower, upper, target, std = (np.asarray(a, dtype=float) for a in (lower, upper, target, std))
    rows = len(lower)
    lower, upper, target, std = (a.reshape(rows, -1) for a in (lower, upper, target, std))
    spread = std > 0
    inside = ((target >= lower) & (target <= upper)) | ~spread
    scored = spread.any(axis=1)
    return {
        "interval_coverage": float(inside.all(axis=1)[scored].mean()),
        "interval_width": float((upper - lower)[spread].mean()),
    }


def regression_metrics(mean, std, target) -> dict[str, float]:
    """Uncertainty metrics of Gaussian predictions ``N(mean, std²)`` of ``target``."""
    import uncertainty_toolbox as uct

    mean, std, target = (np.asarray(a, dtype=float).reshape(-1) for a in (mean, std, target))
    error = np.abs(target - mean)
    spread = std > 0
    metrics = {"mae": float(error.mean()), "zero_std_fraction": float(1 - spread.mean())}
    if spread.sum() < 2:
        return metrics
    # values with std 0 (fixed by symmetry, or a model with no spread) have no distribution
    mean, std, target, error = mean[spread], std[spread], target[spread], error[spread]
    ranks = ranking_metrics(error, std)
    return {
        **metrics,
        "nll": float(uct.metrics_scoring_rule.nll_gaussian(mean, std, target)),
        "miscalibration_area": float(
            uct.metrics_calibration.miscalibration_area(mean, std, target, vectorized=True)
        ),
        "sharpness": float(uct.metrics_calibration.sharpness(std)),
        "coverage_95": float(
            uct.metrics_calibration.get_proportion_in_interval(
                mean, std, target, quantile=COVERAGE_LEVEL
            )
        ),
        "spearman_error_std": ranks["spearman"],
        "error_auroc_worst_decile": ranks["auroc_worst_decile"],
    }


def classification_metrics(probability, entropy, mutual_information, labels) -> dict[str, float]:
    """Scores of mean class probabilities ``[M, C]`` and their uncertainty for ``labels``."""
    import torch
    from torchmetrics.functional.classification import binary_auroc, multiclass_calibration_error

    probability = np.asarray(probability, dtype=float)
    labels = np.asarray(labels).reshape(-1).astype(int)
    wrong = probability.argmax(-1) != labels
    metrics = {
        "accuracy": float(1.0 - wrong.mean()),
        "nll": class_nll(probability, labels),
        "ece": float(
            multiclass_calibration_error(
                torch.as_tensor(probability),
                torch.as_tensor(labels),
                num_classes=probability.shape[1],
                n_bins=15,
            )
        ),
        "mean_entropy": float(np.mean(entropy)),
        "mean_mutual_information": float(np.mean(mutual_information)),
    }
    for name, score in (("entropy", entropy), ("mutual_information", mutual_information)):
        metrics[f"error_auroc_{name}"] = (
            float(binary_auroc(torch.as_tensor(score), torch.as_tensor(wrong.astype(int))))
            if 0 < wrong.sum() < len(wrong)
            else float("nan")
        )
    return metrics


def regression_calibration_plot(curves: dict[str, tuple], path: Path, title: str) -> Path:
    """Observed vs expected proportion in centred intervals, one curve per ``label: (mean,
    std, target)`` (uncertainty-toolbox's calibration curve), saved as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import uncertainty_toolbox as uct

    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot([0, 1], [0, 1], "--", color="0.5", label="ideal")
    for label, (mean, std, target) in curves.items():
        mean, std, target = (np.asarray(a, dtype=float).reshape(-1) for a in (mean, std, target))
        expected, observed = uct.metrics_calibration.get_proportion_lists_vectorized(
            mean, np.clip(std, 1e-12, None), target
        )
        area = uct.metrics_calibration.miscalibration_area_from_proportions(expected, observed)
        ax.plot(expected, observed, label=f"{label} (area {area:.3f})")
    ax.set(xlabel="expected proportion in interval", ylabel="observed proportion", title=title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def reliability_plot(curves: dict[str, tuple], path: Path, title: str, bins: int = 10) -> Path:
    """Accuracy against confidence in ``bins`` equal-width bins, one curve per
    ``label: (probability [M, C], labels)``, saved as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot([0, 1], [0, 1], "--", color="0.5", label="ideal")
    edges = np.linspace(0, 1, bins + 1)
    for label, (probability, labels) in curves.items():
        probability = np.asarray(probability)
        confidence = probability.max(-1)
        correct = probability.argmax(-1) == np.asarray(labels).reshape(-1)
        which = np.clip(np.digitize(confidence, edges) - 1, 0, bins - 1)
        filled = [b for b in range(bins) if (which == b).any()]
        ax.plot(
            [confidence[which == b].mean() for b in filled],
            [correct[which == b].mean() for b in filled],
            "o-",
            label=label,
        )
    ax.set(xlabel="confidence", ylabel="accuracy", title=title, xlim=(0, 1), ylim=(0, 1))
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
