"""Tensor heads on the shipped real crystals (dielectric, elastic, Born-charge samples): a
rotation rotates the prediction (rank 2 and the 4th-rank rule), the crystal's own symmetry
operations leave it unchanged (Neumann's principle), the elastic head has the minor and major
symmetries exactly, and its isotropic de-normalisation is the Voigt-average tensor."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from e3nn import o3
from pymatgen.io.ase import AseAtomsAdaptor

from matgnn.analysis.elasticity import cartesian_to_voigt, vrh_moduli
from matgnn.data.sources.tensors import born_charges_sample, dielectric_sample, elastic_sample
from matgnn.heads import AtomTensorHead, TensorHead
from matgnn.outputs.tensor import isotropic_part
from matgnn.testing import assert_crystal_symmetric, assert_equivariant
from matgnn.testing.invariance import rotate_tensors
from tests.models.helpers import make_model

ELASTIC = "ijkl=jikl=klij"
# small e3nn with every irrep a tensor head may need (1e: general tensors, 4e: elastic)
IRREPS = ["model.backbone.mul=8", "model.backbone.irreps_out='16x0e + 4x1e + 8x2e + 4x4e'"]


def _symmetric_crystals(records, count: int, max_atoms: int = 8):
    """The first ``count`` structures of at most ``max_atoms`` atoms that have more than the
    identity and inversion (so that Neumann's principle constrains a tensor)."""
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    picked = []
    for structure in records.structures:
        structure = (
            structure if hasattr(structure, "lattice") else AseAtomsAdaptor.get_structure(structure)
        )
        if len(structure) > max_atoms:
            continue
        if len(SpacegroupAnalyzer(structure, symprec=1e-3).get_symmetry_operations()) > 2:
            picked.append(structure)
        if len(picked) == count:
            break
    assert len(picked) == count
    return picked


@pytest.fixture(scope="module")
def elastic_records():
    return elastic_sample(frame_tolerance=None)


@pytest.fixture(scope="module")
def elastic_crystals(elastic_records):
    return _symmetric_crystals(elastic_records, 2)


@pytest.fixture(scope="module")
def dielectric_crystals():
    return _symmetric_crystals(dielectric_sample(limit=40, frame_tolerance=None), 2)


@pytest.fixture(scope="module")
def becs_crystals():
    return _symmetric_crystals(born_charges_sample(limit=40), 2)


def _model_with(head_name: str, head_factory):
    model = make_model("e3nn", IRREPS)
    model.heads[head_name] = head_factory(model.backbone.feature_spec).eval()
    return model


def test_elastic_head_rotates_with_the_fourth_rank_rule(elastic_crystals):
    model = _model_with("elastic", lambda f: TensorHead(f, formula=ELASTIC))
    for structure in elastic_crystals:
        assert_equivariant(model, structure, rtol=1e-7, atol=1e-7)


def test_elastic_head_has_the_minor_and_major_symmetries(elastic_crystals, float64):
    model = _model_with("elastic", lambda f: TensorHead(f, formula=ELASTIC)).double()
    from tests.models.helpers import batch_of

    with torch.no_grad():
        c = model(batch_of(elastic_crystals, model.graph_config()))["elastic"]
    assert c.shape == (2, 3, 3, 3, 3) and c.abs().max() > 1e-6
    torch.testing.assert_close(c, c.transpose(1, 2), rtol=0, atol=1e-12)  # ijkl = jikl
    torch.testing.assert_close(c, c.transpose(3, 4), rtol=0, atol=1e-12)  # ijkl = ijlk
    torch.testing.assert_close(c, c.permute(0, 3, 4, 1, 2), rtol=0, atol=1e-12)  # = klij


@pytest.mark.parametrize(
    "kind", ["dielectric", "elastic", "born_charges"], ids=["rank2", "rank4", "per_atom"]
)
def test_a_crystals_own_symmetry_operations_leave_predictions_unchanged(
    kind, dielectric_crystals, elastic_crystals, becs_crystals
):
    factories = {
        "dielectric": (lambda f: TensorHead(f, formula="ij=ji"), dielectric_crystals),
        "elastic": (lambda f: TensorHead(f, formula=ELASTIC), elastic_crystals),
        "born_charges": (lambda f: AtomTensorHead(f, formula="ij"), becs_crystals),
    }
    factory, crystals = factories[kind]
    model = _model_with(kind, factory)
    for structure in crystals:
        assert assert_crystal_symmetric(model, structure) > 2


class FixedFrameHead(TensorHead):
    """Not equivariant: adds a tensor fixed in the lab frame."""

    def forward(self, features):
        return super().forward(features) + torch.diag(torch.tensor([1.0, 2.0, 3.0]))


def test_the_crystal_symmetry_check_catches_a_head_fixed_in_the_lab_frame(dielectric_crystals):
    model = _model_with("eps", lambda f: FixedFrameHead(f, formula="ij=ji"))
    with pytest.raises(AssertionError, match="symmetry operation changes it"):
        for structure in dielectric_crystals:
            assert_crystal_symmetric(model, structure)


def test_rotate_tensors_is_the_rank_two_and_rank_four_rule():
    rotation = torch.as_tensor(np.linalg.qr(np.random.default_rng(0).normal(size=(3, 3)))[0])
    t2 = torch.randn(4, 3, 3, dtype=torch.float64)
    torch.testing.assert_close(rotate_tensors(t2, rotation), rotation @ t2 @ rotation.T)
    t4 = torch.randn(2, 3, 3, 3, 3, dtype=torch.float64)
    want = torch.einsum("ia,jb,kc,ld,zabcd->zijkl", *([rotation] * 4), t4)
    torch.testing.assert_close(rotate_tensors(t4, rotation), want)


def test_a_head_whose_irreps_the_backbone_lacks_fails_in_words():
    model = make_model("e3nn")  # irreps_out 64x0e + 16x2e: no 4e, no 1e
    with pytest.raises(ValueError, match=r"4e.*irreps_out"):
        TensorHead(model.backbone.feature_spec, formula=ELASTIC)
    with pytest.raises(ValueError, match=r"1e.*irreps_out"):
        AtomTensorHead(model.backbone.feature_spec, formula="ij")


#: an e3nn backbone whose irreps stop at l = 2, as SevenNet-0's do
UP_TO_L2 = ["model.backbone.mul=8", "model.backbone.irreps_out='16x0e + 4x1e + 8x2e'"]


def test_an_elastic_head_reaches_4e_from_l2_features_by_their_tensor_square(
    elastic_crystals, float64
):
    """``square``: features that stop at l = 2 give the elastic tensor's 4e through each atom's
    tensor square; the head still rotates by the 4th-rank rule, keeps each crystal's own
    operations and the minor and major symmetries, and its 4e part is not zero."""
    from tests.models.helpers import batch_of

    model = make_model("e3nn", UP_TO_L2)
    spec = model.backbone.feature_spec
    with pytest.raises(ValueError, match=r"4e.*square='16x4e'"):
        TensorHead(spec, formula=ELASTIC)  # without the square: refused, naming the way out
    with pytest.raises(ValueError, match=r"with its square the head gives .* without 1x4e"):
        TensorHead(spec, formula=ELASTIC, square="4x2e")  # a square that skips the 4e
    head = TensorHead(spec, formula=ELASTIC, square="4x4e")
    assert head.square.irreps_out == o3.Irreps("4x4e")
    model.heads["elastic"] = head.eval()
    model = model.double()
    for structure in elastic_crystals:
        assert_equivariant(model, structure, rtol=1e-7, atol=1e-7)
        assert assert_crystal_symmetric(model, structure) > 2
    with torch.no_grad():
        c = model(batch_of(elastic_crystals, model.graph_config()))["elastic"]
    torch.testing.assert_close(c, c.transpose(1, 2), rtol=0, atol=1e-12)
    torch.testing.assert_close(c, c.permute(0, 3, 4, 1, 2), rtol=0, atol=1e-12)
    coefficients = head.from_cartesian(c)
    irreps = zip(head.cartesian, head.cartesian.slices(), strict=True)
    four = next(part for (_, ir), part in irreps if ir.l == 4)
    assert coefficients[:, four].abs().max() > 1e-6  # the square feeds the 4e channel
    # after a gated layer too (the layer's own irreps stop at l = 2 as well)
    gated = TensorHead(spec, formula=ELASTIC, hidden="16x0e + 4x2e", square="4x4e").double()
    model.heads["elastic"] = gated.eval()
    assert_equivariant(model, elastic_crystals[0], rtol=1e-7, atol=1e-7)


def test_a_square_that_no_path_reaches_is_refused_in_words():
    """No product of l <= 1 reaches 4e; a single 2e squared is symmetric (0e + 2e + 4e), so
    its antisymmetric 1e is refused too, where e3nn would give zeros silently."""
    model = make_model("e3nn", ["model.backbone.irreps_out='16x0e + 4x1e'"])
    with pytest.raises(ValueError, match=r"square='4x4e' asks for 4e, which the symmetric"):
        TensorHead(model.backbone.feature_spec, formula=ELASTIC, square="4x4e")
    head = AtomTensorHead(model.backbone.feature_spec, formula="ij", square="4x2e")
    assert head.square is not None and head.square.irreps_out == o3.Irreps("4x2e")
    single = make_model("e3nn", ["model.backbone.irreps_out='16x0e + 1x2e'"])
    with pytest.raises(ValueError, match=r"square='2x1e' asks for 1e, which the symmetric"):
        TensorHead(single.backbone.feature_spec, formula="ij=ji", square="2x1e")


def test_elastic_isotropic_part_is_the_voigt_average_tensor(elastic_records):
    """Two ways to the isotropic part (the head's e3nn 0e projection, and lambda/mu from the
    Voigt moduli) agree on real tensors, and keep K_V and G_V."""
    tensors = torch.as_tensor(np.stack(elastic_records.targets["elastic_tensor"][:20]))
    head = _model_with("elastic", lambda f: TensorHead(f, formula=ELASTIC)).heads["elastic"]
    from_irreps = head.isotropic_part(tensors.float()).double()
    from_moduli = isotropic_part(tensors)
    torch.testing.assert_close(from_irreps, from_moduli, rtol=1e-4, atol=1e-3)
    given = vrh_moduli(cartesian_to_voigt(tensors.numpy()))
    iso = vrh_moduli(cartesian_to_voigt(from_moduli.numpy()))
    np.testing.assert_allclose(iso["K_V"], given["K_V"], rtol=1e-10)
    np.testing.assert_allclose(iso["G_V"], given["G_V"], rtol=1e-10)
    np.testing.assert_allclose(iso["K_V"], iso["K_R"], rtol=1e-10)  # isotropic: V = R


def test_elastic_head_fit_sets_the_mean_isotropic_tensor_and_the_scale(elastic_records):
    tensors = torch.as_tensor(np.stack(elastic_records.targets["elastic_tensor"][:50]))
    head = _model_with("elastic", lambda f: TensorHead(f, formula=ELASTIC)).heads["elastic"]
    head.fit(tensors)
    mean_iso = isotropic_part(tensors).mean(0)
    torch.testing.assert_close(head.isotropic_mean.double(), mean_iso, rtol=1e-5, atol=1e-3)
    rms = (tensors - mean_iso).pow(2).mean().sqrt()
    assert float(head.scale) == pytest.approx(float(rms), rel=1e-5)


def test_with_irreps_adds_only_what_is_missing():
    from matgnn.heads.tensor import with_irreps

    assert with_irreps("64x0e + 16x2e", ["1x0e+1x2e"]) == "64x0e + 16x2e"
    assert with_irreps("64x0e + 16x2e", ["2x0e+2x2e+1x4e"]) == "64x0e+16x2e+16x4e"
    assert with_irreps("32x0e", ["1x0e+1x1e+1x2e", "1x0e+1x2e"]) == "32x0e+16x1e+16x2e"


def test_residual_functions_measure_what_the_asserts_check(elastic_crystals):
    from matgnn.testing import crystal_symmetry_residuals, rotation_residuals

    model = _model_with("elastic", lambda f: TensorHead(f, formula=ELASTIC))
    structure = elastic_crystals[0]
    assert rotation_residuals(model, structure)["elastic"] < 1e-7
    residuals, operations = crystal_symmetry_residuals(model, structure)
    assert operations > 2 and residuals["elastic"] < 1e-4
    fixed = _model_with("eps", lambda f: FixedFrameHead(f, formula="ij=ji"))
    assert rotation_residuals(fixed, structure)["eps"] > 1e-3


@pytest.mark.parametrize("kind", ["dielectric", "born_charges"])
def test_a_hidden_gated_layer_keeps_the_heads_equivariant(kind, dielectric_crystals, becs_crystals):
    """``hidden`` irreps: a gated equivariant layer on each atom's scalars and irreps before
    the linear map; rotations rotate the output, the crystal's own operations leave it
    unchanged, and it is not a linear function of the features (doubling them does not double
    the output)."""
    factory, crystals = {
        "dielectric": (
            lambda f: TensorHead(f, formula="ij=ji", hidden="16x0e + 8x2e"),
            dielectric_crystals,
        ),
        "born_charges": (
            lambda f: AtomTensorHead(f, formula="ij", hidden="16x0e + 4x1e + 8x2e"),
            becs_crystals,
        ),
    }[kind]
    model = _model_with(kind, factory)
    head = model.heads[kind]
    assert head.hidden is not None and sum(p.numel() for p in head.hidden.parameters()) > 0
    for structure in crystals:
        assert_equivariant(model, structure, rtol=1e-7, atol=1e-7)
        assert assert_crystal_symmetric(model, structure) > 2
    from tests.models.helpers import batch_of

    with torch.no_grad():
        features = model.backbone(batch_of(crystals, model.graph_config()))
        once = head(features)
        features.scalars, features.irreps = 2 * features.scalars, 2 * features.irreps
        twice = head(features)
    assert not torch.allclose(2 * once, twice, rtol=1e-3, atol=1e-5)


def test_a_hidden_layer_without_the_tensors_irreps_is_refused_in_words():
    model = make_model("e3nn", IRREPS)
    with pytest.raises(ValueError, match=r"hidden layer gives .* without 1x2e: add them to hidden"):
        TensorHead(model.backbone.feature_spec, formula="ij=ji", hidden="16x0e + 4x1e")
