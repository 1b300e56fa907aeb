"""matgnn.analysis.elasticity: Voigt <-> Cartesian with the Voigt factors, rotation, and VRH moduli
checked against the moduli matminer's elastic_tensor_2015 stores for its own tensors, and the
vectorised conversions and moduli against pymatgen's ElasticTensor / ComplianceTensor."""

from __future__ import annotations

import numpy as np
import pytest
from pymatgen.core.elasticity import ComplianceTensor, ElasticTensor
from pymatgen.core.tensors import Tensor

from matgnn.analysis.elasticity import (
    cartesian_to_voigt,
    rotate,
    symmetry_error,
    voigt_to_cartesian,
    vrh_moduli,
)
from matgnn.data.sources.tensors import sample_rows
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


def test_conversions_match_pymatgen_on_real_tensors(elastic_sample):
    """The 150 shipped de Jong et al. stiffness tensors and their compliances, batched here, one
    at a time through pymatgen (``ComplianceTensor`` carries the factors 2 and 4)."""
    c = np.array([row["elastic_tensor"] for row in elastic_sample])
    s = np.linalg.inv(c)
    stiffness, compliance = voigt_to_cartesian(c), voigt_to_cartesian(s, "compliance")
    for i in range(len(c)):
        theirs = ElasticTensor.from_voigt(c[i])
        np.testing.assert_array_equal(stiffness[i], theirs)
        np.testing.assert_array_equal(compliance[i], ComplianceTensor.from_voigt(s[i]))
        np.testing.assert_allclose(compliance[i], theirs.compliance_tensor, rtol=1e-12)
        np.testing.assert_array_equal(cartesian_to_voigt(stiffness[i]), theirs.voigt)
        np.testing.assert_allclose(
            cartesian_to_voigt(compliance[i], "compliance"), ComplianceTensor(compliance[i]).voigt
        )


def test_moduli_match_pymatgen_on_real_tensors(elastic_sample):
    c = np.array([row["elastic_tensor"] for row in elastic_sample])
    ours = vrh_moduli(c)
    properties = {"K_V": "k_voigt", "K_R": "k_reuss", "K_VRH": "k_vrh",
                  "G_V": "g_voigt", "G_R": "g_reuss", "G_VRH": "g_vrh"}  # fmt: skip
    tensors = [ElasticTensor.from_voigt(v) for v in c]
    for key, name in properties.items():
        theirs = np.array([getattr(t, name) for t in tensors])
        np.testing.assert_allclose(ours[key], theirs, rtol=1e-12, atol=1e-9, err_msg=key)


def test_rotate_is_pymatgens_and_takes_a_batch(elastic_sample):
    c = voigt_to_cartesian(np.array([row["elastic_tensor"] for row in elastic_sample[:6]]))
    r = random_rotation(5)
    batch = rotate(c.reshape(2, 3, 3, 3, 3, 3), r).reshape(c.shape)
    for one, turned in zip(c, batch, strict=True):
        np.testing.assert_allclose(turned, Tensor(one).rotate(r), rtol=1e-12, atol=1e-9)
    with pytest.raises(ValueError, match="3x3x3x3"):
        rotate(np.zeros((3, 3)), r)


def test_shapes_are_checked():
    with pytest.raises(ValueError, match="6x6"):
        voigt_to_cartesian(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="3x3x3x3"):
        cartesian_to_voigt(np.zeros((6, 6)))
    with pytest.raises(ValueError, match="kind"):
        voigt_to_cartesian(np.eye(6), "strain")
