"""From draws ``[S, rows, ...]`` to what is reported, per output kind.

Regression (any shape; :class:`~matgnn.outputs.GaussianOutput` draws end in (mean, std)):
``mean`` is the mean over draws, ``epistemic_std`` the spread of the draws' means (population
std, so identical draws give exactly 0), ``aleatoric_std`` the root of the draws' mean
variance (0 without a variance head) and ``std = sqrt(aleatoric² + epistemic²)`` (the law of
total variance; Lakshminarayanan et al. 2017, Kendall & Gal 2017).

Classification: ``probability`` is the mean of the draws' probabilities; ``entropy`` its
entropy (total uncertainty, nats); ``mutual_information`` the entropy minus the mean entropy of
the draws (the epistemic part, BALD; Houlsby et al. 2011; the ARISE paper uses it).
"""

from __future__ import annotations

import numpy as np

from matgnn.outputs import Output


def entropy(probability: np.ndarray, axis: int = -1) -> np.ndarray:
    """Shannon entropy in nats along ``axis`` (``0 log 0 = 0``)."""
    p = np.clip(probability, 0.0, 1.0)
    return -(p * np.log(np.where(p > 0, p, 1.0))).sum(axis=axis)


def regression_summary(means: np.ndarray, variances: np.ndarray) -> dict[str, np.ndarray]:
    """The regression summary of draws' means and aleatoric variances ``[S, rows, ...]``."""
    aleatoric = np.sqrt(np.asarray(variances, dtype=float).mean(axis=0))
    epistemic = np.asarray(means, dtype=float).std(axis=0)
    return {
        "mean": np.asarray(means, dtype=float).mean(axis=0),
        "std": np.sqrt(aleatoric**2 + epistemic**2),
        "aleatoric_std": aleatoric,
        "epistemic_std": epistemic,
    }


def class_summary(draws: np.ndarray) -> dict[str, np.ndarray]:
    """The classification summary of probability draws ``[S, rows, C]``."""
    probability = draws.mean(axis=0)
    total = entropy(probability)
    expected = entropy(draws).mean(axis=0)
    return {
        "probability": probability,
        "entropy": total,
        "mutual_information": np.clip(total - expected, 0.0, None),
    }


def summarize(output: Output, draws: np.ndarray) -> dict[str, np.ndarray]:
    """The summary fields of ``output`` from its draws ``[S, rows, ...]`` (the output's own
    :meth:`~matgnn.outputs.Output.summarize_draws`)."""
    return output.summarize_draws(draws)
