"""matgnn.elasticity: Voigt <-> Cartesian with the Voigt factors, rotation, and VRH moduli
checked against the moduli matminer's elastic_tensor_2015 stores for its own tensors."""

from __future__ import annotations

import numpy as np
import pytest

from matgnn.data.sources.tensors import sample_rows
from matgnn.elasticity import (
    cartesian_to_voigt,
    rotate,
    symmetry_error,
    voigt_to_cartesian,
    vrh_moduli,
)
from matgnn.testing import random_rotation


@pytest.fixture(scope="module")
def elastic_sample():
    return sample_rows("elastic_sample.json.gz")


def isotropic(lam: float, mu: float) -> np.ndarray:
    c = np.zeros((6, 6))
    c[:3, :3] = lam
    c[np.arange(3), np.arange(3)] = lam + 2 * mu
    c[np.arange(3, 6), np.arange(3, 6)] = mu
    return c


def random_stiffness(seed: int) -> np.ndarray:
    a = np.random.default_rng(seed).normal(size=(6, 6))
    return a @ a.T + 6 * np.eye(6)


@pytest.mark.parametrize("kind", ["stiffness", "compliance"])
def test_round_trip_and_cartesian_symmetries(kind):
    voigt = random_stiffness(0)
    cart = voigt_to_cartesian(voigt, kind)
    np.testing.assert_allclose(cartesian_to_voigt(cart, kind), voigt)
    for perm in ("jikl", "ijlk", "klij"):
        np.testing.assert_allclose(np.einsum(f"ijkl->{perm}", cart), cart)


def test_compliance_factors_make_the_cartesian_tensors_inverse():
    """C_ijkl S_klmn is the identity on symmetric 3x3 tensors only with the Voigt factors."""
    c = random_stiffness(1)
    s = np.linalg.inv(c)
    product = np.einsum(
        "ijkl,klmn->ijmn", voigt_to_cartesian(c), voigt_to_cartesian(s, "compliance")
    )
    eye = np.eye(3)
    identity = (np.einsum("im,jn->ijmn", eye, eye) + np.einsum("in,jm->ijmn", eye, eye)) / 2
    np.testing.assert_allclose(product, identity, atol=1e-12)
    wrong = np.einsum("ijkl,klmn->ijmn", voigt_to_cartesian(c), voigt_to_cartesian(s))
    assert not np.allclose(wrong, identity, atol=1e-3)


def test_isotropic_moduli_are_lame_exact_and_rotation_invariant():
    lam, mu = 60.0, 25.0
    c = isotropic(lam, mu)
    moduli = vrh_moduli(c)
    for key in ("K_V", "K_R", "K_VRH"):
        assert moduli[key] == pytest.approx(lam + 2 * mu / 3)
    for key in ("G_V", "G_R", "G_VRH"):
        assert moduli[key] == pytest.approx(mu)
    turned = rotate(voigt_to_cartesian(c), random_rotation(3))
    np.testing.assert_allclose(cartesian_to_voigt(turned), c, atol=1e-10)


def test_moduli_of_an_anisotropic_tensor_do_not_change_under_rotation():
    c = random_stiffness(2)
    turned = cartesian_to_voigt(rotate(voigt_to_cartesian(c), random_rotation(4)))
    assert not np.allclose(turned, c)
    for key, value in vrh_moduli(c).items():
        assert vrh_moduli(turned)[key] == pytest.approx(value, rel=1e-10), key


def test_moduli_match_the_ones_matminer_stores(elastic_sample):
    """80 real de Jong et al. tensors (GPa): our Voigt, Reuss and Hill moduli against the
    dataset's own columns (stored to 1e-2 GPa or better)."""
    c = np.array([row["elastic_tensor"] for row in elastic_sample])
    ours = vrh_moduli(c)
    columns = {"K_VRH": "K_VRH", "G_VRH": "G_VRH", "K_V": "K_Voigt", "G_V": "G_Voigt",
               "K_R": "K_Reuss", "G_R": "G_Reuss"}  # fmt: skip
    for ours_key, column in columns.items():
        stored = np.array([row[column] for row in elastic_sample])
        np.testing.assert_allclose(ours[ours_key], stored, atol=0.02, err_msg=column)
    assert symmetry_error(c).max() < 1e-6


def test_shapes_are_checked():
    with pytest.raises(ValueError, match="6x6"):
        voigt_to_cartesian(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="3x3x3x3"):
        cartesian_to_voigt(np.zeros((6, 6)))
    with pytest.raises(ValueError, match="kind"):
        voigt_to_cartesian(np.eye(6), "strain")
