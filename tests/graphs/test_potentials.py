"""PotNet lattice sums against slow direct sums over growing spheres of images."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from matgnn.graphs import GraphConfig, build_graph
from matgnn.graphs.potentials import (
    direct_lattice_sum,
    exponential_lattice_sum,
    inverse_power_lattice_sum,
    pair_potential_sums,
)

TRICLINIC = np.array([[4.0, 0.0, 0.0], [1.2, 3.7, 0.0], [0.7, -0.9, 5.1]])
VOLUME = abs(np.linalg.det(TRICLINIC))


@pytest.fixture(scope="module")
def vectors() -> np.ndarray:
    v = np.random.default_rng(0).normal(size=(6, 3)) * 2.0
    v[0] = 0.0  # an atom paired with itself: k = 0 left out
    return v


def test_london_converges_to_direct_sum(vectors) -> None:
    """Absolutely convergent: the sphere sum plus its continuum tail 4 pi / (3 V R^3)."""
    ewald = inverse_power_lattice_sum(vectors, TRICLINIC, 6.0)
    errors = []
    for radius in (20.0, 40.0, 80.0):
        direct = direct_lattice_sum(vectors, TRICLINIC, lambda d: d**-6.0, radius)
        tail = 4 * math.pi / (3 * VOLUME * radius**3)
        errors.append(np.abs((direct + tail) / ewald - 1).max())
    assert errors[0] > errors[1] > errors[2]
    assert errors[2] < 1e-6


def test_pauli_equals_direct_sum(vectors) -> None:
    fast = exponential_lattice_sum(vectors, TRICLINIC, alpha=3.0)
    direct = direct_lattice_sum(vectors, TRICLINIC, lambda d: np.exp(-3.0 * d), 40.0)
    np.testing.assert_allclose(fast, direct, rtol=1e-10)


def test_coulomb_differences_converge_to_direct_sum(vectors) -> None:
    """Differences between pairs do not depend on the background convention.

    A sphere of lattice points of radius R centred on the origin carries, relative to the
    neutralised (Ewald) sum, the potential of a uniform ball of density 1/V seen from -r:
    2 pi R^2 / V - (2 pi / 3V) |r|^2. The first part cancels in differences; the second is
    added back explicitly.
    """
    ewald = inverse_power_lattice_sum(vectors, TRICLINIC, 1.0)
    norms2 = (vectors**2).sum(axis=1)
    expected = ewald[1:] - ewald[0]
    errors = []
    for radius in (30.0, 60.0, 120.0):
        direct = direct_lattice_sum(vectors, TRICLINIC, lambda d: 1.0 / d, radius)
        direct += 2 * math.pi / (3 * VOLUME) * norms2
        errors.append(np.abs((direct[1:] - direct[0]) - expected).max())
    assert errors[0] > errors[2]
    assert errors[2] < 1e-4 * np.abs(expected).max()


@pytest.mark.parametrize("p", [1.0, 6.0, 2.0, 4.5])
def test_independent_of_ewald_splitting(vectors, p: float) -> None:
    reference = inverse_power_lattice_sum(vectors, TRICLINIC, p)
    for eta in (0.25, 0.6, 1.1):
        np.testing.assert_allclose(
            inverse_power_lattice_sum(vectors, TRICLINIC, p, eta=eta),
            reference,
            rtol=1e-9,
            atol=1e-12,
        )


@pytest.mark.parametrize(
    ("name", "lattice", "species", "coords", "nearest", "madelung"),
    [
        (
            "NaCl",
            Lattice.cubic(5.64),
            ["Na"] * 4 + ["Cl"] * 4,
            [
                [0, 0, 0],
                [0, 0.5, 0.5],
                [0.5, 0, 0.5],
                [0.5, 0.5, 0],
                [0.5, 0, 0],
                [0, 0.5, 0],
                [0, 0, 0.5],
                [0.5, 0.5, 0.5],
            ],
            2.82,
            1.747565,
        ),
        (
            "CsCl",
            Lattice.cubic(4.12),
            ["Cs", "Cl"],
            [[0, 0, 0], [0.5, 0.5, 0.5]],
            4.12 * math.sqrt(3) / 2,
            1.762675,
        ),
    ],
)
def test_madelung_constants(name, lattice, species, coords, nearest, madelung) -> None:
    """Neutral cells: the Coulomb site potential gives the textbook Madelung constants."""
    structure = Structure(lattice, species, coords)
    charges = np.array([1.0 if s.symbol in ("Na", "Cs") else -1.0 for s in structure.species])
    index, sums = pair_potential_sums(structure.cart_coords, lattice.matrix, ("coulomb",))
    src, dst = index
    potential_at_0 = (charges[src[dst == 0]] * sums[dst == 0, 0]).sum()
    assert -potential_at_0 * nearest == pytest.approx(madelung, abs=2e-6)


def test_sums_are_even_and_periodic(vectors) -> None:
    for p in (1.0, 6.0):
        s = inverse_power_lattice_sum(vectors, TRICLINIC, p)
        np.testing.assert_allclose(inverse_power_lattice_sum(-vectors, TRICLINIC, p), s, rtol=1e-10)
        shifted = vectors + np.array([2, -1, 3]) @ TRICLINIC
        np.testing.assert_allclose(inverse_power_lattice_sum(shifted, TRICLINIC, p), s, rtol=1e-10)


def test_p_equal_three_is_rejected(vectors) -> None:
    with pytest.raises(ValueError, match="p != 3"):
        inverse_power_lattice_sum(vectors, TRICLINIC, 3.0)


def test_graph_potentials_are_invariant(mp_structures) -> None:
    """Same pair sums after a rotation and for the same crystal in a 2x1x1 supercell."""
    config = GraphConfig(
        mode="knn",
        cutoff=4.0,
        max_neighbors=16,
        keep_ties=True,
        grow_cutoff=True,
        potentials=("coulomb", "london", "pauli"),
    )
    structure = mp_structures[6]
    g = build_graph(structure, config)
    assert g.pot_edge_index.shape == (2, len(structure) ** 2)
    rot = Lattice(structure.lattice.matrix @ np.array([[0, -1, 0], [1, 0, 0], [0, 0, 1]]).T)
    g_rot = build_graph(Structure(rot, structure.species, structure.frac_coords), config)
    np.testing.assert_allclose(g_rot.potential_sums, g.potential_sums, rtol=1e-5)
    # in a supercell the London and Pauli sums of a pair split over the copies of the partner
    supercell = structure * (2, 1, 1)
    g_sup = build_graph(supercell, config)
    n = len(structure)
    # original atom of each supercell atom: same position modulo the original lattice
    frac = supercell.cart_coords @ np.linalg.inv(structure.lattice.matrix)
    delta = frac[:, None, :] - structure.frac_coords[None, :, :]
    origin = np.argmin(np.abs(delta - np.round(delta)).sum(-1), axis=1)
    assert np.bincount(origin).tolist() == [2] * n
    sup = g_sup.potential_sums.double().numpy().reshape(2 * n, 2 * n, 3)
    expected = g.potential_sums.double().numpy().reshape(n, n, 3)
    first = [int(np.flatnonzero(origin == i)[0]) for i in range(n)]
    for i in range(n):
        folded = np.zeros((n, 3))
        np.add.at(folded, origin, sup[first[i]])
        # London and Pauli: a pair's sum splits over the two copies of the partner
        np.testing.assert_allclose(folded[:, 1:], expected[i, :, 1:], rtol=1e-5)
