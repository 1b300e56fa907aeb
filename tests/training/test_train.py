"""Smoke-train every model on the embedded tasks (scalar, binary and multi-class, DOS, two
outputs, crystal and per-atom tensors), resume, predict from files with the same columns as
the test predictions, give every run its own folder, and reject bad rows by id."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.errors import MissingConfigException
from pymatgen.core import Lattice, Structure
from pymatgen.io.ase import AseAtomsAdaptor

import matgnn
from matgnn import load_model
from matgnn.config_dir import CONFIG_DIR, group_options
from matgnn.data import CrystalDataModule, Records
from matgnn.data.samples import mp_sample_structures
from matgnn.data.sources.tensors import born_charges_sample, elastic_sample
from matgnn.graphs import GraphConfig
from matgnn.outputs import (
    ClassOutput,
    ElasticTensorOutput,
    ScalarOutput,
    SpectrumOutput,
    TensorOutput,
)
from matgnn.outputs.tensor import COMPONENTS
from matgnn.predict import main as predict_main
from matgnn.testing import assert_crystal_symmetric, assert_equivariant
from matgnn.train import compose_config, run
from matgnn.training.run import task_outputs
from matgnn.training.run_logs import read_logs, training_summary
from tests.models.helpers import DESCRIPTOR_MODELS, MODEL_NAMES, SMALL


def train_config(tmp_path: Path, model: str, *extra: str):
    return compose_config(
        f"model={model}",
        f"paths.cache_dir={tmp_path / 'cache'}",
        "task.data.source.limit=60",
        "task.data.batch_size=16",
        "trainer.max_epochs=1",
        "+trainer.limit_train_batches=2",
        "+trainer.enable_progress_bar=false",
        *SMALL.get(model, []),
        *extra,
        output_dir=tmp_path,
    )


def read_rows(path: Path) -> list[dict[str, str]]:
    with open(path) as handle:
        return list(csv.DictReader(handle))


@pytest.mark.parametrize("model", MODEL_NAMES)
def test_smoke_train_every_model(tmp_path, model):
    metrics = run(train_config(tmp_path, model))
    assert np.isfinite(metrics["test_formation_energy_per_atom_mae"])
    assert metrics["test_formation_energy_per_atom_mae_predict_train_mean"] > 0
    assert (tmp_path / "checkpoints" / "last.ckpt").is_file()
    assert (tmp_path / "test_parity_formation_energy_per_atom.png").stat().st_size > 1000
    assert json.loads((tmp_path / "test_metrics.json").read_text()) == pytest.approx(metrics)
    summary = training_summary(tmp_path)  # what the CSV logs say of the run
    assert summary["epochs"] == 1 and summary["best_epoch"] == 0
    timer = read_logs(tmp_path)["train_epoch_time_s"].dropna()
    assert len(timer) == 1 and summary["train_seconds"] == round(timer.sum(), 1)
    wall = read_logs(tmp_path)["epoch_wall_time_s"].dropna()  # validation included
    assert len(wall) == 1 and wall.iloc[0] >= timer.iloc[0] > 0
    assert summary["test_formation_energy_per_atom_mae"] == pytest.approx(
        metrics["test_formation_energy_per_atom_mae"]
    )
    rows = read_rows(tmp_path / "test_predictions.csv")
    assert len(rows) == 6 and rows[0]["id"].startswith("mp-")
    assert list(rows[0]) == [
        "id",
        "formation_energy_per_atom",
        "predicted_formation_energy_per_atom",
    ]


@pytest.mark.parametrize("model", MODEL_NAMES)
def test_smoke_train_every_model_on_classification(tmp_path, model):
    metrics = run(train_config(tmp_path, model, "task=mp_sample_is_metal"))
    assert 0.0 <= metrics["test_is_metal_roc_auc"] <= 1.0
    assert 0.0 <= metrics["test_is_metal_accuracy"] <= 1.0
    checkpoint = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    head = checkpoint["hyper_parameters"]["model"]["heads"]["is_metal"]
    assert head["@class"] == "classification_head"
    rows = read_rows(tmp_path / "test_predictions.csv")
    assert rows and {r["is_metal"] for r in rows} <= {"0", "1"}
    for r in rows:
        p = [float(r["probability_is_metal_nonmetal"]), float(r["probability_is_metal_metal"])]
        assert sum(p) == pytest.approx(1.0) and int(r["predicted_is_metal"]) == int(np.argmax(p))


@pytest.mark.parametrize("model", MODEL_NAMES)
def test_smoke_train_every_model_on_phonon_dos(tmp_path, model):
    metrics = run(train_config(tmp_path, model, "task=phonon_dos_sample"))
    assert np.isfinite(metrics["test_phdos_emd"]) and np.isfinite(metrics["test_phdos_mae"])
    assert (tmp_path / "test_phdos.png").stat().st_size > 5000
    rows = read_rows(tmp_path / "test_predictions.csv")
    predicted = np.array([[float(r[f"predicted_phdos_{k}"]) for k in range(51)] for r in rows])
    assert (predicted >= 0).all()
    np.testing.assert_allclose(predicted.max(axis=1), 1.0, rtol=1e-5)
    model_back = load_model(tmp_path / "checkpoints" / "last.ckpt")
    assert type(model_back.heads["phdos"]).__name__ == "VectorHead"


def test_two_outputs_train_together(tmp_path):
    """Formation energy and band gap, one head and one normaliser each, one weighted loss."""
    metrics = run(train_config(tmp_path, "cgcnn", "task=mp_sample_eform_gap"))
    for name in ("formation_energy_per_atom", "band_gap"):
        assert np.isfinite(metrics[f"test_{name}_mae"])
        assert (tmp_path / f"test_parity_{name}.png").is_file()
    model = load_model(tmp_path / "checkpoints" / "last.ckpt")
    assert [o.name for o in model.outputs] == ["formation_energy_per_atom", "band_gap"]
    eform = model.heads["formation_energy_per_atom"].normalizer.mean.item()
    gap = model.heads["band_gap"].normalizer.mean.item()
    assert eform < 0 < gap  # each head was fitted on its own target
    assert list(read_rows(tmp_path / "test_predictions.csv")[0]) == [
        "id",
        "formation_energy_per_atom",
        "predicted_formation_energy_per_atom",
        "band_gap",
        "predicted_band_gap",
    ]


def test_multi_class_classification_trains(tmp_path):
    metrics = run(train_config(tmp_path, "cgcnn", "task=mp_sample_crystal_system"))
    assert 0.0 <= metrics["test_crystal_system_accuracy"] <= 1.0
    assert 0.0 <= metrics["test_crystal_system_roc_auc"] <= 1.0
    rows = read_rows(tmp_path / "test_predictions.csv")
    classes = ["triclinic", "monoclinic", "orthorhombic", "tetragonal", "trigonal", "hexagonal"]
    columns = [f"probability_crystal_system_{c}" for c in [*classes, "cubic"]]
    assert set(columns) <= set(rows[0])
    for r in rows:
        assert sum(float(r[c]) for c in columns) == pytest.approx(1.0)
        assert 0 <= int(r["predicted_crystal_system"]) < 7


def test_tensor_head_trains_on_real_dielectric_tensors(tmp_path):
    """The symmetric TensorHead on the e3nn backbone, trained through matgnn.train on the
    shipped dielectric tensors; predictions are symmetric 3x3 tensors in named columns."""
    metrics = run(train_config(tmp_path, "e3nn", "task=dielectric_sample"))
    assert np.isfinite(metrics["test_e_electronic_mae"])
    assert 0 < metrics["test_e_electronic_frobenius"] < 10
    rows = read_rows(tmp_path / "test_predictions.csv")
    tensor = np.array([[float(r[f"predicted_e_electronic_{c}"]) for c in COMPONENTS] for r in rows])
    tensor = tensor.reshape(-1, 3, 3)
    np.testing.assert_allclose(tensor, tensor.transpose(0, 2, 1), atol=1e-5)
    model = load_model(tmp_path / "checkpoints" / "last.ckpt")
    _, structures = mp_sample_structures(2)
    assert_equivariant(model, structures[1])


def test_sevennet_born_charges_train_frozen_and_reload_equivariant(tmp_path):
    """Born charges and the dielectric tensor from SevenNet-0's frozen, cached equivariant
    features through matgnn.train: the task turns on block 3 with split_parity, the reloaded
    model keeps them and is equivariant and obeys its crystals' symmetry (mirrors included)."""
    metrics = run(
        train_config(
            tmp_path,
            "sevennet",
            "task=born_charges_sample",
            "finetune.freeze=backbone",
            "finetune.cache_features=true",
        )
    )
    assert np.isfinite(metrics["test_becs_mae"]) and np.isfinite(metrics["test_eps_mae"])
    model = load_model(tmp_path / "checkpoints" / "last.ckpt")
    assert model.backbone.equivariant_blocks == (3,) and model.backbone.split_parity
    records = born_charges_sample(limit=3)
    structure = AseAtomsAdaptor.get_structure(records.structures[2])
    assert_equivariant(model, structure)
    assert assert_crystal_symmetric(model, structure) >= 1


