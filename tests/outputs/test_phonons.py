"""Quantities derived from a phonon DOS, against closed forms: Einstein solid heat capacity,
Dulong-Petit and low-temperature limits, a shifted DOS's Wasserstein distance (also against
scipy's), the average frequency of a symmetric DOS."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import wasserstein_distance as scipy_wasserstein

from matgnn.phonons import (
    GAS_CONSTANT,
    average_frequency,
    einstein_function,
    heat_capacity,
    wasserstein_distance,
)

GRID = np.linspace(0.0, 1000.0, 51)  # Chen et al.'s grid, cm^-1


def peak(k: int) -> np.ndarray:
    dos = np.zeros(51)
    dos[k] = 1.0
    return dos


def test_einstein_solid_heat_capacity():
    # one frequency, 300 cm^-1 (bin 15): Cv = 3R E(theta_E / T), theta_E = 1.4388 * 300 K
    for temperature in (50.0, 300.0, 1000.0):
        x = 1.438776877 * 300.0 / temperature
        expected = 3 * GAS_CONSTANT * x**2 * np.exp(x) / (np.exp(x) - 1) ** 2
        assert heat_capacity(GRID, peak(15), temperature)[0] == pytest.approx(expected, rel=1e-10)


def test_heat_capacity_limits_and_normalisation():
    dos = np.exp(-(((GRID - 400) / 150) ** 2))
    assert heat_capacity(GRID, dos, 1e6)[0] == pytest.approx(3 * GAS_CONSTANT, rel=1e-6)
    assert heat_capacity(GRID, dos * 7.0, 300.0) == pytest.approx(heat_capacity(GRID, dos, 300.0))
    assert heat_capacity(GRID, peak(40), 5.0)[0] < 1e-40
    assert einstein_function(np.array([0.0, 1e-8]))[0] == 1.0
    with pytest.raises(ValueError, match="temperature must be positive"):
        heat_capacity(GRID, dos, 0.0)
    with pytest.raises(ValueError, match="zero everywhere"):
        heat_capacity(GRID, np.zeros(51), 300.0)


def test_wasserstein_distance_of_a_shift_and_against_scipy():
    assert wasserstein_distance(GRID, peak(10), peak(13))[0] == pytest.approx(60.0)
    rng = np.random.default_rng(0)
    a, b = rng.random((2, 4, 51))
    ours = wasserstein_distance(GRID, a, b)
    theirs = [scipy_wasserstein(GRID, GRID, x, y) for x, y in zip(a, b, strict=True)]
    np.testing.assert_allclose(ours, theirs, rtol=1e-10)
    with pytest.raises(ValueError, match="uniform grid"):
        wasserstein_distance(GRID**2, a, b)


def test_average_frequency():
    dos = np.exp(-(((GRID - 500) / 100) ** 2))
    assert average_frequency(GRID, dos)[0] == pytest.approx(500.0)
    assert average_frequency(GRID, np.stack([peak(5), peak(20)])) == pytest.approx([100, 400])
    with pytest.raises(ValueError, match="51 bins on a grid of 50"):
        average_frequency(GRID[:50], dos)
