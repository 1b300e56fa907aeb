"""``python -m matgnn.train ... uncertainty=<estimator>`` end to end on the embedded tasks: the
run calibrates on its validation split, reports, stores estimator and calibration in
``best.ckpt``; predict writes std columns; bad requests fail before anything is written."""

from __future__ import annotations

import csv
import json
import logging
import shutil

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from pymatgen.core import Structure

from matgnn.checkpoints.files import load_model, read_checkpoint
from matgnn.config_dir import CONFIG_DIR
from matgnn.data.samples import mp_sample_frame, mp_sample_structures
from matgnn.predict import main as predict_main
from matgnn.train import run
from matgnn.uncertainty import Ensemble, MCDropout, MeanVariance, load_uncertain_model
from matgnn.uncertainty.estimators import LatentDistanceEstimator
from tests.models.helpers import SMALL
from tests.training.test_train import train_config


def config(tmp_path, *extra: str):
    return train_config(tmp_path, "cgcnn", *extra)


def rows(path):
    with open(path) as handle:
        return list(csv.DictReader(handle))


@pytest.mark.parametrize(
    ("task", "uncertainty", "estimator", "columns"),
    [
        ("mp_sample_eform", ["uncertainty=mc_dropout"], MCDropout, "std_formation_energy_per_atom"),
        (  # with split-conformal intervals (6 validation crystals: enough for 0.8)
            "mp_sample_eform",
            ["uncertainty=mean_variance", "uncertainty.coverage=0.8"],
            MeanVariance,
            "aleatoric_std_formation_energy_per_atom",
        ),
        (
            "mp_sample_is_metal",
            ["uncertainty=ensemble", "uncertainty.size=2"],
            Ensemble,
            "mutual_information_is_metal",
        ),
        (  # the std from the latent distance to the training crystals
            "mp_sample_eform",
            ["uncertainty=latent_distance"],
            LatentDistanceEstimator,
            "epistemic_std_formation_energy_per_atom",
        ),
        (  # Lakshminarayanan et al.'s full recipe, members with a variance head, and its
            # std made distance-aware
            "mp_sample_eform",
            [
                "uncertainty=ensemble",
                "uncertainty.size=2",
                "uncertainty.variance_head=true",
                "uncertainty.distance_std=true",
            ],
            Ensemble,
            "aleatoric_std_formation_energy_per_atom",
        ),
    ],
)
def test_a_run_with_uncertainty_calibrates_reports_and_stores_it(
    tmp_path, task, uncertainty, estimator, columns
):
    out = tmp_path / "run"
    metrics = run(config(out, f"task={task}", *uncertainty))
    report = json.loads((out / "uncertainty_metrics.json").read_text())
    assert set(report["test"]) == {"uncalibrated", "calibrated", "ood"}
    (name,) = report["uncertainty"]["calibration"]
    parameter = dict(report["uncertainty"]["calibration"][name])
    conformal = parameter.pop("conformal", None)
    assert (conformal is not None) == ("uncertainty.coverage=0.8" in uncertainty)
    assert set(parameter) == ({"temperature"} if task.endswith("is_metal") else {"std_scale"})
    assert all(np.isfinite(v) and v > 0 for v in parameter.values())
    test = report["test"]["calibrated"][name]
    assert metrics[f"test_{name}_{next(iter(test))}_calibrated"] == test[next(iter(test))]
    if "std_scale" in parameter:
        assert 0 <= test["coverage_95"] <= 1 and np.isfinite(test["nll"])
    assert (out / f"test_calibration_{name}.png").stat().st_size > 5_000
    table = rows(out / "test_uncertainty.csv")
    assert table and columns in table[0] and name in table[0]  # the target column too
    # the test crystals' elements that the training split lacks (space-separated, or empty)
    seen = set(load_model(out / "checkpoints" / "best.ckpt").provenance["elements"])
    frame = mp_sample_frame().set_index("mp_id")
    for row in table:
        symbols = {
            e.symbol for e in Structure.from_str(frame.at[row["id"], "cif"], "cif").composition
        }
        assert set(row["unseen_elements"].split()) == symbols - seen, row["id"]
    # every crystal's ood score, in units of the median validation distance
    scores = np.array([float(row["ood_score"]) for row in table])
    assert np.all(scores > 0) and np.isfinite(scores).all()
    if not task.endswith("is_metal"):
        ood = report["test"]["ood"][name]
        assert -1 <= ood["spearman"] <= 1 and 0 <= ood["auroc_worst_decile"] <= 1
        assert ood["flagged_fraction"] == pytest.approx(np.mean(scores > ood_threshold(out)))
    if conformal is not None:  # fitted on the 6 validation crystals, reported on the test ones
        assert conformal["coverage"] == 0.8 and conformal["scores"] == 6
        assert conformal["half_width"] > 0 and 0 <= test["interval_coverage"] <= 1
        for row in table:  # mean -+ half_width x the calibrated std
            lower, upper = float(row[f"lower_{name}"]), float(row[f"upper_{name}"])
            std = float(row[f"std_{name}"])
            assert upper - lower == pytest.approx(2 * conformal["half_width"] * std, rel=1e-5)
            assert (upper + lower) / 2 == pytest.approx(float(row[f"predicted_{name}"]), abs=1e-6)

    distance_aware = "uncertainty.distance_std=true" in uncertainty or estimator is (
        LatentDistanceEstimator
    )
    fitted = report["uncertainty"].get("distance_std", {}).get(name)
    assert (fitted is not None) == distance_aware
    if fitted is not None:
        (component,) = fitted
        assert set(component) == {"std", "constant", "distance"}
        assert (component["std"] == 0) == (estimator is LatentDistanceEstimator)

    # the checkpoint carries estimator and calibration; it is still a plain model checkpoint
    checkpoint = read_checkpoint(out / "checkpoints" / "best.ckpt")
    assert checkpoint["uncertainty"]["calibration"] == report["uncertainty"]["calibration"]
    uncertain = load_uncertain_model(out / "checkpoints" / "best.ckpt")
    assert isinstance(uncertain.estimator, estimator)
    load_model(out / "checkpoints" / "best.ckpt")
    if estimator is Ensemble:
        assert len(uncertain.estimator.models) == 2
        assert (out / "members" / "1" / "done.json").is_file()

    # predict from files: the std columns by default, none with uncertainty=false
    ids, structures = mp_sample_structures(3)
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    for sid, structure in zip(ids, structures, strict=True):
        structure.to(filename=str(inputs / f"{sid}.cif"))
    ckpt = f"ckpt={out / 'checkpoints' / 'best.ckpt'}"
    assert predict_main([ckpt, f"input={inputs}", f"output={tmp_path / 'p.csv'}"]) == 0
    predicted = rows(tmp_path / "p.csv")
    assert len(predicted) == 3 and columns in predicted[0] and "ood_score" in predicted[0]
    assert (f"lower_{name}" in predicted[0]) == (conformal is not None)
    if "uncertainty.variance_head=true" in uncertainty:  # both parts of the std
        for row in predicted:
            aleatoric = float(row["aleatoric_std_formation_energy_per_atom"])
            epistemic = float(row["epistemic_std_formation_energy_per_atom"])
            std = float(row["std_formation_energy_per_atom"])
            assert aleatoric > 0 and epistemic > 0
            assert std == pytest.approx((aleatoric**2 + epistemic**2) ** 0.5)
    assert (
        predict_main([ckpt, f"input={inputs}", f"output={tmp_path / 'q.csv'}", "uncertainty=false"])
        == 0
    )
    assert (
        columns not in rows(tmp_path / "q.csv")[0]
        and "ood_score" not in rows(tmp_path / "q.csv")[0]
    )