def test_per_atom_born_charges_train_with_the_sum_rule(tmp_path):
    """Per-atom general tensors (Born charges) and a per-crystal tensor at once; per-atom
    predictions in test_predictions_atoms.csv, summing to zero over each crystal."""
    metrics = run(train_config(tmp_path, "e3nn", "task=born_charges_sample"))
    assert np.isfinite(metrics["test_becs_mae"]) and np.isfinite(metrics["test_eps_mae"])
    atoms = read_rows(tmp_path / "test_predictions_atoms.csv")
    assert list(atoms[0])[:3] == ["id", "atom", "Z"]
    by_crystal: dict[str, np.ndarray] = {}
    for r in atoms:
        z = np.array([float(r[f"predicted_becs_{c}"]) for c in COMPONENTS])
        by_crystal[r["id"]] = by_crystal.get(r["id"], 0) + z
    assert len(by_crystal) == 6  # 60 crystals, 10% test
    assert max(np.abs(v).max() for v in by_crystal.values()) < 1e-4
    crystals = read_rows(tmp_path / "test_predictions.csv")
    assert {r["id"] for r in crystals} == set(by_crystal) and "predicted_eps_xx" in crystals[0]
    model = load_model(tmp_path / "checkpoints" / "last.ckpt")
    records = born_charges_sample(limit=3)
    assert_equivariant(model, AseAtomsAdaptor.get_structure(records.structures[2]))


