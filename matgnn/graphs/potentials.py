"""Infinite lattice sums of pair potentials for PotNet.

Lin et al., "Efficient Approximations of Complete Interatomic Potentials for Crystal Property
Prediction", ICML 2023. For each atom pair (i, j) PotNet uses

    S_V(r) = sum over lattice translations k of V(|r + k L|),   r = x_j - x_i,

(the k = 0 term left out when i == j) for Coulomb V = 1/d, London V = 1/d^6 and Pauli
V = exp(-alpha d).

Inverse powers are evaluated with an Ewald-type split of the integral representation
``d^-p = Gamma(s)^-1 * int_0^inf t^(s-1) exp(-d^2 t) dt`` (s = p/2) at t = eta^2:

* real space, t > eta^2:  sum_k Q(s, eta^2 d_k^2) / d_k^p  (Q: regularised upper incomplete gamma)
* reciprocal space, t < eta^2, after Poisson summation over the lattice:
  pi^(3/2) / (V Gamma(s)) * sum_{G != 0} cos(G.r) (G^2/4)^(s-3/2) Gamma(3/2 - s, G^2 / (4 eta^2))
* the G = 0 term: pi^(3/2) eta^(2s-3) / (V Gamma(s) (s - 3/2)). For p > 3 it is the finite
  reciprocal-space term. For p < 3 (Coulomb) the sum is only conditionally convergent; we use
  the **neutralising-background convention**: the divergent G = 0 term is dropped and the
  background's real-space part (the same expression, negative for s < 3/2) is added, which
  makes the result independent of eta. For Coulomb this is the textbook Ewald potential
  ``sum erfc(eta d)/d + 4 pi/V sum_{G!=0} exp(-G^2/4eta^2) cos(G.r)/G^2 - pi/(V eta^2)``.
  p = 3 diverges logarithmically and is rejected.
* i == j: the k = 0 term's reciprocal share, eta^p / Gamma(s + 1), is subtracted.

Pauli terms decay exponentially and are summed directly over a sphere large enough that the
neglected tail (bounded by its continuum integral) is below the tolerance.

The slow references (:func:`direct_lattice_sum`) sum images over growing spheres; the tests
compare against them. Everything is vectorised numpy; no GSL, no compiled code.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from scipy.special import erfc, exp1, gamma, gammaincc

_SELF_TOL = 1e-10
_CHUNK_ELEMENTS = 4_000_000


def upper_gamma(a: float, x: np.ndarray) -> np.ndarray:
    """Non-regularised upper incomplete gamma Gamma(a, x) for any real a and x > 0."""
    if a > 0:
        return gammaincc(a, x) * gamma(a)
    if a == 0:
        return exp1(x)
    return (upper_gamma(a + 1.0, x) - x**a * np.exp(-x)) / a


def regularized_upper_gamma(s: float, x: np.ndarray) -> np.ndarray:
    """Q(s, x) = Gamma(s, x) / Gamma(s); closed forms for the Coulomb and London cases."""
    if s == 0.5:
        return erfc(np.sqrt(x))
    if s == 3.0:
        return np.exp(-x) * (1.0 + x + 0.5 * x * x)
    return gammaincc(s, x)


def lattice_points(lattice: np.ndarray, radius: float, exclude_origin: bool = False) -> np.ndarray:
    """All ``k @ lattice`` (k integer) with norm <= radius, as [K, 3]."""
    inv = np.linalg.inv(lattice)
    # |k_i| <= radius * |column i of inv(L)| bounds every point inside the sphere
    n_max = np.floor(radius * np.linalg.norm(inv, axis=0)).astype(int) + 1
    ranges = [np.arange(-n, n + 1) for n in n_max]
    ks = np.stack(np.meshgrid(*ranges, indexing="ij"), axis=-1).reshape(-1, 3)
    points = ks @ lattice
    norms = np.linalg.norm(points, axis=1)
    keep = norms <= radius
    if exclude_origin:
        keep &= np.any(ks != 0, axis=1)
    return points[keep]


def wrap_vectors(vectors: np.ndarray, lattice: np.ndarray) -> np.ndarray:
    """Shift each vector by a lattice translation into the cell centred on the origin."""
    frac = vectors @ np.linalg.inv(lattice)
    return (frac - np.round(frac)) @ lattice


def _chunks(num_rows: int, row_width: int) -> list[slice]:
    step = max(1, _CHUNK_ELEMENTS // max(row_width, 1))
    return [slice(i, min(i + step, num_rows)) for i in range(0, num_rows, step)]


def _solve_decay(f: Callable[[float], float], target: float, start: float = 1.0) -> float:
    """Smallest x (to 1%) with f(x) <= target, for f decreasing in x."""
    hi = start
    while f(hi) > target:
        hi *= 2.0
    lo = 0.0
    while hi - lo > 0.01 * hi:
        mid = 0.5 * (lo + hi)
        if f(mid) > target:
            lo = mid
        else:
            hi = mid
    return hi


def inverse_power_lattice_sum(
    vectors: np.ndarray,
    lattice: np.ndarray,
    p: float,
    rtol: float = 1e-8,
    eta: float | None = None,
) -> np.ndarray:
    """``sum_k |r + k L|^-p`` for each row r of ``vectors`` (Ewald-type split, see module doc).

    Args:
        vectors: [P, 3] pair vectors ``x_j - x_i`` in Å; a zero vector means i == j and its
            k = 0 term is left out.
        lattice: [3, 3] lattice vectors as rows.
        p: exponent (> 0, != 3); 1 is Coulomb (neutralising background), 6 London.
        rtol: target relative accuracy of each term kept (the tests check 1e-6 against
            direct sums; the truncation error is far below).
        eta: Ewald splitting parameter in 1/Å (default sqrt(pi) / V^(1/3), which balances the
            real- and reciprocal-space work); the result does not depend on it.

    Returns:
        [P] sums in Å^-p.
    """
    if p <= 0 or abs(p - 3.0) < 1e-12:
        raise ValueError(f"inverse-power lattice sum needs p > 0 and p != 3, got {p}")
    lattice = np.asarray(lattice, dtype=np.float64)
    r = wrap_vectors(np.asarray(vectors, dtype=np.float64).reshape(-1, 3), lattice)
    volume = abs(float(np.linalg.det(lattice)))
    s = 0.5 * p
    eta = eta or math.sqrt(math.pi) / volume ** (1.0 / 3.0)
    eps = min(rtol, 1e-6) * 1e-3

    # real space: Q(s, x) x^1.5 bounds the shell-summed tail
    x_max = _solve_decay(lambda x: float(gammaincc(s, x)) * max(x, 1.0) ** 1.5, eps)
    r_cut = math.sqrt(x_max) / eta
    r_max = float(np.linalg.norm(r, axis=1).max(initial=0.0))
    translations = lattice_points(lattice, r_cut + r_max)
    real = np.empty(len(r))
    for sl in _chunks(len(r), len(translations)):
        d = np.linalg.norm(r[sl, None, :] + translations[None, :, :], axis=-1)
        is_self = d < _SELF_TOL
        d_safe = np.where(is_self, 1.0, d)
        terms = regularized_upper_gamma(s, (eta * d_safe) ** 2) / d_safe**p
        real[sl] = np.where(is_self, 0.0, terms).sum(axis=1)

    # reciprocal space over half of the G != 0 vectors (cos is even)
    a = 1.5 - s
    y_max = _solve_decay(lambda y: math.exp(-y) * max(y, 1.0) ** (abs(a) + 2.5), eps)
    g_cut = 2.0 * eta * math.sqrt(y_max)
    recip_lattice = 2.0 * math.pi * np.linalg.inv(lattice).T
    g_all = lattice_points(recip_lattice, g_cut, exclude_origin=True)
    g_frac = np.rint(g_all @ np.linalg.inv(recip_lattice)).astype(int)
    first_nonzero = np.where(
        g_frac[:, 0] != 0, g_frac[:, 0], np.where(g_frac[:, 1] != 0, g_frac[:, 1], g_frac[:, 2])
    )
    g_half = g_all[first_nonzero > 0]
    g2 = np.einsum("ij,ij->i", g_half, g_half)
    prefactor = math.pi**1.5 / (volume * gamma(s))
    coeff = 2.0 * prefactor * (g2 / 4.0) ** (s - 1.5) * upper_gamma(a, g2 / (4.0 * eta**2))
    recip = np.empty(len(r))
    for sl in _chunks(len(r), len(g_half)):
        recip[sl] = np.cos(r[sl] @ g_half.T) @ coeff

    g_zero = prefactor * eta ** (2.0 * s - 3.0) / (s - 1.5)
    total = real + recip + g_zero
    is_self = np.linalg.norm(r, axis=1) < _SELF_TOL
    total[is_self] -= eta**p / gamma(s + 1.0)
    return total


def exponential_lattice_sum(
    vectors: np.ndarray, lattice: np.ndarray, alpha: float, rtol: float = 1e-8
) -> np.ndarray:
    """``sum_k exp(-alpha |r + k L|)`` (k = 0 left out for a zero vector), summed directly.

    The sphere of translations is grown until the continuum bound of the neglected tail,
    ``4 pi / V * int_R^inf d^2 exp(-alpha d) dd``, is below ``rtol`` times a lower bound of
    the smallest sum.
    """
    lattice = np.asarray(lattice, dtype=np.float64)
    r = wrap_vectors(np.asarray(vectors, dtype=np.float64).reshape(-1, 3), lattice)
    volume = abs(float(np.linalg.det(lattice)))
    norms = np.linalg.norm(r, axis=1)
    shortest = float(
        np.linalg.norm(
            lattice_points(lattice, np.linalg.norm(lattice, axis=1).min(), exclude_origin=True),
            axis=1,
        ).min()
    )
    smallest_sum = math.exp(-alpha * max(float(norms.max(initial=0.0)), shortest))

    def tail(radius: float) -> float:
        poly = radius**2 / alpha + 2 * radius / alpha**2 + 2 / alpha**3
        return 4 * math.pi / volume * math.exp(-alpha * radius) * poly

    diameter = float(np.linalg.norm(lattice.sum(axis=0)))
    radius = _solve_decay(tail, rtol * 1e-2 * smallest_sum) + diameter
    translations = lattice_points(lattice, radius + float(norms.max(initial=0.0)))
    out = np.empty(len(r))
    for sl in _chunks(len(r), len(translations)):
        d = np.linalg.norm(r[sl, None, :] + translations[None, :, :], axis=-1)
        out[sl] = np.where(d < _SELF_TOL, 0.0, np.exp(-alpha * d)).sum(axis=1)
    return out


def direct_lattice_sum(
    vectors: np.ndarray,
    lattice: np.ndarray,
    potential: Callable[[np.ndarray], np.ndarray],
    radius: float,
    weight: Callable[[np.ndarray], np.ndarray] | None = None,
) -> np.ndarray:
    """Slow reference: ``sum_{|kL| <= radius} w(|kL|) V(|r + kL|)`` without wrapping ``r``.

    A sphere of translations centred on the origin, optionally with a smooth weight ``w``
    (Gaussian smoothing makes conditionally convergent Coulomb differences converge fast).
    """
    lattice = np.asarray(lattice, dtype=np.float64)
    r = np.asarray(vectors, dtype=np.float64).reshape(-1, 3)
    translations = lattice_points(lattice, radius)
    w = weight(np.linalg.norm(translations, axis=1)) if weight is not None else None
    out = np.empty(len(r))
    for sl in _chunks(len(r), len(translations)):
        d = np.linalg.norm(r[sl, None, :] + translations[None, :, :], axis=-1)
        is_self = d < _SELF_TOL
        values = np.where(is_self, 0.0, potential(np.where(is_self, 1.0, d)))
        out[sl] = (values * w).sum(axis=1) if w is not None else values.sum(axis=1)
    return out


_POTENTIALS: dict[str, Callable[[np.ndarray, np.ndarray, float, float], np.ndarray]] = {
    "coulomb": lambda v, lat, alpha, rtol: inverse_power_lattice_sum(v, lat, 1.0, rtol),
    "london": lambda v, lat, alpha, rtol: inverse_power_lattice_sum(v, lat, 6.0, rtol),
    "pauli": lambda v, lat, alpha, rtol: exponential_lattice_sum(v, lat, alpha, rtol),
}


def pair_potential_sums(
    cart: np.ndarray,
    lattice: np.ndarray,
    names: tuple[str, ...],
    pauli_alpha: float = 3.0,
    rtol: float = 1e-8,
) -> tuple[np.ndarray, np.ndarray]:
    """PotNet pairs: all ordered pairs (j -> i), i == j included, and their lattice sums.

    Returns:
        ``pot_edge_index`` [2, N^2] (src j, dst i; i-major) and ``potential_sums`` [N^2, K]
        with columns in the order of ``names``.
    """
    n = cart.shape[0]
    dst = np.repeat(np.arange(n, dtype=np.int64), n)
    src = np.tile(np.arange(n, dtype=np.int64), n)
    # S(r) = S(-r): evaluate the pairs i <= j once and mirror them
    upper_i, upper_j = np.triu_indices(n)
    vectors = cart[upper_j] - cart[upper_i]
    sums = np.zeros((n, n, len(names)))
    for k, name in enumerate(names):
        values = _POTENTIALS[name](vectors, lattice, pauli_alpha, rtol)
        sums[upper_i, upper_j, k] = values
        sums[upper_j, upper_i, k] = values
    return np.stack([src, dst]), sums.reshape(n * n, len(names))