def ood_threshold(out) -> float:
    return read_checkpoint(out / "checkpoints" / "best.ckpt")["latent_distance"]["threshold"]


def test_an_ensemble_rerun_picks_up_finished_members(tmp_path, caplog):
    out = tmp_path / "run"
    cfg = config(out, "uncertainty=ensemble", "uncertainty.size=2")
    first = run(cfg)
    member = out / "members" / "0"
    done = (member / "done.json").read_text()
    # a member trained again would rewrite these with the same (seeded) contents: the times
    # of the files show it was not
    written = {p: p.stat().st_mtime_ns for p in member.rglob("*") if p.is_file()}
    shutil.rmtree(out / "members" / "1")  # member 1 never ran
    with caplog.at_level(logging.INFO, logger="matgnn.uncertainty.training"):
        second = run(cfg)
    assert "ensemble member 0: done before" in caplog.text
    assert "ensemble member 1: done before" not in caplog.text
    assert {p: p.stat().st_mtime_ns for p in written} == written
    assert (member / "done.json").read_text() == done
    assert (out / "members" / "1" / "done.json").is_file()
    # same seeds, same members: the same ensemble
    key = "test_formation_energy_per_atom_mae_calibrated"
    assert second[key] == pytest.approx(first[key], rel=1e-5)
    splits = [json.loads((out / "members" / k / "split.json").read_text()) for k in "01"]
    assert splits[0] == splits[1]  # members differ in seed, not in split


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["uncertainty=mc_dropout", "uncertainty.dropout=0.0"], "every dropout probability"),
        (["uncertainty=mean_variance", "task=mp_sample_is_metal"], "needs a scalar regression"),
        (["uncertainty=ensemble", "uncertainty.size=1"], "size >= 2"),
        (["uncertainty=mc_dropout", "task.data.split.val=0.0"], "needs a validation split"),
        (["uncertainty=ensemble", "task.data.split.val=0.0"], "needs a validation split"),
        (["uncertainty=mc_dropout", "uncertainty.coverage=1.5"], "strictly between 0 and 1"),
        (
            ["uncertainty=mc_dropout", "uncertainty.coverage=0.9", "uncertainty.calibrate=false"],
            "set uncertainty.calibrate=true",
        ),
        (["uncertainty=mc_dropout", "uncertainty.coverage=0.95"], "needs at least 19 validation"),
        (
            ["uncertainty=mc_dropout", "uncertainty.coverage=0.8", "task=mp_sample_is_metal"],
            "need a regression output",
        ),
        (
            ["uncertainty=mc_dropout", "uncertainty.coverage=0.8", "uncertainty.interval=bins"],
            "uncertainty.interval must be one of",
        ),
        (["uncertainty=latent_distance", "task=mp_sample_is_metal"], "are per atom, classes"),
        (
            ["uncertainty=latent_distance", "uncertainty.calibrate=false"],
            "set uncertainty.calibrate=true",
        ),
    ],
)
def test_bad_uncertainty_requests_fail_before_anything_is_written(tmp_path, overrides, message):
    out = tmp_path / "run"
    with pytest.raises(ValueError, match=message):
        run(config(out, *overrides))
    assert not (out / "checkpoints").exists() and not (out / "members").exists()