def test_elastic_tensor_trains_through_the_task_with_voigt_columns(tmp_path):
    """The 4th-rank head through matgnn.train: the backbone gets its 4e channels (recorded in
    the checkpoint), predictions carry the 21 named Voigt components, baselines are logged,
    and the reloaded model is equivariant and obeys its crystals' symmetry."""
    metrics = run(train_config(tmp_path, "e3nn", "task=elastic_sample"))
    for key in ("mae", "frobenius", "mae_train_mean", "mae_own_isotropic_part"):
        assert np.isfinite(metrics[f"test_elastic_tensor_{key}"])
    rows = read_rows(tmp_path / "test_predictions.csv")
    voigt = [f"{a}{b}" for a in range(1, 7) for b in range(a, 7)]
    assert list(rows[0]) == [
        "id",
        *(f"elastic_tensor_{v}" for v in voigt),
        *(f"predicted_elastic_tensor_{v}" for v in voigt),
    ]
    model = load_model(tmp_path / "checkpoints" / "last.ckpt")
    assert "4e" in str(model.backbone.irreps_out)
    records = elastic_sample(limit=10, frame_tolerance=None)
    structure = next(s for s in records.structures if len(s) <= 6)
    assert_equivariant(model, structure)
    assert assert_crystal_symmetric(model, structure) >= 1
    # predict from a file: the same named columns; the tensor in the file's frame (a POSCAR
    # keeps the lattice matrix, so here the structure's)
    structure.to(filename=str(tmp_path / "POSCAR"), fmt="poscar")
    code = predict_main(
        [
            f"ckpt={tmp_path / 'checkpoints' / 'last.ckpt'}",
            f"input={tmp_path / 'POSCAR'}",
            f"output={tmp_path / 'predicted.csv'}",
        ]
    )
    assert code == 0
    (row,) = read_rows(tmp_path / "predicted.csv")
    # unseen_elements: the run's checkpoint records its training elements
    assert list(row) == ["id", *(f"predicted_elastic_tensor_{v}" for v in voigt), "unseen_elements"]
    assert row["unseen_elements"] == ""
    direct = model.predict([structure])["elastic_tensor"]
    assert direct.shape == (1, 3, 3, 3, 3)
    c = np.asarray(direct[0], dtype=float)
    assert float(row["predicted_elastic_tensor_12"]) == pytest.approx(c[0, 0, 1, 1], rel=1e-5)
    assert float(row["predicted_elastic_tensor_46"]) == pytest.approx(c[1, 2, 0, 1], rel=1e-5)


