"""Quantities derived from a phonon density of states on a frequency grid (cm^-1), as Chen et
al., Adv. Sci. 8, 2004214 (2021) compare them: average phonon frequency, constant-volume heat
capacity (harmonic), and the Wasserstein distance between two DOS.

Every function takes the grid ``[K]`` and one DOS ``[K]`` or a batch ``[B, K]`` (any
normalisation: each DOS is normalised to unit area on the grid first).

The heat capacity is the one pymatgen's :meth:`pymatgen.phonon.dos.PhononDos.cv` computes
(frequencies in THz, J/(K mol) per mole of cells, so a DOS normalised to ``3`` modes gives it per
mole of atoms), with two differences kept on purpose: a whole ``[B, K]`` batch at once (the
benchmark tables score hundreds of predicted DOS; pymatgen takes one DOS per call, see
``benchmarks/physics_helpers.py``), and each grid point weighted equally, as Chen et al. treat
the 51 bins, where pymatgen integrates with the trapezoid rule (half weight on the two end
points; on the shipped DOS, which are often non-zero at 0 cm^-1, that moves C_V(300 K) by up to
0.24 J/(mol K)). ``tests/outputs/test_phonons.py`` checks it against ``PhononDos.cv`` on the
shipped real DOS.
"""

from __future__ import annotations

import numpy as np

#: R in J/(mol K)
GAS_CONSTANT = 8.314462618
#: h c / k_B in cm K: x = hc nu / (k_B T) = SECOND_RADIATION_CONSTANT * nu[cm^-1] / T[K]
SECOND_RADIATION_CONSTANT = 1.438776877


def _weights(grid: np.ndarray, dos: np.ndarray) -> np.ndarray:
    """Each DOS as weights on the grid points (non-negative, summing to 1) ``[B, K]``."""
    dos = np.clip(np.atleast_2d(np.asarray(dos, dtype=float)), 0.0, None)
    if dos.shape[-1] != len(grid):
        raise ValueError(f"a DOS of {dos.shape[-1]} bins on a grid of {len(grid)} points")
    total = dos.sum(axis=-1, keepdims=True)
    if np.any(total <= 0):
        raise ValueError("a DOS that is zero everywhere has no normalisation")
    return dos / total


def average_frequency(grid: np.ndarray, dos: np.ndarray) -> np.ndarray:
    """Mean frequency of the DOS, ``sum(w g) / sum(g)`` (units of the grid) ``[B]``."""
    return _weights(grid, dos) @ np.asarray(grid, dtype=float)


def einstein_function(x: np.ndarray) -> np.ndarray:
    """``x^2 e^x / (e^x - 1)^2``: heat capacity of one harmonic mode in units of k_B (1 at x=0)."""
    x = np.asarray(x, dtype=float)
    small = np.abs(x) < 1e-6
    safe = np.where(small, 1.0, x)
    with np.errstate(over="ignore"):
        value = safe**2 * np.exp(-safe) / (-np.expm1(-safe)) ** 2
    return np.where(small, 1.0 - x**2 / 12.0, value)


def heat_capacity(grid: np.ndarray, dos: np.ndarray, temperature: float = 300.0) -> np.ndarray:
    """Harmonic constant-volume heat capacity in J/(mol K) per mole of atoms ``[B]``: three modes
    per atom, distributed as the DOS, ``3 R sum_w g(w) E(hcw / k_B T)`` (3R = 24.94 at high T).

    Zero-frequency points contribute their classical k_B (E(0) = 1).
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    x = SECOND_RADIATION_CONSTANT * np.asarray(grid, dtype=float) / temperature
    return 3.0 * GAS_CONSTANT * (_weights(grid, dos) @ einstein_function(x))


def wasserstein_distance(grid: np.ndarray, dos_a: np.ndarray, dos_b: np.ndarray) -> np.ndarray:
    """Wasserstein-1 distance between two DOS (each normalised to unit area), in the units of
    the grid ``[B]``: the integral of the absolute difference of their cumulative sums. The grid
    must be uniform."""
    grid = np.asarray(grid, dtype=float)
    steps = np.diff(grid)
    if not np.allclose(steps, steps[0]):
        raise ValueError("wasserstein_distance needs a uniform grid")
    cumulative = np.cumsum(_weights(grid, dos_a) - _weights(grid, dos_b), axis=-1)
    return np.abs(cumulative[..., :-1]).sum(axis=-1) * steps[0]
