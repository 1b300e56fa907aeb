"""``python -m matgnn.matbench``: bad requests refused in one line (exit 2, nothing written),
folds trained and recorded, recorded folds skipped, a killed fold resumed from last.ckpt.

Runs on the shipped partial copy of matbench_phonons (tests/matbench/data, 80 real rows), so no
``../shared`` is needed; the complete-copy recording path is tested in test_submission.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from omegaconf import OmegaConf, open_dict

from matgnn.checkpoints.files import load_model
from matgnn.config_dir import CONFIG_DIR
from matgnn.matbench import MatbenchData, runner
from matgnn.matbench.submission import INFO, NOT_A_SUBMISSION, PARTIAL_SCORES, RESULTS, read_results
from tests.matbench import DATA
from tests.models.helpers import SMALL

FAST = [
    "task.data.batch_size=16",
    "trainer.max_epochs=1",
    "+trainer.limit_train_batches=2",
    "+trainer.enable_progress_bar=false",
    *SMALL["cgcnn"],
]


def matbench_cli(cwd: Path, *overrides: str, env: dict | None = None):
    command = [sys.executable, "-m", "matgnn.matbench", "paths.cache_dir=cache", *overrides]
    return subprocess.run(
        command, capture_output=True, text=True, timeout=600, cwd=cwd, env=env or os.environ.copy()
    )


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["task=matbench_nonsense"], "unknown task 'matbench_nonsense'; Matbench tasks: ["),
        (["task=matbench_steels"], "matbench_steels is a composition task"),
        (["task=mp2018_eform"], "task 'mp2018_eform' is not a Matbench task"),
        (["model=schnet"], "unknown model 'schnet'"),
        (["folds=[0,5]"], "fold(s) [5] out of range: matbench_phonons has folds 0-4"),
        (["folds=[]"], "fold(s) [] out of range"),
        (["unpredictable=sometimes"], "unpredictable='sometimes'; choose one of"),
        (["task.data.source.sample=40"], "task.data.source.sample=40: the Matbench runner takes"),
    ],
)
def test_bad_request_is_one_line_exit_2_and_writes_nothing(tmp_path, overrides, message):
    result = matbench_cli(tmp_path, f"paths.data_dir={DATA}", *overrides)
    assert result.returncode == 2, result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines
    assert list(tmp_path.iterdir()) == []


def test_missing_local_copy_and_no_network_is_one_line_exit_2(tmp_path):
    """No copy in data_dir: matbench's loader tries to download, which fails here (a dead proxy
    stands in for no network, so the test means the same on a connected machine)."""
    work = tmp_path / "work"
    work.mkdir()
    env = os.environ.copy()
    dead = "http://127.0.0.1:9"
    env.update(HTTP_PROXY=dead, HTTPS_PROXY=dead, http_proxy=dead, https_proxy=dead)
    env["MATMINER_DATA"] = str(tmp_path / "matminer")
    result = matbench_cli(
        work, "task=matbench_jdft2d", f"paths.data_dir={tmp_path / 'empty'}", env=env
    )
    assert result.returncode == 2, result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: matbench_jdft2d: no local copy in"), lines
    assert list(work.iterdir()) == []


def test_folds_are_recorded_skipped_when_done_and_partial_data_is_not_a_submission(tmp_path):
    common = [f"paths.data_dir={DATA}", "submission_root=subs", *FAST]
    result = matbench_cli(tmp_path, "folds=[0,1]", *common)
    assert result.returncode == 0, result.stderr[-3000:]
    root = tmp_path / "subs" / "matbench_v0.1_matgnn_cgcnn"
    task_dir = root / "matbench_phonons"
    records = {f: task_dir / f"fold_{f}" / "record.json" for f in range(3)}
    assert records[0].is_file() and records[1].is_file() and not records[2].exists()
    first = records[0].read_text()
    record = json.loads(first)
    assert record["complete_data"] is False
    assert record["rows"]["test_present"] == len(record["ids"]) == len(record["predictions"])
    assert record["rows"]["test_official"] == 253
    assert record["params"]["epochs_trained"] == 1
    for name in ("checkpoints/best.ckpt", "model.ckpt", "test_predictions.csv", "split.json"):
        assert (task_dir / "fold_0" / name).is_file(), name
    # the slim model.ckpt is the best model: its predictions are the recorded ones
    model = load_model(task_dir / "fold_0" / "model.ckpt")
    data = MatbenchData.load("matbench_phonons", DATA)
    predicted = runner.predict_fold(model, data, 0)
    ids, values, rejected = predicted.ids, predicted.values, predicted.rejected
    assert ids == record["ids"] and rejected == {}
    assert record["params"]["predicted_as_training_mean"] == {}
    np.testing.assert_allclose(values, record["predictions"], rtol=1e-6)
    assert (task_dir / "fold_0" / "model.ckpt").stat().st_size < 0.5 * (
        task_dir / "fold_0" / "checkpoints" / "best.ckpt"
    ).stat().st_size
    assert (task_dir / "learning_curves.png").is_file()
    assert (task_dir / "config.yaml").is_file() and (task_dir / "run.log").is_file()
    # partial copy: scored with matbench's metrics, labelled, and no results.json.gz
    assert not (root / RESULTS).exists()
    scores = json.loads((root / PARTIAL_SCORES).read_text())
    assert scores["WARNING"] == NOT_A_SUBMISSION
    assert scores["tasks"]["matbench_phonons"]["folds_recorded"] == [0, 1]
    assert scores["tasks"]["matbench_phonons"]["rows"] == {"present": 80, "official": 1265}
    info = json.loads((root / INFO).read_text())
    assert info["algorithm"] == "matgnn CGCNN"
    assert any(r.startswith("matbench==") for r in info["requirements"]["python"])
    assert set(info) == {
        "authors", "algorithm", "algorithm_long", "bibtex_refs", "notes", "requirements"
    }  # fmt: skip

    # a second run with more folds skips the recorded ones and leaves them untouched
    result = matbench_cli(tmp_path, "folds=[0,1,2]", *common)
    assert result.returncode == 0, result.stderr[-3000:]
    assert records[0].read_text() == first and records[2].is_file()
    assert "fold 0: already recorded, skipped" in (task_dir / "run.log").read_text()
    # another recipe cannot be mixed into the recorded folds
    result = matbench_cli(tmp_path, "folds=[3]", *common, "optimizer.lr=0.01")
    assert (
        result.returncode == 2
        and "holds folds recorded with another ['optimizer', 'scheduler']" in (result.stderr)
    )
    assert not (task_dir / "fold_3").exists()
    # nor a frozen backbone into folds trained whole
    result = matbench_cli(tmp_path, "folds=[3]", *common, "finetune.freeze=backbone")
    assert result.returncode == 2 and "another ['finetune']" in result.stderr
    # what only labels the results (units) is not part of the recipe
    result = matbench_cli(tmp_path, "folds=[0]", *common, "task.units=THz")
    assert result.returncode == 0, result.stderr[-3000:]


def compose_matbench(tmp_path: Path, *overrides: str):
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(
            config_name="matbench",
            overrides=[
                f"paths.data_dir={DATA}",
                f"paths.cache_dir={tmp_path / 'cache'}",
                f"submission_root={tmp_path / 'subs'}",
                *FAST,
                *overrides,
            ],
            return_hydra_config=True,
        )
    HydraConfig.instance().set_config(cfg)
    return cfg


def test_a_fold_killed_after_training_resumes_from_its_last_checkpoint(tmp_path, monkeypatch):
    def killed(*args, **kwargs):
        raise KeyboardInterrupt("killed after training")

    monkeypatch.setattr(runner, "predict_fold", killed)
    with pytest.raises(KeyboardInterrupt):
        runner.run_matbench(compose_matbench(tmp_path, "folds=[4]", "scheduler=none"))
    fold_dir = tmp_path / "subs" / "matbench_v0.1_matgnn_cgcnn" / "matbench_phonons" / "fold_4"
    assert (fold_dir / "checkpoints" / "last.ckpt").is_file()
    assert not (fold_dir / "record.json").exists()

    monkeypatch.undo()
    cfg = compose_matbench(tmp_path, "folds=[4]", "scheduler=none", "trainer.max_epochs=2")
    assert runner.fold_config(cfg, 4, fold_dir).ckpt_path == "last"
    runner.run_matbench(cfg)
    record = json.loads((fold_dir / "record.json").read_text())
    assert record["params"]["epochs_trained"] == 2  # one epoch before the kill, one after
    assert record["params"]["resumed_from_last_ckpt"] is True
    assert "resuming from" in (fold_dir.parent / "run.log").read_text()


def test_complete_copy_goes_through_training_to_a_valid_results_file(tmp_path, monkeypatch):
    """The complete-copy path end to end (train, get_test_data, record, results.json.gz): the
    shipped 80 phonons rows become a complete task by restricting matbench's official folds to
    them (5 folds of 16 test rows), in matbench itself, so its record/validate check them."""
    import matbench.metadata
    import matbench.task
    from matbench.util import RecursiveDotDict

    ids = MatbenchData.load("matbench_phonons", DATA).frame.index.tolist()
    splits = dict(matbench.metadata.mbv01_validation.splits)
    splits["matbench_phonons"] = {
        f"fold_{k}": {"train": [i for i in ids if i not in ids[k::5]], "test": ids[k::5]}
        for k in range(5)
    }
    small = RecursiveDotDict({**matbench.metadata.mbv01_validation, "splits": splits})
    monkeypatch.setattr(matbench.metadata, "mbv01_validation", small)
    monkeypatch.setattr(matbench.task, "mbv01_validation", small)

    folder = runner.run_matbench(compose_matbench(tmp_path, "scheduler=none"))
    assert not (folder.root / PARTIAL_SCORES).exists()
    benchmark = read_results(folder.root / RESULTS)
    assert benchmark.is_valid
    task = benchmark.tasks_map["matbench_phonons"]
    for fold in range(5):
        record = folder.read_record("matbench_phonons", fold)
        assert record.complete_data and record.ids == ids[fold::5]
        assert task.results[f"fold_{fold}"]["scores"]["mae"] == pytest.approx(record.scores["mae"])
        assert task.results[f"fold_{fold}"]["parameters"]["epochs_trained"] == 1
    assert benchmark.user_metadata["algorithm"] == "matgnn CGCNN"


def test_unpredictable_defaults_to_error_in_the_config_and_the_functions(tmp_path):
    """One default everywhere: the matbench config and predict_fold (run_matbench with a config
    without the key: the next test)."""
    import inspect

    assert runner.UNPREDICTABLE[0] == "error"
    assert compose_matbench(tmp_path).unpredictable == "error"
    default = inspect.signature(runner.predict_fold).parameters["unpredictable"].default
    assert default == "error"


def test_an_unpredictable_test_structure_fails_the_fold_or_gets_the_training_mean(
    tmp_path, monkeypatch
):
    """A test structure the model rejects (here the first, by a wrapped predict): by default
    (unpredictable=error) the fold stops with a one-line reason; with train_mean it is predicted
    as the fold's training mean, its id and reason are recorded, and it is a row of the fold's
    test_predictions.csv marked filled=train_mean (replacing the training run's row of it)."""
    import csv

    import matgnn.models.inference

    real_predict = matgnn.models.inference.predict

    def predict_rejecting_first(model, structures, names, **kwargs):
        result = real_predict(model, structures[1:], names[1:], **kwargs)
        result.rejected[names[0]] = f"{names[0]}: atom 0 has no neighbour (test)"
        return result

    monkeypatch.setattr(matgnn.models.inference, "predict", predict_rejecting_first)
    with pytest.raises(runner.MatbenchError, match="1 test structures could not be predicted"):
        runner.run_matbench(compose_matbench(tmp_path, "folds=[0]"))
    fold_dir = tmp_path / "subs" / "matbench_v0.1_matgnn_cgcnn" / "matbench_phonons" / "fold_0"
    assert not (fold_dir / "record.json").exists()
    cfg = compose_matbench(tmp_path, "folds=[0]")
    with open_dict(cfg):
        del cfg["unpredictable"]  # a config without the key: run_matbench's own default
    with pytest.raises(runner.MatbenchError, match="1 test structures could not be predicted"):
        runner.run_matbench(cfg)
    assert not (fold_dir / "record.json").exists()
    runner.run_matbench(compose_matbench(tmp_path, "folds=[0]", "unpredictable=train_mean"))
    record = json.loads((fold_dir / "record.json").read_text())
    first = record["ids"][0]
    assert list(record["params"]["predicted_as_training_mean"]) == [first]
    data = MatbenchData.load("matbench_phonons", DATA)
    train = data.fold_rows(0).train
    mean = np.mean(data.targets(train))
    assert record["predictions"][0] == pytest.approx(mean)
    assert len(set(record["predictions"])) > 1  # the others are the model's

    with open(fold_dir / "test_predictions.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert sorted(r["id"] for r in rows) == sorted(record["ids"])  # every scored row, once
    filled = [r for r in rows if r["filled"]]
    assert [r["id"] for r in filled] == [first] and filled[0]["filled"] == "train_mean"
    assert float(filled[0]["predicted_last_phdos_peak"]) == pytest.approx(mean)
    assert float(filled[0]["last_phdos_peak"]) == pytest.approx(data.targets([first])[0])
    predictions = dict(zip(record["ids"], record["predictions"], strict=True))
    for row in rows[:-1]:
        assert float(row["predicted_last_phdos_peak"]) == pytest.approx(predictions[row["id"]])


def test_a_run_with_uncertainty_records_the_calibrated_std_and_ood_scores(tmp_path):
    result = matbench_cli(
        tmp_path,
        f"paths.data_dir={DATA}",
        "submission_root=subs",
        "folds=[0]",
        "uncertainty=mc_dropout",
        "uncertainty.passes=4",
        *FAST,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    fold_dir = tmp_path / "subs" / "matbench_v0.1_matgnn_cgcnn" / "matbench_phonons" / "fold_0"
    record = json.loads((fold_dir / "record.json").read_text())
    assert len(record["std"]) == len(record["predictions"]) and min(record["std"]) > 0
    calibration = record["params"]["uncertainty"]["calibration"]["last_phdos_peak"]
    assert calibration["std_scale"] > 0
    # the slim model.ckpt keeps the estimator: the recorded stds come back from it
    from matgnn.uncertainty import load_uncertain_model

    model = load_uncertain_model(fold_dir / "model.ckpt")
    predicted = runner.predict_fold(model, MatbenchData.load("matbench_phonons", DATA), 0)
    np.testing.assert_allclose(predicted.std, record["std"], rtol=1e-6)
    np.testing.assert_allclose(predicted.values, record["predictions"], rtol=1e-6)
    # every test crystal's ood score in the record's params, in the record's order
    scores = record["params"]["ood_score"]
    assert len(scores) == len(record["ids"]) and min(scores) > 0
    np.testing.assert_allclose(predicted.ood_score, scores, rtol=1e-5)
    assert record["params"]["ood_threshold"] > 1


def test_the_recipe_reads_missing_finetune_settings_as_their_defaults():
    """Folds recorded before a fine-tuning setting existed compare as its default; the feature
    cache is not part of the recipe (a cached run equals the uncached one)."""
    from omegaconf import OmegaConf

    base = {"model": {}, "optimizer": {}, "scheduler": None, "seed": 0, "trainer": {}, "task": {}}
    old = OmegaConf.create(base)
    new = OmegaConf.create(
        {**base, "finetune": {**runner.FINETUNE_DEFAULTS, "cache_features": "true"}}
    )
    assert runner._recipe(old) == runner._recipe(new)
    frozen = OmegaConf.create({**base, "finetune": {"freeze": "backbone"}})
    assert runner._recipe(frozen)["finetune"]["freeze"] == "backbone"


def test_the_caches_and_the_name_of_the_data_copy_are_not_part_of_the_recipe(tmp_path, monkeypatch):
    """Folds recorded with one cache are continued with another, and from the same data copy
    named another way (relative or absolute); another copy (its rows may differ) is another
    recipe. A fold recorded before the source's ``sample`` setting existed had its default
    (the runner refuses a sample)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    recorded = runner._recipe(compose_matbench(tmp_path, "paths.data_dir=data"))
    same = compose_matbench(tmp_path, f"paths.data_dir={tmp_path / 'data'}", "paths.cache_dir=/c")
    assert runner._recipe(same) == recorded
    another = compose_matbench(tmp_path, f"paths.data_dir={tmp_path / 'other'}")
    assert runner._recipe(another)["task"] != recorded["task"]
    older = OmegaConf.to_container(compose_matbench(tmp_path, "paths.data_dir=data"), resolve=True)
    for key in ("sample", "sample_seed"):
        del older["task"]["data"]["source"][key]
    assert runner._recipe(OmegaConf.create(older)) == recorded
    other = runner._recipe(
        compose_matbench(tmp_path, "paths.data_dir=data", "task.data.batch_size=32")
    )
    assert other["task"] != recorded["task"]