def test_resume_from_last_checkpoint(tmp_path):
    # A constant learning rate: OneCycleLR's step count is fixed by the first run's max_epochs,
    # so a resumed OneCycle run must keep max_epochs (as after an interruption).
    run(train_config(tmp_path, "cgcnn", "scheduler=none"))
    first = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    run(train_config(tmp_path, "cgcnn", "scheduler=none", "trainer.max_epochs=3", "ckpt_path=last"))
    resumed = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    assert first["epoch"] == 0
    assert resumed["loops"]["fit_loop"]["epoch_progress"]["total"]["started"] == 3
    assert resumed["global_step"] == first["global_step"] + 4


def test_write_split_writes_the_split_a_run_trains_on(tmp_path):
    """``write_split`` (the equal-budget benchmark's ``--split-only``) draws the same
    ``split.json``, byte for byte, as the training run with the same config."""
    from matgnn.training.run import write_split

    run(train_config(tmp_path / "run", "cgcnn", "seed=3"))
    write_split(train_config(tmp_path / "alone", "cgcnn", "seed=3"), tmp_path / "split.json")
    trained = (tmp_path / "run" / "split.json").read_bytes()
    assert (tmp_path / "split.json").read_bytes() == trained
    write_split(train_config(tmp_path / "other", "cgcnn", "seed=4"), tmp_path / "other.json")
    assert (tmp_path / "other.json").read_bytes() != trained


class Killed(Exception):
    pass


class KillAtEpoch(L.Callback):
    """Dies at the start of epoch ``epoch``, as a killed job would (no end-of-training save)."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        if trainer.current_epoch == self.epoch:
            raise Killed(f"killed at epoch {self.epoch}")


def test_last_checkpoint_is_the_latest_epoch_when_a_run_dies(tmp_path):
    """best.ckpt monitors the epoch number (min), so it improves only at epoch 0; the run
    dies at the start of epoch 2. last.ckpt, what the run resumes from, must be epoch 1's."""
    cfg = train_config(
        tmp_path,
        "cgcnn",
        "scheduler=none",
        "trainer.max_epochs=4",
        "callbacks.checkpoint.monitor=epoch",
        "+callbacks.kill._target_=tests.training.test_train.KillAtEpoch",
        "+callbacks.kill.epoch=2",
    )
    with pytest.raises(Killed):
        run(cfg)
    best = torch.load(tmp_path / "checkpoints" / "best.ckpt", weights_only=True)
    last = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    assert best["global_step"] == 2  # 2 batches per epoch (limit_train_batches)
    assert last["global_step"] == 4
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == [
        "best.ckpt",
        "last.ckpt",
    ]


def test_a_tensor_task_on_an_invariant_model_fails_before_building_graphs(tmp_path):
    cfg = train_config(tmp_path, "cgcnn", "task=dielectric_sample")
    with pytest.raises(Exception, match="needs an equivariant backbone") as error:
        run(cfg)
    assert not (tmp_path / "cache").exists() and "TensorHead" in str(error.value)


def test_a_resumed_run_tests_only_a_best_checkpoint_of_its_own_folder(tmp_path):
    """Lightning restores the best checkpoint's path from the resumed file's callback state and
    tests it after training: a path outside the resumed file's folder is refused before
    anything trains."""
    from matgnn.checkpoints.files import CheckpointError

    run(train_config(tmp_path, "cgcnn", "scheduler=none"))
    last = tmp_path / "checkpoints" / "last.ckpt"
    state = torch.load(last, weights_only=True)
    elsewhere = tmp_path / "elsewhere.ckpt"
    elsewhere.write_bytes(last.read_bytes())
    states = [v for k, v in state["callbacks"].items() if k.startswith("ModelCheckpoint")]
    assert any(v.get("best_model_path") for v in states)
    for value in states:
        if value.get("best_model_path"):
            score = torch.tensor(-1e9)  # never beaten by the new epochs
            value.update(best_model_path=str(elsewhere), best_model_score=score,
                         best_k_models={str(elsewhere): score}, kth_value=score,
                         kth_best_model_path=str(elsewhere))  # fmt: skip
    torch.save(state, last)
    with pytest.raises(CheckpointError, match=r"last.ckpt: its checkpoint callback names the "
                       r"best checkpoint .*elsewhere.ckpt, outside"):  # fmt: skip
        run(train_config(tmp_path, "cgcnn", "scheduler=none", "trainer.max_epochs=2",
                         "ckpt_path=last"))  # fmt: skip


