"""Split-conformal intervals (:func:`matgnn.uncertainty.calibration.conformal_half_width` and
what a regression output does with it): known answers on synthetic data."""

from __future__ import annotations

import types

import numpy as np
import pytest

from matgnn.outputs import ClassOutput, ScalarOutput, TensorOutput
from matgnn.uncertainty.calibration import (
    conformal_half_width,
    conformal_rank,
    isotonic_bounds,
    normal_quantile,
    quantile_margin,
)
from matgnn.uncertainty.model import UncertainModel


def test_half_width_is_the_finite_sample_order_statistic():
    # scores 1, 2, ..., 9: coverage 0.8 takes the ceil(10 * 0.8) = 8th smallest
    target = np.arange(1.0, 10.0)
    q, n = conformal_half_width(np.zeros(9), np.ones(9), target, 0.8)
    assert (q, n) == (8.0, 9)
    # the std normalises the score, and a std of 0 (no spread) is not a score
    q, n = conformal_half_width(
        np.zeros(4), np.array([2.0, 2.0, 2.0, 0.0]), [2.0, 4.0, 6.0, 9.0], 0.5
    )
    assert (q, n) == (2.0, 3)


def test_too_few_validation_values_for_the_coverage_are_refused_in_words():
    with pytest.raises(ValueError, match=r"needs at least 19 validation rows.*there are 10"):
        conformal_half_width(np.zeros(10), np.ones(10), np.ones(10), 0.95)
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        conformal_half_width(np.zeros(10), np.ones(10), np.ones(10), 1.0)


def test_coverage_on_exchangeable_data_lies_within_the_finite_sample_bounds():
    """Heavy-tailed, heteroscedastic noise whose std the model gets wrong by a factor 2: the
    Gaussian 80% interval of the (scaled) std misses, the conformal one covers between c and
    c + 1/(n+1) on average (Lei et al. 2018), to within the Monte Carlo error."""
    rng = np.random.default_rng(0)
    coverage, n, m, repeats = 0.8, 49, 200, 400
    conformal, gaussian = [], []
    for _ in range(repeats):
        std = rng.uniform(0.5, 2.0, n + m)
        mean = rng.normal(size=n + m)
        target = mean + 2.0 * std * rng.standard_t(df=3, size=n + m)
        q, _ = conformal_half_width(mean[:n], std[:n], target[:n], coverage)
        error = np.abs(target[n:] - mean[n:])
        conformal.append(np.mean(error <= q * std[n:]))
        scale = np.sqrt(np.mean(((target[:n] - mean[:n]) / std[:n]) ** 2))
        gaussian.append(np.mean(error <= 1.2816 * scale * std[n:]))  # z of 80%
    mc_error = 3 * np.std(conformal) / np.sqrt(repeats)
    assert coverage - mc_error <= np.mean(conformal) <= coverage + 1 / (n + 1) + mc_error
    assert abs(np.mean(gaussian) - coverage) > 0.02  # the test can tell a wrong interval


def test_a_regression_output_fits_intervals_and_writes_their_columns():
    output = ScalarOutput("gap", target="gap")
    rng = np.random.default_rng(1)
    mean, std = rng.normal(size=40), rng.uniform(0.1, 1.0, 40)
    target = mean + std * rng.normal(size=40)
    summary = {"mean": mean, "std": std, "aleatoric_std": std, "epistemic_std": 0 * std}
    parameters = output.fit_calibration(summary, target, coverage=0.9)
    assert set(parameters) == {"std_scale", "conformal"}
    assert parameters["conformal"]["coverage"] == 0.9 and parameters["conformal"]["scores"] == 40
    calibrated = output.calibrated(summary, parameters)
    width = parameters["conformal"]["half_width"] * std * parameters["std_scale"]
    np.testing.assert_allclose(calibrated["upper"] - calibrated["lower"], 2 * width)
    assert np.mean((target >= calibrated["lower"]) & (target <= calibrated["upper"])) >= 0.9
    columns = output.uncertainty_columns(calibrated)
    assert {"lower_gap", "upper_gap", "predicted_gap", "std_gap"} <= set(columns)
    metrics = output.uncertainty_metrics(calibrated, target)
    assert metrics["interval_coverage"] >= 0.9 and metrics["interval_width"] > 0
    # without a coverage: std scaling only, no interval columns
    plain = output.calibrated(summary, output.fit_calibration(summary, target))
    assert "lower" not in plain and "lower_gap" not in output.uncertainty_columns(plain)


