"""Recalibration fitted on the validation split, one parameter per output.

* Regression: std scaling (Levi et al. 2022, "Evaluating and calibrating uncertainty
  prediction in regression tasks"; Kuleshov et al. 2018 for the idea): every predicted std is
  multiplied by ``s``. The ``s`` that minimises the Gaussian NLL on the validation split has
  the closed form ``s² = mean(((y - mean) / std)²)``, over the values with a std above 0 (a
  tensor component that symmetry fixes has none, whatever the estimator).
* Classification: temperature scaling (Guo et al., ICML 2017) of the averaged probabilities,
  ``p_T ∝ p̄^(1/T)`` (for one draw the same as dividing the logits by ``T``); ``T`` minimises
  their NLL on the validation split. Pool, then calibrate (Rahaman & Thiery, NeurIPS 2021:
  calibrating the members of an ensemble before pooling them leaves the pool miscalibrated);
  it keeps the most probable class, so accuracy does not change. The entropy is that of the
  calibrated probabilities; the mutual information stays that of the draws.

* Regression intervals: split-conformal prediction (Vovk et al. 2005; Lei et al., JASA 2018),
  normalised by the calibrated std. A validation row (a crystal; an atom for a per-atom
  output) scores the largest ``|y - mean| / std`` over its components, so the interval holds
  the whole row (every bin of a spectrum, every component of a tensor) at once. With ``n``
  validation rows and nominal coverage ``c``, the half-width is the ``ceil((n + 1) c)``-th
  smallest score, so that for a new row exchangeable with the validation ones
  ``c <= P(every component in mean +- half_width std) < c + 1 / (n + 1)`` (the upper bound
  holds when the scores have no ties). Which crystals are exchangeable with the validation
  split is the user's question: the guarantee is for a random split, not for crystals unlike
  the training data.

  Two other interval kinds (``uncertainty.interval``), both on the calibrated std:

  - ``quantile``: conformalised quantiles (CQR, Romano, Patterson & Candes, NeurIPS 2019) of
    the Gaussian band ``mean -+ z std``, ``z`` the normal quantile of the coverage: a row
    scores ``max(lower - y, y - upper)`` over its components, and the band is widened (or
    narrowed, for a negative ``q``) by the same rank of those scores, ``[lower - q, upper + q]``:
    an additive correction, the same guarantee.
  - ``isotonic``: recalibration of the predicted distribution (Kuleshov, Fenner & Ermon, ICML
    2018): the isotonic map from expected to observed probability, fitted on the validation
    values ``Phi((y - mean) / std)``, is their empirical distribution function, so the central
    interval of coverage ``c`` is ``mean + z_lo std .. mean + z_hi std`` with ``z_lo``, ``z_hi``
    the ``(1 -+ c) / 2`` quantiles of the validation ``(y - mean) / std`` (pooled over
    components with a std above 0). No finite-sample guarantee, and asymmetric when the
    errors are.

A calibration is a plain dict ``{output name: {"std_scale": s[, "conformal": {"coverage": c,
"kind": "normalized" | "quantile", "half_width": q, "scores": n}] [, "isotonic": {"coverage":
c, "z_lower": zl, "z_upper": zu, "values": n}]} | {"temperature": T}}``, which is how a
checkpoint stores it (``checkpoint["uncertainty"]["calibration"]``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.optimize import minimize_scalar

#: probabilities are clipped to this before a log (an exact 0 would make the NLL infinite)
PROBABILITY_FLOOR = 1e-12


def fit_std_scale(mean: np.ndarray, std: np.ndarray, target: np.ndarray) -> float:
    """``s`` minimising the Gaussian NLL of ``N(mean, (s std)²)`` over every value."""
    mean, std, target = (np.asarray(a, dtype=float).reshape(-1) for a in (mean, std, target))
    spread = std > 0  # a component fixed by symmetry (e.g. zero by equivariance) has std 0
    if not spread.any():
        raise ValueError(
            f"cannot calibrate: all {std.size} predicted stds are 0 (a single deterministic "
            "model has no spread; use an ensemble, mc_dropout or mean_variance)"
        )
    z = (target[spread] - mean[spread]) / std[spread]
    return float(np.sqrt(np.mean(z**2)))


def conformal_scores(mean: np.ndarray, std: np.ndarray, target: np.ndarray) -> np.ndarray:
    """One nonconformity score per row (a crystal, or an atom for a per-atom output): the
    largest ``|target - mean| / std`` over the row's components with a std above 0, so that an
    interval of half-width ``q std`` holds the whole row exactly when the score is at most
    ``q``. Rows whose every std is 0 have no score."""
    mean, std, target = (np.asarray(a, dtype=float) for a in (mean, std, target))
    rows = len(mean)
    mean, std, target = (a.reshape(rows, -1) for a in (mean, std, target))
    spread = std > 0
    ratio = np.where(spread, np.abs(target - mean) / np.where(spread, std, 1.0), -np.inf)
    scores = ratio.max(axis=1)
    return scores[spread.any(axis=1)]


def conformal_rank(n: int, coverage: float) -> int:
    """``ceil((n + 1) coverage)``, robust to the float error of the product (0.68 x 75 is
    51.00000000000001 in floating point, and 51 is the rank)."""
    return int(np.ceil((n + 1) * coverage - 1e-9))


def conformal_minimum(coverage: float) -> int:
    """The fewest scores for which the rank of ``coverage`` exists (``rank <= n``)."""
    return next(n for n in range(1, 10**7) if conformal_rank(n, coverage) <= n)


def check_conformal_request(coverage: float, outputs: Sequence | None = None) -> None:
    """Refuse a coverage outside (0, 1), and ``outputs`` (when given) of which none supports
    conformal intervals (``Output.supports_conformal``: classes keep temperature scaling)."""
    if not 0.0 < coverage < 1.0:
        raise ValueError(f"conformal coverage must lie strictly between 0 and 1, got {coverage}")
    if outputs is not None and not any(o.supports_conformal for o in outputs):
        raise ValueError(
            f"conformal intervals (coverage={coverage}) need a regression output; the outputs "
            f"are {[o.name for o in outputs]} (classes keep temperature scaling)"
        )


def conformal_half_width(
    mean: np.ndarray, std: np.ndarray, target: np.ndarray, coverage: float
) -> tuple[float, int]:
    """The split-conformal half-width ``q`` in units of ``std``: the
    ``ceil((n + 1) coverage)``-th smallest of the ``n`` row scores (:func:`conformal_scores`);
    returns ``(q, n)``. Too few rows for the coverage asked is an error that says how many are
    needed."""
    check_conformal_request(coverage)
    return _ranked(conformal_scores(mean, std, target), coverage)


#: the interval kinds a regression calibration can add (``uncertainty.interval``)
INTERVALS = ("normalized", "quantile", "isotonic")


def check_interval(interval: str) -> None:
    if interval not in INTERVALS:
        raise ValueError(f"uncertainty.interval must be one of {INTERVALS}, got {interval!r}")


def _rows(*arrays: np.ndarray) -> list[np.ndarray]:
    arrays = [np.asarray(a, dtype=float) for a in arrays]
    return [a.reshape(len(arrays[0]), -1) for a in arrays]


def _ranked(scores: np.ndarray, coverage: float) -> tuple[float, int]:
    """The ``ceil((n + 1) coverage)``-th smallest score and ``n``; too few is an error."""
    scores = np.sort(scores)
    n = scores.size
    rank = conformal_rank(n, coverage)
    if rank > n:
        raise ValueError(
            f"conformal coverage {coverage} needs at least {conformal_minimum(coverage)} "
            f"validation rows with a std above 0, and there are {n}: lower the coverage or "
            "enlarge the validation split"
        )
    return float(scores[rank - 1]), n


def normal_quantile(coverage: float) -> float:
    """``z`` with ``P(|N(0, 1)| <= z) = coverage``."""
    from scipy.stats import norm

    return float(norm.ppf(0.5 + coverage / 2))


def quantile_margin(
    mean: np.ndarray, std: np.ndarray, target: np.ndarray, coverage: float
) -> tuple[float, int]:
    """Conformalised quantiles of the Gaussian band ``mean -+ z std``: the margin ``q`` (in
    target units) that ``[mean - z std - q, mean + z std + q]`` needs, and the number of rows
    scored (rows whose every std is 0 have no band)."""
    check_conformal_request(coverage)
    mean, std, target = _rows(mean, std, target)
    z = normal_quantile(coverage)
    spread = std > 0
    excess = np.maximum(mean - z * std - target, target - mean - z * std)
    scores = np.where(spread, excess, -np.inf).max(axis=1)[spread.any(axis=1)]
    return _ranked(scores, coverage)


def isotonic_bounds(
    mean: np.ndarray, std: np.ndarray, target: np.ndarray, coverage: float
) -> tuple[float, float, int]:
    """``(z_lower, z_upper, n)``: the ``(1 -+ coverage) / 2`` empirical quantiles of the
    ``n`` validation values ``(y - mean) / std`` with a std above 0."""
    check_conformal_request(coverage)
    mean, std, target = (np.asarray(a, dtype=float).reshape(-1) for a in (mean, std, target))
    spread = std > 0
    z = (target[spread] - mean[spread]) / std[spread]
    if z.size < 2:
        raise ValueError(
            f"isotonic intervals need at least 2 values with a std above 0, got {z.size}"
        )
    low, high = np.quantile(z, [(1 - coverage) / 2, (1 + coverage) / 2])
    return float(low), float(high), int(z.size)


def temper(draws: np.ndarray, temperature: float) -> np.ndarray:
    """Probabilities ``[..., C]`` raised to ``1/T`` and renormalised."""
    logp = np.log(np.clip(draws, PROBABILITY_FLOOR, 1.0)) / temperature
    logp -= logp.max(axis=-1, keepdims=True)
    p = np.exp(logp)
    return p / p.sum(axis=-1, keepdims=True)


def class_nll(probability: np.ndarray, labels: np.ndarray) -> float:
    """Mean negative log-likelihood of integer ``labels`` under ``probability [M, C]``."""
    chosen = probability[np.arange(len(labels)), np.asarray(labels, dtype=int)]
    return float(-np.log(np.clip(chosen, PROBABILITY_FLOOR, 1.0)).mean())


#: the search interval of the temperature
TEMPERATURE_BOUNDS = (0.01, 100.0)


def fit_temperature(probability: np.ndarray, labels: np.ndarray) -> float:
    """``T`` in :data:`TEMPERATURE_BOUNDS` minimising the NLL of ``probability [M, C]``
    tempered (a bound is returned when the optimum lies beyond it)."""
    low, high = np.log(TEMPERATURE_BOUNDS)
    result = minimize_scalar(
        lambda log_t: class_nll(temper(probability, float(np.exp(log_t))), labels),
        bounds=(low, high),
        method="bounded",
    )
    return float(np.exp(result.x))