def test_resume_refuses_a_checkpoint_of_another_model(tmp_path):
    run(train_config(tmp_path, "cgcnn", "scheduler=none"))
    other = train_config(tmp_path, "cgcnn", "scheduler=none", "ckpt_path=last")
    other.model.backbone.num_layers = 2
    with pytest.raises(ValueError, match="another model config"):
        run(other)


def matgnn_train(
    cwd: Path, *overrides: str, multirun: bool = False, bar_off: bool = True
) -> subprocess.CompletedProcess:
    """``python -m matgnn.train`` as a user runs it, in ``cwd`` (configs come from the
    installed package, not the working directory); ``bar_off=False`` leaves the progress bar
    to matgnn's own choice (on a terminal only)."""
    command = [
        sys.executable,
        "-m",
        "matgnn.train",
        *(["-m"] if multirun else []),
        "task.data.source.limit=60",
        "task.data.batch_size=16",
        "+trainer.limit_train_batches=2",
        *(["+trainer.enable_progress_bar=false"] if bar_off else []),
        "paths.cache_dir=cache",
        *SMALL["cgcnn"],
        *overrides,
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=cwd)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def test_every_run_gets_its_own_folder_and_resume_continues_it(tmp_path):
    """Two plain runs get two time-stamped folders (run_name); `resume=<folder>` continues the
    named run in place from its last.ckpt."""
    matgnn_train(tmp_path, "trainer.max_epochs=1", "run_name=first", "scheduler=none")
    matgnn_train(tmp_path, "trainer.max_epochs=1", "scheduler=none")
    runs = sorted(p.name for p in (tmp_path / "outputs" / "mp_sample_eform" / "cgcnn").iterdir())
    assert len(runs) == 2 and "first" in runs
    first = tmp_path / "outputs" / "mp_sample_eform" / "cgcnn" / "first"
    step = torch.load(first / "checkpoints" / "last.ckpt", weights_only=True)["global_step"]
    matgnn_train(tmp_path, f"resume={first}", "trainer.max_epochs=2", "scheduler=none")
    resumed = torch.load(first / "checkpoints" / "last.ckpt", weights_only=True)
    assert resumed["global_step"] == step + 2
    assert len(list(first.parent.iterdir())) == 2  # no third folder


def test_multirun_jobs_get_their_own_folders(tmp_path):
    """`-m seed=0,1`: each job its own subfolder with its own split.json and predictions."""
    matgnn_train(tmp_path, "seed=0,1", "trainer.max_epochs=1", "run_name=sweep", multirun=True)
    jobs = sorted((tmp_path / "multirun" / "sweep").glob("*_mp_sample_eform_cgcnn"))
    assert [j.name.split("_")[0] for j in jobs] == ["0", "1"]
    splits = [json.loads((j / "split.json").read_text())["test"] for j in jobs]
    assert splits[0] != splits[1]  # seeded differently, not overwritten
    for job, test_ids in zip(jobs, splits, strict=True):
        assert sorted(r["id"] for r in read_rows(job / "test_predictions.csv")) == sorted(test_ids)
        assert (job / "checkpoints" / "best.ckpt").is_file()


