"""The docs tables of the Ye et al., Chen et al. phonon DOS, uncertainty, ARISE and learning-curve
benchmarks are computed from the stored per-crystal (per-structure) outputs, not from summaries
written when the runs were collected: a changed prediction changes the table, a missing file
is an error naming it, and the stored summaries agree with what the table computes."""

from __future__ import annotations

import gzip
import importlib.util
import itertools
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]
_count = itertools.count()


def fresh(path: str):
    """A module of its own of the benchmark script ``path`` (its paths can be patched without
    touching the copy ``benchmarks/blocks.py`` caches)."""
    spec = importlib.util.spec_from_file_location(f"_table_{next(_count)}", REPO / path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def copy(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)
    return target


def changed_cells(before: str, after: str, key: int = 2) -> set[tuple[tuple[str, ...], str]]:
    """The cells of a markdown table that differ between two versions of a docs block, as
    ``(row key: its first ``key`` cells, column header)``; a changed line outside the table is
    ``(("text",), line)``. The blocks must keep their line count."""
    old, new = before.splitlines(), after.splitlines()
    assert len(old) == len(new), "the table gained or lost lines"
    header = [c.strip() for c in old[0].strip("|").split("|")]
    changed = set()
    for a, b in zip(old, new, strict=True):
        if a == b:
            continue
        if not a.startswith("|"):
            changed.add((("text",), a))
            continue
        cells_a = [c.strip() for c in a.strip("|").split("|")]
        cells_b = [c.strip() for c in b.strip("|").split("|")]
        for column, x, y in zip(header, cells_a, cells_b, strict=True):
            if x != y:
                changed.add((tuple(cells_a[:key]), column))
    return changed


# --- Ye et al. 2018 (block ye2018) ----------------------------------------------------------------


@pytest.fixture
def ye(tmp_path, monkeypatch):
    module = fresh("benchmarks/stability/ye2018_table.py")
    results = copy(module.RESULTS, tmp_path / "ye2018")
    monkeypatch.setattr(module, "RESULTS", results)
    monkeypatch.setattr(module, "PREDICTIONS", results / "predictions")
    return module


def test_ye_table_follows_the_stored_predictions(ye):
    before = ye.table()
    path = ye.PREDICTIONS / "unmixed_cgcnn_s0.csv"
    frame = pd.read_csv(path)
    frame["predicted_ef_vs_binary_oxides"] += 0.05
    frame.to_csv(path, index=False)
    changed = changed_cells(before, ye.table())
    # one seed of one run moved: its row's error and stability scores, nothing else
    assert {row for row, _ in changed} == {("unmixed ABO3", "CGCNN")}
    assert (("unmixed ABO3", "CGCNN"), "Ef MAE (meV/atom)") in changed
    assert not {c for _, c in changed} & {
        "seeds",
        "published (Ye et al.)",
        "epoch time per run (s)",
    }


def test_ye_table_fails_on_a_missing_prediction_file(ye):
    (ye.PREDICTIONS / "garnet_all_cgcnn_s3.csv").unlink()
    with pytest.raises(FileNotFoundError, match=re.escape("garnet_all_cgcnn_s3.csv")):
        ye.table()


def test_ye_table_fails_without_the_per_crystal_hulls(ye):
    (ye.RESULTS / "crystals.csv").unlink()
    with pytest.raises(FileNotFoundError, match=re.escape("crystals.csv")):
        ye.table()


def test_ye_stored_targets_and_metrics_agree_with_the_per_crystal_files():
    """``crystals.csv`` holds the targets the runs were tested on, and ``metrics.csv`` (for
    reading) is what the table computes from the predictions."""
    ye = fresh("benchmarks/stability/ye2018_table.py")
    crystals = pd.read_csv(ye.RESULTS / "crystals.csv").set_index("id")
    for path in sorted(ye.PREDICTIONS.glob("*.csv")):
        frame = pd.read_csv(path).set_index("id")
        if "ef_vs_binary_oxides" in frame:  # trained runs (the published network has none)
            np.testing.assert_allclose(
                frame["ef_vs_binary_oxides"],
                crystals.loc[frame.index, ye.TARGET_COLUMN],
                atol=1e-6,
                err_msg=path.name,
            )
    stored = pd.read_csv(ye.RESULTS / "metrics.csv")
    pd.testing.assert_frame_equal(ye.scores(), stored, check_exact=False, rtol=1e-9, atol=1e-12)


# --- Chen et al. 2021 phonon DOS (block chen2021) -------------------------------------------------


@pytest.fixture
def chen(tmp_path, monkeypatch):
    module = fresh("benchmarks/phonons/chen2021_table.py")
    results = tmp_path / "chen2021"
    results.mkdir()
    for name in ("runs.csv", "num_atoms.csv", "metrics.csv"):
        shutil.copy(module.RESULTS / name, results / name)
    copy(module.PREDICTIONS, results / "predictions")
    monkeypatch.setattr(module, "RESULTS", results)
    monkeypatch.setattr(module, "PREDICTIONS", results / "predictions")
    return module


def test_chen_table_follows_the_stored_predictions(chen):
    before = chen.table()
    path = chen.PREDICTIONS / "cgcnn.csv.gz"
    frame = pd.read_csv(path)
    frame["predicted_phdos_10"] += 0.5
    frame.to_csv(path, index=False)
    changed = changed_cells(before, chen.table(), key=1)
    # one model's spectra moved at one frequency: its error columns, no other model's
    assert {row for row, _ in changed} == {("CGCNN + VectorHead",)}
    assert {c for _, c in changed} >= {"MAE", "R²"}
    assert not {c for _, c in changed} & {"setup", "test crystals"}


def test_chen_table_fails_on_a_missing_model_or_atom_count(chen):
    (chen.PREDICTIONS / "potnet.csv.gz").unlink()
    with pytest.raises(FileNotFoundError, match=re.escape("potnet.csv.gz")):
        chen.table()
    stored = REPO / "benchmarks" / "phonons" / "results" / "chen2021" / "predictions"
    shutil.copy(stored / "potnet.csv.gz", chen.PREDICTIONS / "potnet.csv.gz")
    (chen.RESULTS / "num_atoms.csv").unlink()
    with pytest.raises(FileNotFoundError, match=re.escape("num_atoms.csv")):
        chen.table()


def test_chen_stored_metrics_are_the_scores_of_the_predictions():
    chen = fresh("benchmarks/phonons/chen2021_table.py")
    stored = pd.read_csv(chen.RESULTS / "metrics.csv")
    pd.testing.assert_frame_equal(chen.scores(chen.load()), stored, check_exact=False, rtol=1e-9)


# --- uncertainty on matbench_phonons (block uncertainty-phonons) ----------------------------------


@pytest.fixture
def uncertainty(tmp_path, monkeypatch):
    module = fresh("benchmarks/uncertainty/table.py")
    results = tmp_path / "uncertainty"
    for estimator in module.ESTIMATORS:
        (results / estimator).mkdir(parents=True)
        for name in ("uncertainty_metrics.json", "test_uncertainty.csv"):
            shutil.copy(module.RESULTS / estimator / name, results / estimator / name)
    monkeypatch.setattr(module, "RESULTS", results)
    return module


def test_uncertainty_table_follows_the_stored_test_crystals(uncertainty):
    before = uncertainty.table()
    path = uncertainty.RESULTS / "mc_dropout" / "test_uncertainty.csv"
    frame = pd.read_csv(path)
    frame["std_last_phdos_peak"] *= 1.5
    frame.to_csv(path, index=False)
    changed = changed_cells(before, uncertainty.table(), key=1)
    # every std of one estimator scaled: its rows' variance scores change; the MAE (of the
    # means) and the ranking of errors by std (Spearman) cannot
    assert {row for row, _ in changed} == {("mc_dropout",)}
    columns = {c for _, c in changed}
    assert {"NLL", "sharpness (cm^-1)"} <= columns
    assert not columns & {"MAE (cm^-1)", "Spearman(abs error, std)"}


def test_uncertainty_table_fails_on_a_missing_file(uncertainty):
    (uncertainty.RESULTS / "ensemble" / "test_uncertainty.csv").unlink()
    with pytest.raises(FileNotFoundError, match=re.escape("ensemble/test_uncertainty.csv")):
        uncertainty.table()


def test_uncertainty_scores_are_those_the_runs_reported():
    """Recomputed from ``test_uncertainty.csv`` (calibrated stds) and the std scale, the scores
    are the test scores each run wrote, both calibration states."""
    module = fresh("benchmarks/uncertainty/table.py")
    for estimator in module.ESTIMATORS:
        report = json.loads((module.RESULTS / estimator / "uncertainty_metrics.json").read_text())
        _, scores = module.scores_on_test(estimator)
        for state, values in scores.items():
            (logged,) = report["test"][state].values()
            for key, _, _ in module.COLUMNS:
                assert values[key] == pytest.approx(logged[key], rel=1e-9), (estimator, state)


# --- ARISE (block arise) --------------------------------------------------------------------------


@pytest.fixture
def arise(tmp_path):
    module = fresh("benchmarks/arise/evaluate.py")
    results = tmp_path / "arise"
    results.mkdir()
    shutil.copy(module.RESULTS / module.STRUCTURES, results / module.STRUCTURES)
    return module, results


def test_arise_table_follows_the_stored_structures(arise):
    module, results = arise
    before = module.table(results)
    path = results / module.STRUCTURES
    frame = pd.read_csv(path)
    frame.loc[frame.index[:40], "correct"] = 1 - frame.loc[frame.index[:40], "correct"]
    with gzip.open(path, "wt", newline="") as handle:
        frame.to_csv(handle, index=False)
    changed = changed_cells(before, module.table(results))
    # matgnn's verdicts flipped: its accuracy column only, the baselines' stay
    assert changed and {c for _, c in changed} == {"matgnn"}
    # levels.csv beside the structures is never what the table reads
    (results / "levels.csv").write_text("nonsense\n")
    assert module.markdown_table(module.read_levels(results / "levels.csv")) == module.table(
        results
    )


def test_arise_table_fails_on_missing_structures(arise):
    module, results = arise
    (results / module.STRUCTURES).unlink()
    with pytest.raises(FileNotFoundError, match=re.escape("structures.csv.gz")):
        module.table(results)


def test_arise_stored_levels_are_the_levels_of_the_structures():
    module = fresh("benchmarks/arise/evaluate.py")
    stored = pd.read_csv(module.RESULTS / "levels.csv")
    computed = pd.DataFrame(module.read_levels(module.RESULTS))
    pd.testing.assert_frame_equal(computed, stored, check_exact=False, rtol=1e-12)


# --- learning curve (block finetune-curve) --------------------------------------------------------


@pytest.fixture
def curve(tmp_path, monkeypatch):
    module = fresh("benchmarks/finetune/table.py")
    results = tmp_path / "finetune"
    results.mkdir()
    for path in (module.CURVE, module.ALL_PREDICTIONS, module.TRAIN_MEANS):
        shutil.copy(path, results / path.name)
    for name in ("CURVE", "ALL_PREDICTIONS", "TRAIN_MEANS"):
        monkeypatch.setattr(module, name, results / getattr(module, name).name)
    return module


def _edit_predictions(module, change) -> None:
    frame = pd.read_csv(module.ALL_PREDICTIONS, dtype={"size": str})
    change(frame)
    frame.to_csv(module.ALL_PREDICTIONS, index=False)


def test_curve_table_follows_the_stored_predictions(curve):
    before = curve.table()

    def shift(frame):
        frame.loc[(frame["arm"] == "xie_slow") & (frame["seed"] == 2), "prediction"] += 0.01

    _edit_predictions(curve, shift)
    changed = changed_cells(before, curve.table(), key=1)
    # one seed of one arm moved: that arm's column, in every row (size) it was moved in
    assert {c for _, c in changed} == {"Xie's model (backbone lr x0.1)"}
    moved = pd.read_csv(curve.ALL_PREDICTIONS, dtype={"size": str})
    sizes = set(moved.loc[(moved["arm"] == "xie_slow") & (moved["seed"] == 2), "size"])
    whole = before.splitlines()[-1].strip("|").split("|")[0].strip()  # "all": its crystal count
    assert {row for row, _ in changed} == {(whole if s == "all" else s,) for s in sizes}


def test_curve_baseline_follows_the_stored_training_means(curve):
    before = curve.table()
    means = pd.read_csv(curve.TRAIN_MEANS, dtype={"size": str})
    means.loc[means["size"] == "50", "train_mean"] += 0.01
    means.to_csv(curve.TRAIN_MEANS, index=False)
    assert changed_cells(before, curve.table(), key=1) == {
        (("50",), "predicting the training mean")
    }


def test_curve_table_fails_on_a_missing_file_or_run(curve):
    _edit_predictions(curve, lambda f: f.drop(f.index[f["arm"] == "xie_frozen"], inplace=True))
    with pytest.raises(ValueError, match="no test predictions of the run xie_frozen/n50_s0"):
        curve.table()
    curve.TRAIN_MEANS.unlink()
    with pytest.raises(FileNotFoundError, match=re.escape("train_means.csv")):
        curve.table()
    curve.ALL_PREDICTIONS.unlink()
    with pytest.raises(FileNotFoundError, match=re.escape("test_predictions.csv.gz")):
        curve.table()


def test_curve_refuses_a_run_without_its_predictions(curve):
    """Seed 1 of the first four arms, whose predictions were once lost (and whose logged MAE
    the table used to take), now fails the table without them too."""

    def drop(frame):
        run = (frame["arm"] == "scratch") & (frame["size"] == "50") & (frame["seed"] == 1)
        frame.drop(frame.index[run], inplace=True)

    _edit_predictions(curve, drop)
    with pytest.raises(ValueError, match="scratch/n50_s1"):
        curve.table()


def test_curve_stored_predictions_agree_with_the_seed_0_files_and_the_logged_scores():
    """Every listed run has stored predictions, whose MAE is the one the run logged."""
    module = fresh("benchmarks/finetune/table.py")
    stored = pd.read_csv(
        module.ALL_PREDICTIONS, dtype={"size": str, "target": np.float32, "prediction": np.float32}
    )
    seed0 = stored[stored["seed"] == 0]
    files = sorted(module.PREDICTIONS.glob("*_s0.csv"))
    assert len(files) == seed0.groupby(["arm", "size"]).ngroups == 35
    for (arm, size), group in seed0.groupby(["arm", "size"]):
        single = pd.read_csv(module.PREDICTIONS / f"{arm}_n{size}_s0.csv")
        assert list(single["id"]) == list(group["id"])
        np.testing.assert_array_equal(
            single["predicted_ef_vs_binary_oxides"].to_numpy(np.float32), group["prediction"]
        )
        np.testing.assert_array_equal(
            single["ef_vs_binary_oxides"].to_numpy(np.float32), group["target"]
        )
    mae, baseline = module.run_errors()
    logged = pd.read_csv(module.CURVE, dtype={"size": str})
    assert len(logged) == len(mae) == 105  # 7 arms, 5 sizes, 3 seeds
    for row in logged.itertuples():
        assert mae[row.arm, row.size, row.seed] == pytest.approx(row.mae, abs=1e-6)
        assert baseline[row.size, row.seed] == pytest.approx(row.mae_predict_train_mean, abs=1e-6)


# --- uncertainty on random and out-of-distribution splits (block uncertainty-ood) -------------
def _ood_run(folder: Path, seed: int) -> None:
    """A stored run of synthetic predictions whose intervals are the conformal refit."""
    from matgnn.uncertainty.calibration import conformal_half_width

    rng = np.random.default_rng(seed)
    frames = {}
    for split, n in (("val", 60), ("test", 40)):
        std = rng.uniform(0.1, 1.0, n)
        mean = rng.normal(size=n)
        frames[split] = pd.DataFrame(
            {"id": [f"{split}{k}" for k in range(n)], "y": mean + std * rng.normal(size=n),
             "predicted_y": mean, "std_y": std, "ood_score": rng.uniform(0.5, 2.0, n)}
        )  # fmt: skip
    val = frames["val"]
    q, _ = conformal_half_width(val["predicted_y"], val["std_y"], val["y"], 0.95)
    folder.mkdir(parents=True)
    for split, frame in frames.items():
        frame["lower_y"] = frame["predicted_y"] - q * frame["std_y"]
        frame["upper_y"] = frame["predicted_y"] + q * frame["std_y"]
        frame.to_csv(folder / f"{split}_uncertainty.csv.gz", index=False)
    report = {"uncertainty": {"calibration": {"y": {"std_scale": 1.0}}}}
    (folder / "uncertainty_metrics.json").write_text(json.dumps(report))
    (folder / "run.json").write_text(json.dumps({"tested_epochs": [5]}))
    (folder / "commits.txt").write_text("abc1234 2026-12-03T16:00:00Z\n")


def test_the_ood_table_is_computed_from_the_stored_predictions(tmp_path):
    module = fresh("benchmarks/uncertainty/ood/table.py")
    module.RESULTS = tmp_path
    module.TASKS = {"demo": ("demo", "eV", ("random",))}
    module.ESTIMATORS = ("ensemble",)
    folder = tmp_path / "demo" / "random" / "ensemble"
    with pytest.raises(FileNotFoundError, match="not stored"):
        module.table()
    _ood_run(folder, seed=0)
    scores = module.scores("demo", "random", "ensemble")
    test = pd.read_csv(folder / "test_uncertainty.csv.gz")
    inside = (test["y"] >= test["lower_y"]) & (test["y"] <= test["upper_y"])
    assert scores["coverage_conformal"] == pytest.approx(inside.mean())
    assert scores["mae"] == pytest.approx((test["y"] - test["predicted_y"]).abs().mean())
    table = module.table()
    assert "| random (40) | ensemble |" in table
    assert "code: abc1234; tested checkpoints' epochs" in table
    # an interval that is not the refit on the stored validation crystals is refused
    test["upper_y"] += 0.1
    test.to_csv(folder / "test_uncertainty.csv.gz", index=False)
    with pytest.raises(ValueError, match="not the refit"):
        module.scores("demo", "random", "ensemble")