def test_conformal_intervals_need_a_regression_output():
    classes = types.SimpleNamespace(outputs=(ClassOutput("is_metal", target="is_metal"),))
    with pytest.raises(ValueError, match="need a regression output"):
        UncertainModel(classes).calibrate([object()], coverage=0.9)


def test_the_rank_survives_floating_point_products():
    assert conformal_rank(74, 0.68) == 51  # 75 x 0.68 = 51.00000000000001 in floating point
    assert conformal_rank(9, 0.9) == 9 and conformal_rank(8, 0.9) == 9


def test_a_tensor_interval_holds_every_component_of_a_crystal_at_once():
    """One score per crystal (the largest over its components with a std above 0): the
    intervals then cover whole tensors with the nominal probability; a component that symmetry
    fixes (std 0) neither scores nor counts against the coverage."""
    rng = np.random.default_rng(2)
    output = TensorOutput("eps", target="eps")
    rows, n = 2000, 1000
    mean = rng.normal(size=(rows, 3, 3))
    std = rng.uniform(0.2, 1.0, (rows, 3, 3))
    std[:, 0, 1] = 0.0  # fixed by symmetry: predicted exactly
    target = mean + std * rng.normal(size=(rows, 3, 3))
    target[:, 0, 1] = mean[:, 0, 1]
    summary = {"mean": mean[:n], "std": std[:n], "aleatoric_std": std[:n],
               "epistemic_std": 0 * std[:n]}  # fmt: skip
    parameters = output.fit_calibration(summary, target[:n], coverage=0.8)
    assert parameters["conformal"]["scores"] == n  # crystals, not components
    test = {"mean": mean[n:], "std": std[n:], "aleatoric_std": std[n:],
            "epistemic_std": 0 * std[n:]}  # fmt: skip
    calibrated = output.calibrated(test, parameters)
    metrics = output.uncertainty_metrics(calibrated, target[n:])
    whole = np.all((target[n:] >= calibrated["lower"]) & (target[n:] <= calibrated["upper"]),
                   axis=(1, 2))  # fmt: skip
    assert metrics["interval_coverage"] == pytest.approx(whole.mean())
    assert 0.75 <= metrics["interval_coverage"] <= 0.85  # 0.8, within 3 sampling sd
    assert {"lower_eps_xx", "upper_eps_zz"} <= set(output.uncertainty_columns(calibrated))


# --- conformalised quantiles and isotonic intervals -----------------------------------------
def test_quantile_margin_is_the_finite_sample_order_statistic_of_the_band_excess():
    # mean 0, std 1: the 80% Gaussian band is -+1.2816; targets 1..9 exceed its upper edge by
    # y - 1.2816, and the ceil(10 x 0.8) = 8th smallest excess is 8 - 1.2816
    z = normal_quantile(0.8)
    assert z == pytest.approx(1.2815516)
    q, n = quantile_margin(np.zeros(9), np.ones(9), np.arange(1.0, 10.0), 0.8)
    assert (q, n) == (pytest.approx(8.0 - z), 9)
    # a band wider than every error gives a negative margin: the interval narrows
    q, _ = quantile_margin(np.zeros(9), np.full(9, 10.0), np.arange(1.0, 10.0), 0.8)
    assert q == pytest.approx(8.0 - 10.0 * z)


