"""Smoke-train every model on the embedded task, resume from a checkpoint, predict from files,
and reject bad rows by id."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.errors import MissingConfigException
from pymatgen.core import Lattice, Structure

from matgnn import load_model
from matgnn.config_dir import CONFIG_DIR, group_options
from matgnn.data import CrystalDataModule, Records
from matgnn.graphs import GraphConfig
from matgnn.predict import main as predict_main
from matgnn.samples import mp_sample_structures
from matgnn.train import run
from tests.models.helpers import SMALL


def train_config(tmp_path: Path, model: str, *extra: str):
    overrides = [
        f"model={model}",
        f"paths.output_dir={tmp_path}",
        f"paths.cache_dir={tmp_path / 'cache'}",
        "task.data.source.limit=60",
        "task.data.batch_size=16",
        "trainer.max_epochs=1",
        "+trainer.limit_train_batches=2",
        "+trainer.enable_progress_bar=false",
        *SMALL[model],
        *extra,
    ]
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose(config_name="train", overrides=overrides)


@pytest.mark.parametrize("model", list(SMALL))
def test_smoke_train_every_model(tmp_path, model):
    metrics = run(train_config(tmp_path, model))
    assert np.isfinite(metrics["test_mae"])
    assert (tmp_path / "checkpoints" / "last.ckpt").is_file()
    assert (tmp_path / "test_parity.png").stat().st_size > 1000
    with open(tmp_path / "test_predictions.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 6 and rows[0]["id"].startswith("mp-")


@pytest.mark.parametrize("model", list(SMALL))
def test_smoke_train_every_model_on_classification(tmp_path, model):
    metrics = run(train_config(tmp_path, model, "task=mp_sample_is_metal"))
    assert 0.0 <= metrics["test_roc_auc"] <= 1.0 and 0.0 <= metrics["test_accuracy"] <= 1.0
    checkpoint = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    head = checkpoint["hyper_parameters"]["model"]["heads"]["y"]
    assert head["_target_"] == "matgnn.heads.ClassificationHead"
    with open(tmp_path / "test_predictions.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert rows and all(0.0 <= float(r["predicted_is_metal"]) <= 1.0 for r in rows)
    assert {r["is_metal"] for r in rows} <= {"0.0", "1.0"}


@pytest.mark.parametrize("model", list(SMALL))
def test_smoke_train_every_model_on_phonon_dos(tmp_path, model):
    metrics = run(train_config(tmp_path, model, "task=phonon_dos_sample"))
    assert np.isfinite(metrics["test_emd"]) and np.isfinite(metrics["test_mae"])
    assert (tmp_path / "test_dos.png").stat().st_size > 5000
    with open(tmp_path / "test_predictions.csv") as handle:
        rows = list(csv.DictReader(handle))
    predicted = np.array([[float(r[f"predicted_phdos_{k}"]) for k in range(51)] for r in rows])
    assert (predicted >= 0).all()
    np.testing.assert_allclose(predicted.max(axis=1), 1.0, rtol=1e-5)
    model_back = load_model(tmp_path / "checkpoints" / "last.ckpt")
    assert type(model_back.heads["y"]).__name__ == "VectorHead"


def test_resume_from_last_checkpoint(tmp_path):
    # A constant learning rate: OneCycleLR's step count is fixed by the first run's max_epochs,
    # so a resumed OneCycle run must keep max_epochs (as after an interruption).
    run(train_config(tmp_path, "cgcnn", "scheduler=none"))
    first = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    run(train_config(tmp_path, "cgcnn", "scheduler=none", "trainer.max_epochs=3", "ckpt_path=last"))
    resumed = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    assert first["epoch"] == 0 and resumed["epoch"] == 2
    assert resumed["global_step"] == first["global_step"] + 4


def test_checkpoint_rebuilds_the_model_and_predicts_a_folder(tmp_path, capsys):
    run(train_config(tmp_path, "cgcnn"))
    model = load_model(tmp_path / "checkpoints" / "last.ckpt")
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
    with open(output) as handle:
        rows = {r["file"]: float(r["prediction"]) for r in csv.DictReader(handle)}
    assert set(rows) == {"good_0.cif", "good_1.cif", "good_2.cif", "POSCAR_good"}
    for bad in ("empty.cif", "notes.txt", "overlap.cif", "zero_volume.POSCAR"):
        assert f"rejected {bad}:" in printed
    assert "Traceback" not in printed
    direct = model.predict(structures)
    assert rows["good_1.cif"] == pytest.approx(float(direct.values[1]), rel=1e-5)
    assert rows["POSCAR_good"] == pytest.approx(rows["good_0.cif"], rel=1e-5)


def _records_with(bad_target: float, bad_cif: str) -> Records:
    ids, structures = mp_sample_structures(20)
    cifs = [s.to(fmt="cif") for s in structures]
    targets = np.linspace(-1.0, 1.0, 20)
    targets[3] = bad_target
    cifs[5] = bad_cif
    return Records(ids, cifs, targets, name="bad_rows")


def test_bad_rows_are_reported_by_id_and_never_trained_on():
    records = _records_with(float("nan"), "data_broken\n_cell_length_a 1\n")
    data = CrystalDataModule(lambda: records, GraphConfig.preset("cgcnn"), skip_invalid=True)
    data.setup()
    assert set(data.rejected) == {records.ids[3], records.ids[5]}
    assert "nan" in data.rejected[records.ids[3]]
    kept = {g.sample_id for subset in data.subsets.values() for g in subset}
    assert len(kept) == 18 and records.ids[3] not in kept and records.ids[5] not in kept

    strict = CrystalDataModule(lambda: records, GraphConfig.preset("cgcnn"), skip_invalid=False)
    with pytest.raises(ValueError, match=records.ids[3]):
        strict.setup()


@pytest.mark.parametrize("override", ["model=no_such_model", "task=no_such_task"])
def test_unknown_names_give_hydra_errors(override):
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        with pytest.raises(MissingConfigException):
            compose(config_name="train", overrides=[override])


EMBEDDED_TASK = {
    "regression": "mp_sample_eform",
    "classification": "mp_sample_is_metal",
    "dos": "phonon_dos_sample",
}


def experiment_model(name: str) -> str:
    text = (CONFIG_DIR / "experiment" / f"{name}.yaml").read_text()
    return text.split("override /model:")[1].split()[0]


@pytest.mark.parametrize("experiment", group_options("experiment"))
def test_smoke_run_every_experiment(tmp_path, experiment):
    """Each experiment with its model, optimiser and schedule, on the embedded task of its task
    type (its own data set is not part of a fresh clone), narrowed and cut to two batches."""
    model = experiment_model(experiment)
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        task_type = compose(
            config_name="train", overrides=[f"experiment={experiment}", "paths.output_dir=x"]
        ).task.task_type
    cfg = train_config(
        tmp_path, model, f"experiment={experiment}", f"task={EMBEDDED_TASK[task_type]}"
    )
    metrics = run(cfg)
    assert metrics and all(np.isfinite(v) for v in metrics.values())
    assert (tmp_path / "checkpoints" / "last.ckpt").is_file()


def test_tensorboard_logger_writes_event_files(tmp_path):
    run(train_config(tmp_path, "cgcnn", "logger=tensorboard"))
    assert list((tmp_path / "tensorboard").rglob("events.out.tfevents.*"))


def test_ddp_on_two_cpu_processes_writes_every_test_crystal_once(tmp_path):
    """``trainer=ddp`` as shipped (Lightning's subprocess launcher re-runs the command, so it
    runs as a command, not inside pytest), on 2 CPU processes with gloo. Each process tests a
    shard; the predictions CSV must hold every test crystal of split.json exactly once."""
    import json
    import subprocess
    import sys

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
        f"paths.output_dir={tmp_path}",
        f"paths.cache_dir={tmp_path / 'cache'}",
        *SMALL["cgcnn"],
    ]
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=600, cwd=Path(__file__).parents[2]
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "distributed_backend=gloo" in result.stderr + result.stdout
    test_ids = json.loads((tmp_path / "split.json").read_text())["test"]
    with open(tmp_path / "test_predictions.csv") as handle:
        predicted = [row["id"] for row in csv.DictReader(handle)]
    assert len(test_ids) == 6
    assert sorted(predicted) == sorted(test_ids)
