"""Declared outputs: names, configs that round-trip through Hydra, target checks, table rows;
bad targets are rejected by id in the data module; the symmetry helpers can fail."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from matgnn.data import CrystalDataModule, Records
from matgnn.data.samples import mp_sample_structures
from matgnn.graphs import GraphConfig
from matgnn.heads import AtomTensorHead, TensorHead
from matgnn.outputs import (
    AtomTensorOutput,
    ClassOutput,
    ScalarOutput,
    SpectrumOutput,
    TensorOutput,
    prediction_table,
)
from matgnn.testing import assert_equivariant
from tests.models.helpers import make_model


@pytest.mark.parametrize(
    "output",
    [
        ScalarOutput(target="log10(G_VRH)", loss="huber", element_reference=True),
        ClassOutput("label", num_classes=3, classes=("a", "b", "c")),
        SpectrumOutput("dos", num_bins=7, loss="emd"),
        TensorOutput("eps", symmetric=False),
        AtomTensorOutput("becs", weight=0.5),
    ],
)
def test_config_round_trips_through_the_registry(output):
    from matgnn.checkpoints.safe_config import build

    assert build(output.to_config()) == output


def test_name_defaults_to_the_target_as_an_identifier_and_bad_settings_fail():
    assert ScalarOutput(target="log10(G_VRH)").name == "log10_G_VRH"
    assert ScalarOutput(target="gap pbe").name == "gap_pbe"
    with pytest.raises(ValueError, match="loss must be one of"):
        ScalarOutput("y", loss="cross_entropy")
    with pytest.raises(ValueError, match="identifier"):
        ScalarOutput("a.b")
    with pytest.raises(ValueError, match="class names"):
        ClassOutput("c", num_classes=3, classes=("a", "b"))


def test_target_problems_name_the_output_and_the_reason():
    assert ScalarOutput("y").target_problem(float("nan")) == "y: target is nan (not finite)"
    assert "shape" in TensorOutput("eps").target_problem(np.eye(2))
    assert ClassOutput("c", num_classes=3).target_problem(3.0).startswith("c: label 3")
    assert ClassOutput("c", num_classes=3).target_problem(1.5).startswith("c: label 1.5")
    becs = AtomTensorOutput("becs")
    assert becs.target_problem(np.zeros((4, 3, 3)), num_atoms=4) is None
    assert "for 5 atoms" in becs.target_problem(np.zeros((4, 3, 3)), num_atoms=5)


def test_prediction_table_rows_per_crystal_and_per_atom():
    label = ClassOutput("c", num_classes=3, classes=("x", "y", "z"))
    header, rows = prediction_table(
        [label], ["a"], {"c": [np.array([0.2, 0.7, 0.1])]}, {"c": [np.array([1])]}
    )
    assert header == [
        "id",
        "c",
        "predicted_c",
        "probability_c_x",
        "probability_c_y",
        "probability_c_z",
    ]
    assert rows == [["a", 1, 1, 0.2, 0.7, 0.1]]
    becs = AtomTensorOutput("becs")
    values = np.arange(18.0).reshape(2, 3, 3)
    header, rows = prediction_table([becs], ["m"], {"becs": [values]}, atomic_numbers=[[8, 1]])
    assert header[:4] == ["id", "atom", "Z", "predicted_becs_xx"] and len(header) == 12
    assert rows[1][:4] == ["m", 1, 1, 9.0]


def test_data_module_rejects_bad_targets_by_id():
    ids, structures = mp_sample_structures(12)
    becs = [np.zeros((len(s), 3, 3)) for s in structures]
    becs[2] = np.zeros((len(structures[2]) + 1, 3, 3))  # one atom too many
    becs[4] = np.full((len(structures[4]), 3, 3), np.inf)
    eps = np.tile(np.eye(3), (12, 1, 1))
    eps[6] = np.nan
    records = Records(ids, structures, {"becs": becs, "eps": eps}, name="bad_tensors")
    outputs = [AtomTensorOutput("becs"), TensorOutput("eps")]
    data = CrystalDataModule(
        lambda: records, GraphConfig.preset("e3nn"), outputs, skip_invalid=True
    )
    data.setup()
    assert set(data.rejected) == {ids[2], ids[4], ids[6]}
    assert "for" in data.rejected[ids[2]] and "atoms" in data.rejected[ids[2]]
    kept = [g for subset in data.subsets.values() for g in subset]
    assert len(kept) == 9
    assert all(g.target_becs.shape == (g.num_nodes, 3, 3) for g in kept)
    assert all(g.target_eps.shape == (1, 3, 3) for g in kept)
    with pytest.raises(ValueError, match="no target column"):
        CrystalDataModule(
            lambda: records, GraphConfig.preset("e3nn"), [ScalarOutput("gap")]
        ).setup()


def test_atom_tensor_head_sum_rule_and_equivariance(float64, small_structures):
    model = make_model("e3nn", ["model.backbone.irreps_out='16x0e + 8x1e + 8x2e'"])
    model.heads["becs"] = AtomTensorHead(model.backbone.feature_spec, formula="ij").eval()
    for structure in small_structures[:3]:
        assert_equivariant(model, structure, rtol=1e-8, atol=1e-8)
    from tests.models.helpers import batch_of

    with torch.no_grad():
        batch = batch_of(small_structures, model.graph_config())
        becs = model(batch)["becs"]
    assert becs.shape == (batch.num_nodes, 3, 3) and becs.abs().max() > 1e-6
    sums = torch.zeros(len(small_structures), 3, 3).index_add_(0, batch.batch, becs)
    torch.testing.assert_close(sums, torch.zeros_like(sums), atol=1e-10, rtol=0)


class FixedFrameHead(TensorHead):
    """Not equivariant: adds a tensor fixed in the lab frame."""

    def forward(self, features):
        return super().forward(features) + torch.diag(torch.tensor([1.0, 2.0, 3.0]))


def test_assert_equivariant_catches_a_head_that_does_not_rotate(small_structures):
    model = make_model("e3nn")
    model.heads["eps"] = FixedFrameHead(model.backbone.feature_spec).eval()
    with pytest.raises(AssertionError, match="rotation 0, head 'eps'"):
        assert_equivariant(model, small_structures[3])