def test_a_checkpoint_without_uncertainty_is_refused_by_load_uncertain_model(tmp_path):
    out = tmp_path / "run"
    run(config(out))
    with pytest.raises(ValueError, match="no uncertainty estimator"):
        load_uncertain_model(out / "checkpoints" / "best.ckpt")


def test_separately_trained_checkpoints_make_an_ensemble_only_for_one_task(tmp_path):
    from matgnn.uncertainty import ensemble_from_checkpoints

    runs = {}
    for name, extra in (
        ("a", []),
        ("b", ["seed=1"]),
        ("gap", ["task=mp_sample_eform_gap"]),
    ):
        run(config(tmp_path / name, *extra))
        runs[name] = tmp_path / name / "checkpoints" / "best.ckpt"
    ensemble = ensemble_from_checkpoints([runs["a"], runs["b"]])
    ids, structures = mp_sample_structures(4)
    result = ensemble.predict(structures, ids)
    assert (result["formation_energy_per_atom"]["epistemic_std"] > 0).all()
    with pytest.raises(ValueError, match="an ensemble needs one task"):
        ensemble_from_checkpoints([runs["a"], runs["gap"]])


def test_per_atom_and_tensor_outputs_get_uncertainty_rows_per_atom(tmp_path):
    out = tmp_path / "run"
    overrides = [
        f"paths.output_dir={out}",
        f"paths.cache_dir={tmp_path / 'cache'}",
        "model=e3nn",
        "task=born_charges_sample",
        "task.data.source.limit=30",
        "trainer.max_epochs=1",
        "+trainer.enable_progress_bar=false",
        "uncertainty=mc_dropout",
        "uncertainty.passes=3",
        *SMALL["e3nn"],
    ]
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        run(compose(config_name="train", overrides=overrides))
    crystals = rows(out / "test_uncertainty.csv")
    atoms = rows(out / "test_uncertainty_atoms.csv")
    assert crystals and "epistemic_std_eps_xx" in crystals[0] and "eps_xx" in crystals[0]
    assert {"id", "atom", "Z", "becs_xx", "predicted_becs_xx", "std_becs_zz"} <= set(atoms[0])
    # one row per atom of every test crystal, each atom once, with its element
    from matgnn.data.sources.tensors import born_charges_sample

    records = born_charges_sample(limit=30)
    structures = dict(zip(records.ids, records.structures, strict=True))
    test = {r["id"] for r in crystals}
    assert len(test) == len(crystals)
    assert len(atoms) == sum(len(structures[i]) for i in test)
    assert len({(r["id"], r["atom"]) for r in atoms}) == len(atoms)
    for r in atoms:
        assert int(r["Z"]) == structures[r["id"]].numbers[int(r["atom"])]  # ASE Atoms
    # dropout spreads the predictions, except in components that the site symmetry fixes
    assert any(float(r["epistemic_std_becs_xx"]) > 0 for r in atoms)
    report = json.loads((out / "uncertainty_metrics.json").read_text())
    assert 0 <= report["test"]["calibrated"]["becs"]["zero_std_fraction"] < 1
