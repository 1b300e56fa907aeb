"""The tensor loaders: frame check (drop and log by id), Voigt -> Cartesian, derived scalars, and
bad tensors (wrong shape, non-finite, per-atom count) reported by id, never trained on."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from matgnn.analysis.elasticity import cartesian_to_voigt
from matgnn.data import CrystalDataModule
from matgnn.data.sources import tensors
from matgnn.data.sources.tensors import (
    _dielectric_records,
    _elastic_records,
    dielectric_sample,
    elastic_sample,
    in_structure_frame,
    sample_rows,
)
from matgnn.graphs import GraphConfig
from matgnn.outputs import ElasticTensorOutput, ScalarOutput, TensorOutput
from matgnn.testing import random_rotation


def test_elastic_loader_drops_the_tensors_out_of_frame_by_id(caplog):
    with caplog.at_level(logging.INFO, logger=tensors.__name__):
        records = elastic_sample()
    # measured: 3 of the 150 change by more than 5% under their crystal's operations
    assert len(records.ids) == 147
    dropped = {"mp-10172", "mp-10173", "mp-10755"}
    assert not dropped & set(records.ids)
    assert all(sid in caplog.text for sid in dropped)
    assert "147 of 150" in caplog.text
    assert set(records.dropped) == dropped
    assert len(elastic_sample(frame_tolerance=None).ids) == 150


def test_crystals_dropped_by_the_loader_are_reported_with_the_rejected(tmp_path):
    records = elastic_sample()
    data = CrystalDataModule(
        lambda: records, GraphConfig.preset("e3nn"), [ElasticTensorOutput("elastic_tensor")]
    )
    data.setup()
    assert set(records.dropped) <= set(data.rejected)
    data.save_rejected(tmp_path / "rejected.csv")
    assert "mp-10172" in (tmp_path / "rejected.csv").read_text()


def test_elastic_targets_are_cartesian_with_the_stored_moduli():
    rows = sample_rows("elastic_sample.json.gz")
    records = elastic_sample(limit=20, frame_tolerance=None)
    c = np.stack(records.targets["elastic_tensor"])
    assert c.shape == (20, 3, 3, 3, 3)
    np.testing.assert_array_equal(cartesian_to_voigt(c), [r["elastic_tensor"] for r in rows[:20]])
    np.testing.assert_array_equal(records.targets["K_VRH"], [r["K_VRH"] for r in rows[:20]])
    np.testing.assert_array_equal(records.targets["G_VRH"], [r["G_VRH"] for r in rows[:20]])


def test_dielectric_means_are_the_trace_over_three_of_the_symmetrised_tensor():
    records = dielectric_sample(limit=30)
    for column in ("e_electronic", "e_total"):
        t = np.stack(records.targets[column])
        np.testing.assert_allclose(t, t.transpose(0, 2, 1))
        np.testing.assert_allclose(
            records.targets[f"{column}_mean"], np.trace(t, axis1=1, axis2=2) / 3
        )


def test_a_tensor_turned_into_another_frame_is_dropped(caplog):
    """An anisotropic tensor turned by a generic rotation: dropped (a cubic crystal's tensor is
    isotropic, so it is taken from a crystal of lower symmetry)."""
    records = dielectric_sample(limit=30, frame_tolerance=None)
    row = next(
        i
        for i, t in enumerate(records.targets["e_electronic"])
        if np.ptp(np.linalg.eigvalsh(t)) > 0.5
    )
    structure = records.structures[row]
    tensor = np.asarray(records.targets["e_electronic"][row])
    r = random_rotation(3)
    turned = r @ tensor @ r.T
    dropped = in_structure_frame(
        ["a", "b"], [structure, structure], [tensor, turned], "test", tolerance=0.01
    )
    assert list(dropped) == ["b"] and "symmetry operations change the tensor" in dropped["b"]
    assert in_structure_frame(["a"], [structure], [turned], "test", tolerance=None) == {}


def test_the_frame_check_draws_no_bar_into_a_log(capsys):
    """500 tensors or more get a progress bar only on a terminal: into a file or pipe (here
    pytest's captured stderr) it would write a line per update."""
    from pymatgen.core import Lattice, Structure

    structure = Structure(Lattice.cubic(3.0), ["Po"], [[0, 0, 0]])
    count = 500
    dropped = in_structure_frame(
        [str(i) for i in range(count)], [structure] * count, [np.eye(3)] * count, "many", 0.01
    )
    assert dropped == {}
    assert "frame check" not in capsys.readouterr().err


def test_bad_tensors_are_rejected_by_id_and_never_trained_on(tmp_path):
    """Wrong shape, a NaN entry (elastic and dielectric): the loader keeps them (no crash in
    its conversions), the data module rejects them by id with the reason, and writes them to
    rejected.csv."""
    rows = sample_rows("elastic_sample.json.gz")[:20]
    rows[1] = {**rows[1], "elastic_tensor": [r[:5] for r in rows[1]["elastic_tensor"]]}  # 6x5
    rows[2] = {**rows[2], "elastic_tensor": [[float("nan")] * 6] * 6}
    records = _elastic_records(rows, "bad_elastic", None, frame_tolerance=0.05)
    assert rows[1]["material_id"] in records.ids and rows[2]["material_id"] in records.ids
    data = CrystalDataModule(
        lambda: records, GraphConfig.preset("e3nn"), [ElasticTensorOutput("elastic_tensor")]
    )
    data.setup()
    bad = {rows[1]["material_id"], rows[2]["material_id"]}
    assert bad <= set(data.rejected)
    assert "shape (6, 5)" in data.rejected[rows[1]["material_id"]]
    assert "not finite" in data.rejected[rows[2]["material_id"]]
    kept = {sid for members in data.split_ids().values() for sid in members}
    assert not bad & kept
    assert all(g.target_elastic_tensor.shape == (1, 3, 3, 3, 3) for g in data.subsets["train"])
    data.save_rejected(tmp_path / "rejected.csv")
    text = (tmp_path / "rejected.csv").read_text()
    assert text.startswith("id,reason") and all(sid in text for sid in bad)

    drows = sample_rows("dielectric_sample.json.gz")[:10]
    drows[3] = {**drows[3], "e_electronic": [[1.0, 0.0], [0.0, 1.0]]}
    records = _dielectric_records(drows, "bad_dielectric", None, frame_tolerance=0.01)
    data = CrystalDataModule(
        lambda: records,
        GraphConfig.preset("e3nn"),
        [TensorOutput("e_electronic"), ScalarOutput("e_electronic_mean")],
    )
    data.setup()
    assert "shape (2, 2)" in data.rejected[drows[3]["material_id"]]


def test_a_rejected_row_fails_in_words_when_skipping_is_off():
    rows = sample_rows("elastic_sample.json.gz")[:5]
    rows[0] = {**rows[0], "elastic_tensor": [[float("inf")] * 6] * 6}
    records = _elastic_records(rows, "bad_elastic", None, frame_tolerance=None)
    data = CrystalDataModule(
        lambda: records,
        GraphConfig.preset("e3nn"),
        [ElasticTensorOutput("elastic_tensor")],
        skip_invalid=False,
    )
    with pytest.raises(ValueError, match=f"{rows[0]['material_id']}.*not finite"):
        data.setup()