def test_checkpoint_rebuilds_the_model_and_predicts_a_folder(tmp_path, capsys):
    run(train_config(tmp_path, "cgcnn"))
    model = load_model(tmp_path / "checkpoints" / "last.ckpt")
    split_text = (tmp_path / "split.json").read_text()
    assert model.provenance["split_sha256"] == hashlib.sha256(split_text.encode()).hexdigest()
    assert model.provenance["task"] == "mp_sample_eform"
    assert model.provenance["targets"] == {"formation_energy_per_atom": "formation_energy_per_atom"}
    assert model.provenance["matgnn_version"] == matgnn.__version__
    assert model.graph_config() == GraphConfig.preset("cgcnn")
    folder = tmp_path / "inputs"
    folder.mkdir()
    _, structures = mp_sample_structures(3)
    for i, structure in enumerate(structures):
        structure.to(filename=str(folder / f"good_{i}.cif"))
    structures[0].to(filename=str(folder / "POSCAR_good"), fmt="poscar")
    (folder / "empty.cif").write_text("")
    (folder / "notes.txt").write_text("this is not a crystal\n")
    overlapping = Structure(Lattice.cubic(4.0), ["Na", "Cl"], [[0, 0, 0], [0.001, 0, 0]])
    overlapping.to(filename=str(folder / "overlap.cif"))
    flat = Structure(Lattice([[4, 0, 0], [0, 4, 0], [4, 4, 0]]), ["Na"], [[0, 0, 0]])
    flat.to(filename=str(folder / "zero_volume.POSCAR"), fmt="poscar")
    output = tmp_path / "predictions.csv"
    code = predict_main(
        [f"ckpt={tmp_path / 'checkpoints' / 'last.ckpt'}", f"input={folder}", f"output={output}"]
    )
    printed = capsys.readouterr().out
    assert code == 1
    table = read_rows(output)
    train_columns = list(read_rows(tmp_path / "test_predictions.csv")[0])
    assert list(table[0]) == [
        *(c for c in train_columns if c.startswith(("id", "predicted_"))),
        "unseen_elements",  # the checkpoint records its training elements
    ]
    rows = {r["id"]: float(r["predicted_formation_energy_per_atom"]) for r in table}
    assert set(rows) == {"good_0.cif", "good_1.cif", "good_2.cif", "POSCAR_good"}
    for bad in ("empty.cif", "notes.txt", "overlap.cif", "zero_volume.POSCAR"):
        assert f"rejected {bad}:" in printed
    assert "Traceback" not in printed
    direct = model.predict(structures)["formation_energy_per_atom"]
    assert rows["good_1.cif"] == pytest.approx(float(direct[1]), rel=1e-5)
    assert rows["POSCAR_good"] == pytest.approx(rows["good_0.cif"], rel=1e-5)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["ckpt=x.ckpt"], "missing input"),
        (["ckpt=x.ckpt", "input=.", "outptu=p.csv"], "unknown argument 'outptu=p.csv'"),
        (["ckpt=x.ckpt", "input=.", "--verbose"], "unknown argument '--verbose'"),
        (["ckpt=no_such.ckpt", "input=."], "neither a checkpoint file nor a pretrained model"),
        (["ckpt=x.ckpt", "input=.", "batch_size=0"], "batch_size"),
    ],
)
def test_predict_rejects_bad_arguments(argv, message, capsys):
    assert predict_main(argv) == 2
    assert message in capsys.readouterr().err


def test_predict_refuses_an_empty_input_folder(tmp_path, capsys):
    assert predict_main(["ckpt=cgcnn_mp2018_eform", f"input={tmp_path}"]) == 2
    assert f"input folder {tmp_path} holds no files" in capsys.readouterr().err


def _records_with(bad_target: float, bad_cif: str) -> Records:
    ids, structures = mp_sample_structures(20)
    cifs = [s.to(fmt="cif") for s in structures]
    targets = np.linspace(-1.0, 1.0, 20)
    targets[3] = bad_target
    cifs[5] = bad_cif
    return Records(ids, cifs, {"y": targets}, name="bad_rows")


def test_bad_rows_are_reported_by_id_and_never_trained_on():
    records = _records_with(float("nan"), "data_broken\n_cell_length_a 1\n")
    outputs = [ScalarOutput("y")]
    data = CrystalDataModule(
        lambda: records, GraphConfig.preset("cgcnn"), outputs, skip_invalid=True
    )
    data.setup()
    assert set(data.rejected) == {records.ids[3], records.ids[5]}
    assert "nan" in data.rejected[records.ids[3]]
    kept = {g.sample_id for subset in data.subsets.values() for g in subset}
    assert len(kept) == 18 and records.ids[3] not in kept and records.ids[5] not in kept

    strict = CrystalDataModule(
        lambda: records, GraphConfig.preset("cgcnn"), outputs, skip_invalid=False
    )
    with pytest.raises(ValueError, match=records.ids[3]):
        strict.setup()