def test_conformalised_quantiles_cover_exchangeable_data_within_the_bounds():
    rng = np.random.default_rng(2)
    coverage, n, m, repeats = 0.8, 49, 200, 400
    covered = []
    for _ in range(repeats):
        std = rng.uniform(0.5, 2.0, n + m)
        mean = rng.normal(size=n + m)
        target = mean + 2.0 * std * rng.standard_t(df=3, size=n + m)
        q, _ = quantile_margin(mean[:n], std[:n], target[:n], coverage)
        band = normal_quantile(coverage) * std[n:] + q
        covered.append(np.mean(np.abs(target[n:] - mean[n:]) <= band))
    mc_error = 3 * np.std(covered) / np.sqrt(repeats)
    assert coverage - mc_error <= np.mean(covered) <= coverage + 1 / (n + 1) + mc_error


def test_isotonic_bounds_are_the_quantiles_of_the_standardised_errors():
    rng = np.random.default_rng(3)
    mean, std = rng.normal(size=500), rng.uniform(0.5, 2.0, 500)
    z = rng.gamma(2.0, size=500) - 2.0  # skewed: an asymmetric interval
    low, high, n = isotonic_bounds(mean, std, mean + std * z, 0.9)
    assert n == 500
    assert (low, high) == (pytest.approx(np.quantile(z, 0.05)), pytest.approx(np.quantile(z, 0.95)))
    assert abs(low) < abs(high)


@pytest.mark.parametrize("interval", ["quantile", "isotonic"])
def test_a_regression_output_fits_the_other_interval_kinds(interval):
    output = ScalarOutput("gap", target="gap")
    rng = np.random.default_rng(4)
    mean, std = rng.normal(size=400), rng.uniform(0.1, 1.0, 400)
    target = mean + std * rng.normal(size=400)
    summary = {"mean": mean, "std": std, "aleatoric_std": std, "epistemic_std": 0 * std}
    parameters = output.fit_calibration(summary, target, coverage=0.9, interval=interval)
    assert set(parameters) == {"std_scale", "conformal" if interval == "quantile" else interval}
    calibrated = output.calibrated(summary, parameters)
    assert np.all(calibrated["lower"] < calibrated["mean"])
    assert np.all(calibrated["upper"] > calibrated["mean"])
    inside = np.mean((target >= calibrated["lower"]) & (target <= calibrated["upper"]))
    assert inside == pytest.approx(0.9, abs=0.02)  # in sample, 400 values
    with pytest.raises(ValueError, match=r"uncertainty\.interval must be one of"):
        output.fit_calibration(summary, target, coverage=0.9, interval="bootstrap")


def test_a_negative_quantile_margin_never_flips_the_interval():
    output = ScalarOutput("gap", target="gap")
    summary = {"mean": np.zeros(3), "std": np.array([0.01, 1.0, 0.0])}
    summary |= {"aleatoric_std": summary["std"], "epistemic_std": 0 * summary["std"]}
    margin = {"coverage": 0.9, "kind": "quantile", "half_width": -0.5, "scores": 40}
    calibrated = output.calibrated(summary, {"std_scale": 1.0, "conformal": margin})
    band = normal_quantile(0.9) * 1.0 - 0.5
    np.testing.assert_allclose(calibrated["upper"], [0.0, band, 0.0])
    assert np.all(calibrated["lower"] <= calibrated["upper"])


def test_a_conformal_calibration_stored_before_interval_kinds_is_normalized():
    output = ScalarOutput("gap", target="gap")
    summary = {"mean": np.zeros(2), "std": np.ones(2), "aleatoric_std": np.ones(2),
               "epistemic_std": np.zeros(2)}  # fmt: skip
    old = {"std_scale": 2.0, "conformal": {"coverage": 0.9, "half_width": 1.5, "scores": 40}}
    calibrated = output.calibrated(summary, old)
    np.testing.assert_allclose(calibrated["upper"], [3.0, 3.0])  # 1.5 x the scaled std 2
