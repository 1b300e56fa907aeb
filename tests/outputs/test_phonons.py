"""Quantities derived from a phonon DOS, against closed forms: Einstein solid heat capacity,
Dulong-Petit and low-temperature limits, a shifted DOS's Wasserstein distance (also against
scipy's), the average frequency of a symmetric DOS; the batched heat capacity against pymatgen's
PhononDos.cv on the 400 shipped real DOS of Chen et al."""

from __future__ import annotations

import numpy as np
import pytest
from pymatgen.phonon.dos import PhononDos
from scipy.constants import c as SPEED_OF_LIGHT
from scipy.stats import wasserstein_distance as scipy_wasserstein

from matgnn.analysis.phonons import (
    GAS_CONSTANT,
    average_frequency,
    einstein_function,
    heat_capacity,
    wasserstein_distance,
)
from matgnn.data.sources.phonon import FREQUENCIES_CM, phonon_dos_sample

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


@pytest.fixture(scope="module")
def real_dos():
    return phonon_dos_sample().targets["phdos"]


@pytest.mark.parametrize("temperature", [30.0, 300.0, 1000.0])
def test_heat_capacity_matches_pymatgen_on_real_dos(real_dos, temperature):
    """pymatgen integrates g(nu) over THz with the trapezoid rule and returns J/(K mol) per mole
    of cells: a DOS normalised to 3 modes gives it per mole of atoms. Our sum weighs every grid
    point equally, which is the trapezoid rule with the two end densities doubled (a uniform
    grid); with that, the two agree to 1e-9 relative, the rounding of our hc/k_B (1.438776877 cm K,
    exact 1.4387768775...) against scipy's. Plain ``cv`` (the end points at half weight) differs
    by up to 0.24 J/(mol K) at 300 K on these DOS, 200 of which are non-zero at 0 cm^-1."""
    dos = real_dos
    thz = FREQUENCIES_CM * SPEED_OF_LIGHT * 100 / 1e12
    ours = heat_capacity(FREQUENCIES_CM, dos, temperature)
    ends_doubled, plain = [], []
    for g in dos:
        doubled = g.copy()
        doubled[[0, -1]] *= 2
        for out, d in ((ends_doubled, doubled), (plain, g)):
            out.append(PhononDos(thz, 3 * d / np.trapezoid(d, thz)).cv(temperature))
    np.testing.assert_allclose(ours, ends_doubled, rtol=1e-8)
    if temperature == 300.0:  # the temperature of Chen et al.'s table
        assert 0.2 < np.abs(ours - np.array(plain)).max() < 0.3