@pytest.mark.parametrize("override", ["model=no_such_model", "task=no_such_task"])
def test_unknown_names_give_hydra_errors(override):
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        with pytest.raises(MissingConfigException):
            compose(config_name="train", overrides=[override])


# the embedded task of each kind of output (an experiment's own data set is not in a clone)
EMBEDDED_TASK = {
    ScalarOutput: "mp_sample_eform",
    ClassOutput: "mp_sample_is_metal",
    SpectrumOutput: "phonon_dos_sample",
    TensorOutput: "dielectric_sample",
    ElasticTensorOutput: "elastic_sample",
}


def experiment_model(name: str) -> str:
    """The model an experiment overrides, or that of the experiment it extends."""
    text = (CONFIG_DIR / "experiment" / f"{name}.yaml").read_text()
    if "override /model:" in text:
        return text.split("override /model:")[1].split()[0]
    parent = text.split("defaults:")[1].split("- ")[1].split()[0]
    return experiment_model(parent)


@pytest.mark.parametrize("experiment", group_options("experiment"))
def test_smoke_run_every_experiment(tmp_path, experiment):
    """Each experiment with its model, optimiser and schedule, on the embedded task of its task
    type (its own data set is not part of a fresh clone), narrowed and cut to two batches."""
    model = experiment_model(experiment)
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(
            config_name="train", overrides=[f"experiment={experiment}", "paths.output_dir=x"]
        )
    kind = type(task_outputs(cfg)[0])
    task = EMBEDDED_TASK[kind]
    if model in DESCRIPTOR_MODELS:  # needs prototype site labels: the shipped Ye tables
        task = "ye2018_perovskite_sample"
        if "unmixed" in experiment:
            task += " task.data.source.mixed=false"
        if "garnet" in experiment:  # the shipped mp36k garnets
            task = "ye2018_garnet_unmixed"
    cfg = train_config(tmp_path, model, f"experiment={experiment}", *f"task={task}".split())
    metrics = run(cfg)
    assert metrics and all(np.isfinite(v) for v in metrics.values())
    assert (tmp_path / "checkpoints" / "last.ckpt").is_file()


def test_tensorboard_logger_writes_event_files(tmp_path):
    run(train_config(tmp_path, "cgcnn", "logger=tensorboard"))
    assert list((tmp_path / "tensorboard").rglob("events.out.tfevents.*"))


def test_ddp_on_two_cpu_processes_writes_every_test_crystal_once(tmp_path):
    """``trainer=ddp`` as shipped (Lightning's subprocess launcher re-runs the command, so it
    runs as a command, not inside pytest), on 2 CPU processes with gloo. Each process tests a
    shard; the predictions CSV must hold every test crystal of split.json exactly once.
    Training batches are capped in rows (``task.data.max_batch_rows``): Lightning puts its
    DistributedSampler into the capped batch sampler and both processes step as often (a
    process with fewer batches would wait forever in the gradient all-reduce)."""
    command = [
        sys.executable,
        "-m",
        "matgnn.train",
        "trainer=ddp",
        "trainer.accelerator=cpu",
        "trainer.devices=2",
        "trainer.max_epochs=1",
        "+trainer.limit_train_batches=2",
        "+trainer.enable_progress_bar=false",
        "task.data.source.limit=60",
        "task.data.batch_size=8",
        "task.data.max_batch_rows=4000",
        f"hydra.run.dir={tmp_path}",  # the run folder (paths.output_dir follows it)
        f"paths.cache_dir={tmp_path / 'cache'}",
        *SMALL["cgcnn"],
    ]
    # a clean launch: no rendezvous or cluster variables inherited from the calling shell
    launcher = ("MASTER_ADDR", "MASTER_PORT", "WORLD_SIZE", "RANK", "LOCAL_RANK", "NODE_RANK")
    env = {k: v for k, v in os.environ.items() if k not in launcher and not k.startswith("SLURM_")}
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=600, cwd=tmp_path, env=env
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "distributed_backend=gloo" in result.stderr + result.stdout
    capped = re.findall(
        r"capped at 4000 feature rows: (\d+) batches per epoch for process (\d) of 2",
        result.stderr + result.stdout,
    )
    assert sorted(rank for _, rank in capped) == ["0", "1"], capped
    assert len({count for count, _ in capped}) == 1, capped
    test_ids = json.loads((tmp_path / "split.json").read_text())["test"]
    with open(tmp_path / "test_predictions.csv") as handle:
        predicted = [row["id"] for row in csv.DictReader(handle)]
    assert len(test_ids) == 6
    assert sorted(predicted) == sorted(test_ids)


def test_bf16_mixed_precision_trains_and_predicts_in_float32(tmp_path):
    metrics = run(train_config(tmp_path, "alignn", "trainer.precision=bf16-mixed"))
    assert np.isfinite(metrics["test_formation_energy_per_atom_mae"])
    rows = read_rows(tmp_path / "test_predictions.csv")
    predicted = [float(r["predicted_formation_energy_per_atom"]) for r in rows]
    # float32 predictions: bf16 would round every value to 8 significant bits
    bf16_rounded = torch.tensor(predicted).bfloat16().float().tolist()
    assert any(abs(a - b) > 0 for a, b in zip(predicted, bf16_rounded, strict=True))


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _ddp_command(run_dir: Path, cache: Path, *overrides: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "matgnn.train",
        "+trainer.enable_progress_bar=false",
        "task.data.source.limit=70",
        "task.data.batch_size=8",
        "+trainer.limit_train_batches=2",
        "trainer.max_epochs=1",
        "scheduler=none",
        f"hydra.run.dir={run_dir}",
        f"paths.cache_dir={cache}",
        *SMALL["cgcnn"],
        *overrides,
    ]


def test_two_nodes_over_gloo_test_every_crystal_once_with_one_process_s_metrics(tmp_path):
    """The multi-node recipe on one machine: 2 nodes x 1 process, started by hand as a
    launcher would (``MASTER_ADDR``, ``MASTER_PORT``, ``NODE_RANK``, ``LOCAL_RANK``), over
    gloo, with the disk graph store. The checkpoint of a one-process run is tested again by the
    two nodes: 7 test crystals (odd, so a padding sampler would repeat one), each counted once,
    the same MAE and predictions as the one process."""
    cache = tmp_path / "cache"
    single = tmp_path / "single"
    result = subprocess.run(
        _ddp_command(single, cache, "task.data.store=disk"),
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    expected = json.loads((single / "test_metrics.json").read_text())
    test_ids = json.loads((single / "split.json").read_text())["test"]
    assert len(test_ids) == 7
    nodes = tmp_path / "nodes"
    port = str(_free_port())
    command = _ddp_command(
        nodes,
        cache,
        "task.data.store=disk",
        "trainer=ddp",
        "trainer.accelerator=cpu",
        "trainer.devices=1",
        "trainer.num_nodes=2",
        f"ckpt_path={single}/checkpoints/last.ckpt",
    )
    processes = [
        subprocess.Popen(
            command,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={
                **os.environ,
                "MASTER_ADDR": "127.0.0.1",
                "MASTER_PORT": port,
                "NODE_RANK": str(rank),
                "LOCAL_RANK": "0",
                "WORLD_SIZE": "2",
            },
        )
        for rank in (0, 1)
    ]
    outputs = [p.communicate(timeout=600)[0] for p in processes]
    assert [p.returncode for p in processes] == [0, 0], outputs[0][-3000:] + outputs[1][-3000:]
    assert "distributed_backend=gloo" in outputs[0] and "GLOBAL_RANK: 1" in outputs[1]
    got = json.loads((nodes / "test_metrics.json").read_text())
    key = "test_formation_energy_per_atom_mae"
    assert got[key] == pytest.approx(expected[key], rel=1e-5)
    assert got["test_loss"] == pytest.approx(expected["test_loss"], rel=1e-5)
    rows = {r["id"]: r for r in read_rows(nodes / "test_predictions.csv")}
    reference = {r["id"]: r for r in read_rows(single / "test_predictions.csv")}
    assert sorted(rows) == sorted(test_ids) == sorted(reference)
    for sid, row in reference.items():
        column = "predicted_formation_energy_per_atom"
        assert float(rows[sid][column]) == pytest.approx(float(row[column]), rel=1e-5)
