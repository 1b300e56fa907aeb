"""The tables of the docs pages, written by the benchmark scripts from their committed results,
are current (registry: ``benchmarks/blocks.py``): a published number always comes from a stored
result, never from a hand edit."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def script(path: str):
    from benchmarks.blocks import script as load

    return load(path)


def _block_names() -> list[str]:
    from benchmarks.blocks import BLOCKS

    return sorted(BLOCKS)


@pytest.mark.parametrize("name", _block_names())
def test_every_page_block_is_the_scripts_table_of_the_committed_results(name):
    """Each generated block of the docs (and benchmark READMEs) is what its script writes now
    from the committed raw outputs: a number never comes from a hand edit."""
    from benchmarks.blocks import stale

    assert not stale(name), (
        f"block {name!r} is stale in {[str(p) for p in stale(name)]}: rerun "
        f"python benchmarks/blocks.py --update {name}"
    )


def test_every_block_on_a_page_is_registered_and_placed_where_the_registry_says():
    """No generated-looking table escapes the staleness test: every ``<!-- name:start -->``
    on a page is a registered block, and it sits on a page the registry lists for it."""
    from benchmarks.blocks import BLOCKS, REPOSITORY, pages_with_blocks

    for path, names in pages_with_blocks().items():
        page = path.relative_to(REPOSITORY).as_posix()
        for name in names:
            assert name in BLOCKS, f"{page}: block {name!r} is not in benchmarks/blocks.py"
            assert page in BLOCKS[name][0], f"{page}: block {name!r} belongs on {BLOCKS[name][0]}"


def test_the_generator_seed_records_are_of_one_recipe_and_every_seed_is_there(tmp_path):
    """The seed table's records (the kept generator's and the retrained seeds') share the
    autoencoders, decoding, recipe, split and codes; a missing seed or another recipe fails."""
    import json

    attribution = script("benchmarks/design/merge_attribution.py")
    records = attribution.seed_records()
    assert [record["training"]["seed"] for record in records] == [0, *attribution.SEEDS]
    assert len({record["generator_weights_sha256"] for record in records}) == len(records)
    with pytest.raises(AssertionError, match=r"seed1\.json is missing: retrain"):
        attribution.seed_records(tmp_path)
    for seed in attribution.SEEDS:
        record = json.loads((attribution.SEEDS_DIR / f"seed{seed}.json").read_text())
        if seed == attribution.SEEDS[-1]:  # one trained with another KL weight
            record["training"]["recipe"]["kl_weight"] *= 10
        (tmp_path / f"seed{seed}.json").write_text(json.dumps(record))
    with pytest.raises(AssertionError, match="another training recipe than the kept run's"):
        attribution.seed_records(tmp_path)


def test_the_stored_merge_attribution_is_of_the_kept_generator_and_its_tables():
    """``merge_attribution.json`` (read by the inverse-design page's "What moved" prose) is of
    the kept generator's weights, and at the chosen merge saddle it gives the stored generation
    tables' chain counts and rediscovered set: the same latents, decoded the same way."""
    import json

    from matgnn.checkpoints.digest import state_digest
    from matgnn.design.records import read_records
    from matgnn.design.training import load_generator

    design = REPO / "benchmarks" / "design"
    record = json.loads((design / "results" / "merge_attribution.json").read_text())
    kept = load_generator(design / "runs" / "generator" / "checkpoints" / "best.ckpt")
    assert record["generator_weights_sha256"] == state_digest(kept)
    assert record["generator_epoch"] == 200 and record["chosen_merge_saddle"] == 0.6
    attribution = script("benchmarks/design/merge_attribution.py")
    chosen = record["by_saddle"][attribution.saddle_key(record["chosen_merge_saddle"])]
    chain, _ = read_records(design / "results" / "generator_reconstruction.csv.gz", texts=["id"])
    for (part, through), rows in chain.groupby(["part", "through"]):
        counts = {column: int(rows[column].sum()) for column in attribution.COUNTED}
        assert chosen["chain"][f"{part}/{through}"] == counts
    generated, facts = read_records(design / "results" / "generation.csv.gz", texts=["parent"])
    assert facts["epoch"] == record["generator_epoch"]
    drawn = generated[generated["method"] == "rediscovery"]
    draw = {"per_structure": facts["per_structure"], "sigma": facts["sigma"]}
    assert record["rediscovery"] == draw
    assert chosen["rediscovery_decoded"] == int(drawn["decoded"].sum())
    assert set(drawn.loc[drawn["matches_parent"], "parent"]) == set(chosen["rediscovered"])


def test_stored_ye_network_reproduces_its_stored_test_predictions():
    """The committed Ye et al. network of the results table (split seed 0, all perovskites),
    loaded from its checkpoint, predicts the committed test predictions again from the
    structures of the shipped table: checkpoint, descriptors and table agree."""
    import numpy as np
    import pandas as pd

    from matgnn import load_model
    from matgnn.data.sources.ye2018 import ye2018_perovskite_sample

    results = REPO / "benchmarks" / "stability" / "results" / "ye2018"
    model = load_model(results / "checkpoints" / "all_ye2018_net_s0.ckpt")
    stored = pd.read_csv(results / "predictions" / "all_ye2018_net_s0.csv")
    records = ye2018_perovskite_sample()
    by_id = dict(zip(records.ids, records.structures, strict=True))
    predicted = model.predict([by_id[i] for i in stored["id"]], list(stored["id"]))
    assert not predicted.rejected
    np.testing.assert_allclose(
        predicted["ef_vs_binary_oxides"], stored["predicted_ef_vs_binary_oxides"], atol=1e-6
    )


@pytest.mark.parametrize("subset", ["garnet_unmixed", "unmixed"])
def test_stored_published_network_predictions_are_the_packaged_models(subset):
    """The "published network" rows of the Ye table were predicted by the packaged
    ye2018_*_unmixed models: each seed's stored predictions are theirs, on the crystals the
    models of that seed were tested on."""
    import numpy as np
    import pandas as pd

    from matgnn.checkpoints.pretrained import load_pretrained
    from matgnn.data.sources.ye2018 import ye2018_garnet, ye2018_perovskite_sample

    results = REPO / "benchmarks" / "stability" / "results" / "ye2018" / "predictions"
    garnet = subset.startswith("garnet")
    records = (ye2018_garnet if garnet else ye2018_perovskite_sample)(mixed=False)
    by_id = dict(zip(records.ids, records.structures, strict=True))
    model = load_pretrained("ye2018_garnet_unmixed" if garnet else "ye2018_perovskite_unmixed")
    files = sorted(results.glob(f"{subset}_published_s*.csv"))
    assert len(files) == 5
    for file in files:
        stored = pd.read_csv(file)
        again = model.predict([by_id[i] for i in stored["id"]], list(stored["id"]))
        assert not again.rejected
        np.testing.assert_allclose(
            again["ef_vs_binary_oxides"], stored["predicted_ef_vs_binary_oxides"], atol=1e-6
        )


def _upstream_alignn_run(tmp_path: Path, epochs_logged: int, planned: int) -> Path:
    """A run folder as ``equal_budget.sh`` leaves one for upstream ALIGNN, with the log lines
    upstream's ``print_train_val_loss`` prints."""
    import json

    (tmp_path / "output").mkdir()
    (tmp_path / "scaling.json").write_text(json.dumps({"mean": 100.0, "std": 10.0}))
    (tmp_path / "output" / "upstream_config.json").write_text(json.dumps({"epochs": planned}))
    header = "{:<12} {:<8} Total      Graph      Atom       Grad       Stress     Addn.      Time"
    lines = ["Model parameters 4026753"]
    for epoch, (train, val) in enumerate([(1.0, 0.5), (0.4, 0.3), (0.3, 0.35)][:epochs_logged]):
        lines += [header.format("Train Loss:", "Epoch")]
        lines += [f"{'':<12} {epoch:<8} {train:<10.4f} {train:<10.4f}" + " 0.0000    " * 4
                  + f" {80.0 + epoch:<10.2f}"]  # fmt: skip
        lines += [header.format("Val Loss:", "Epoch")]
        saving = "Saving model" if epoch < 2 else ""
        lines += [f"{'':<12} {epoch:<8} {val:<10.4f} {val:<10.4f}" + " 0.0000    " * 4
                  + f" 3.00       {saving}"]  # fmt: skip
    (tmp_path / "train.log").write_text("\n".join(lines) + "\n")
    (tmp_path / "output" / "test_best.csv").write_text(
        "id,true,predicted\nmb-1.cif,0.5,0.7\nmb-2.cif,-1.0,-1.5\n"
    )
    return tmp_path


def test_upstream_alignn_log_reader(tmp_path):
    """The equal-budget reader of upstream ALIGNN's runs takes the best epoch from the logged
    validation rows where it last saved ``best_model.pt`` (from 0), the time per epoch from the
    second epoch on,
    de-standardises the tested predictions, and refuses a run whose log stops before its
    planned epochs."""
    equal_budget = script("benchmarks/fidelity/equal_budget.py")
    (tmp_path / "done").mkdir()
    row, curve, predictions = equal_budget.upstream_alignn_run(
        _upstream_alignn_run(tmp_path / "done", 3, 3)
    )
    # saved at epochs 0 and 1 (upstream counts from 0, as every README table does)
    assert row["best_epoch"] == 1 and row["epochs"] == 3 and row["n_test"] == 2
    assert list(curve["epoch"]) == [0, 1, 2]
    assert row["wall_per_epoch_s"] == pytest.approx(((81.0 + 3.0) + (82.0 + 3.0)) / 2)
    assert list(curve["val_mae"]) == pytest.approx([5.0, 3.0, 3.5])
    assert list(predictions["id"]) == ["mb-1", "mb-2"]
    assert row["test_mae"] == pytest.approx((2.0 + 5.0) / 2)
    (tmp_path / "short").mkdir()
    with pytest.raises(SystemExit, match="2 training and 2 validation epochs logged of 3"):
        equal_budget.upstream_alignn_run(_upstream_alignn_run(tmp_path / "short", 2, 3))


def test_equal_budget_stored_epoch_times_average_to_each_runs_wall_time():
    """Where ``curves.csv`` holds a run's per-epoch wall times (``wall_s``, quoted by the
    fidelity page), their mean over every epoch but the first is that run's
    ``wall_per_epoch_s`` in ``runs.csv``, and every epoch of it has one."""
    import pandas as pd

    results = REPO / "benchmarks" / "fidelity" / "results" / "equal_budget"
    runs, curves = pd.read_csv(results / "runs.csv"), pd.read_csv(results / "curves.csv")
    key = ["model", "task", "implementation", "seed"]
    timed = curves.dropna(subset=["wall_s"]).groupby(key)
    assert len(timed) >= 3  # the mp2018 5k ALIGNN runs at least
    for values, epochs in timed:
        run = runs.set_index(key).loc[values]
        first = epochs["epoch"].min()
        assert len(epochs) == run["epochs"] or (
            values[2].startswith("reference") and len(epochs) == run["epochs"] - 1
        ), values
        later = epochs[epochs["epoch"] > first] if len(epochs) == run["epochs"] else epochs
        assert later["wall_s"].mean() == pytest.approx(run["wall_per_epoch_s"]), values


def test_equal_budget_collect_replaces_only_the_runs_it_finds_again(tmp_path, monkeypatch):
    """A sweep that re-runs one arm (the CGCNN runs, say) replaces the rows and curves of every
    run folder it finds (finished or not) and keeps every other stored run (the ALIGNN runs
    whose folders are gone)."""
    import pandas as pd

    equal_budget = script("benchmarks/fidelity/equal_budget.py")
    monkeypatch.setattr(equal_budget, "RESULTS", tmp_path)
    key = {"model": "cgcnn", "task": "mp2018_5k", "implementation": "matgnn"}
    reference = {**key, "implementation": "reference"}
    stored = pd.DataFrame([{**key, "seed": 0, "test_mae": 0.2},
                           {**key, "seed": 1, "test_mae": 0.3},
                           {**reference, "seed": 0, "test_mae": 0.4}])  # fmt: skip
    stored.assign(measured="2026-12-03").to_csv(tmp_path / "runs.csv", index=False)
    stored.assign(epoch=0, val_rmse=1.0).to_csv(tmp_path / "curves.csv", index=False)
    present = [("cgcnn", "mp2018_5k", "matgnn", 0)]  # a run folder found again
    kept, kept_curves = equal_budget._stored_except(present)
    assert list(zip(kept["implementation"], kept["seed"], strict=True)) == [
        ("matgnn", 1),
        ("reference", 0),
    ]
    assert len(kept_curves) == 2 and 0.2 not in set(kept["test_mae"])
    (tmp_path / "runs.csv").unlink()
    assert equal_budget._stored_except(present)[0].empty


def test_equal_budget_table_marks_a_run_resumed_in_a_later_process(tmp_path, monkeypatch):
    """A run that ran in two processes (stopped, resumed from its checkpoint) is marked ``\\*``
    beside its seed and the mark is explained; runs in one process, or collected before the
    count existed (no ``processes``), are not marked."""
    import pandas as pd

    equal_budget = script("benchmarks/fidelity/equal_budget.py")
    monkeypatch.setattr(equal_budget, "RESULTS", tmp_path)
    (tmp_path / "test_predictions").mkdir()
    rows = []
    runs = [
        ("matgnn", 0, 1),
        ("matgnn", 1, 2),
        ("matgnn", 2, 3),
        ("matgnn", 3, float("nan")),
        ("reference", 0, 1),
        ("reference", 1, 1),
        ("reference", 2, 1),
        ("reference", 3, 1),
    ]
    for implementation, seed, processes in runs:  # nan: a stored run collected before the count
        rows.append({"model": "cgcnn", "task": "mp2018_5k", "implementation": implementation,
                     "seed": seed, "test_mae": 0.1, "best_epoch": 3, "epochs": 4,
                     "wall_per_epoch_s": 10.0, "n_test": 1, "measured": "2026-12-07",
                     "processes": processes})  # fmt: skip
        pd.DataFrame({"id": ["mp-1"], "true": [0.0], "predicted": [0.1]}).to_csv(
            tmp_path / "test_predictions" / f"cgcnn_mp2018_5k_{implementation}_s{seed}.csv.gz",
            index=False,
        )
    pd.DataFrame(rows).to_csv(tmp_path / "runs.csv", index=False)
    text = equal_budget.table()
    # escaped: two bare * in one cell would pair into emphasis on the docs site
    assert "| cgcnn | mp2018 5k (5,000 / 625 / 625) | matgnn CGCNN | 4 (0, 1\\*, 2\\*, 3) |" in text
    assert "| 4 (0, 1, 2, 3) |" in text  # the reference's runs
    assert "\\* resumed from its last checkpoint" in text
    pd.DataFrame(rows).drop(columns="processes").to_csv(tmp_path / "runs.csv", index=False)
    text = equal_budget.table()
    assert "\\*" not in text and "resumed" not in text


def test_stored_best_epochs_are_the_epochs_of_the_stored_checkpoints():
    """The Ye table's "epochs (tested checkpoint's)" comes from ``runs.csv``: for every run
    whose tested checkpoint is stored, its ``best_epoch`` is that checkpoint's epoch (not the
    low point of a validation MAE curve the checkpoint callback did not watch)."""
    import pandas as pd
    import torch

    results = REPO / "benchmarks" / "stability" / "results" / "ye2018"
    runs = pd.read_csv(results / "runs.csv")
    checked = 0
    for row in runs.itertuples():
        stored = results / "checkpoints" / f"{row.subset}_{row.model}_s{row.seed}.ckpt"
        if stored.is_file():
            assert torch.load(stored, weights_only=True)["epoch"] == row.best_epoch, stored.name
            checked += 1
    assert checked >= 19


def test_stored_tensor_epochs_are_the_checkpoints_the_logs_say_were_tested():
    """The tensors table's "best" epochs (``runs.csv``) are the first minimum of ``val_loss``,
    the metric every tensor task's checkpoint callback watched, in the stored logs."""
    import pandas as pd

    from matgnn.training.run_logs import logged_tested_epoch

    results = REPO / "benchmarks" / "tensors" / "results"
    runs = pd.read_csv(results / "runs.csv")
    assert sorted(runs["run"]) == sorted(script("benchmarks/tensors/table.py").RUNS)  # 16
    for row in runs.itertuples():
        log = pd.read_csv(results / "logs" / f"{row.run}.csv")
        assert logged_tested_epoch(log, "val_loss", "min") == row.best_epoch, row.run


def _stored_submission_folds():
    from benchmarks.foundation.table import ARMS
    from matgnn.matbench.submission import PREFIX, SubmissionFolder

    # every arm's folder of the foundation table (its first, "from scratch", is
    # benchmarks/matbench, whose other submissions are checked here too)
    for _, root in ARMS:
        for folder in sorted(root.glob(f"{PREFIX}*")):
            submission = SubmissionFolder(folder)
            for task in submission.tasks():
                for fold in submission.recorded_folds(task):
                    yield submission, task, fold


def test_every_stored_matbench_fold_scores_as_its_predictions_against_the_official_targets():
    """The Matbench and foundation tables read each fold's MAE from its ``record.json``: that
    score must be what the fold's per-crystal predictions give against Matbench's own targets
    (``benchmarks/matbench/targets``, shipped), so a stored score cannot drift from the
    predictions it claims to summarise."""
    import numpy as np
    import pandas as pd

    targets: dict[str, pd.Series] = {}
    checked = 0
    for submission, task, fold in _stored_submission_folds():
        path = REPO / "benchmarks" / "matbench" / "targets" / f"{task}.csv.gz"
        assert path.is_file(), f"{task}: no shipped targets; run benchmarks/matbench/targets.py"
        if task not in targets:
            targets[task] = pd.read_csv(path, index_col="mbid")["target"]
        record = submission.read_record(task, fold)
        assert len(record.ids) == len(record.predictions) == record.rows["test_present"]
        truth = targets[task].loc[record.ids].to_numpy()
        errors = np.abs(np.asarray(record.predictions, dtype=np.float64) - truth)
        where = f"{submission.root.name}/{task}/fold_{fold}"
        assert np.isfinite(errors).all(), where
        assert errors.mean() == pytest.approx(record.scores["mae"], rel=1e-9, abs=1e-12), where
        rmse = float(np.sqrt((errors**2).mean()))
        assert rmse == pytest.approx(record.scores["rmse"], rel=1e-9), where
        assert errors.max() == pytest.approx(record.scores["max_error"], rel=1e-9), where
        checked += 1
    from benchmarks.foundation.table import RUNS

    assert checked == sum(len(folds) for folds in RUNS.values())  # every declared fold


def test_the_foundation_table_stops_at_a_missing_short_or_undeclared_run():
    from benchmarks.foundation.table import PENDING, RUNS, Arm, check_declared

    def arm(key: tuple[str, str, str], folds: tuple[int, ...]) -> Arm:
        n = len(folds)
        return Arm(*key, [1.0] * n, list(folds), [None] * n, 0, 10, "")

    stored = [arm(key, folds) for key, folds in RUNS.items()]
    check_declared(stored)  # as declared: no complaint
    with pytest.raises(SystemExit, match="folds"):
        check_declared(stored[1:])  # a declared run missing
    with pytest.raises(SystemExit, match="folds"):
        key = next(k for k, folds in RUNS.items() if len(folds) == 5)
        short = [
            arm(key, (0, 1, 2, 3)) if a.folds and (a.arm, a.model, a.task) == key else a
            for a in stored
        ]
        check_declared(short)  # a run short of a fold
    with pytest.raises(SystemExit, match="not declared"):
        check_declared([*stored, arm(("frozen", "chgnet", "matbench_dielectric"), (0,))])
    with pytest.raises(SystemExit, match="pending but stored"):
        check_declared([*stored, arm(next(iter(PENDING)), (0, 1, 2, 3, 4))])


def test_the_foundation_matbench_table_says_what_pretraining_shares_on_every_row(monkeypatch):
    """Every row of a backbone arm (stored or planned) says what MPtrj shares with its task;
    a model trained from scratch says it had no pretraining; the goal row says nothing."""
    import benchmarks.foundation.table as foundation

    def arm(key: tuple[str, str, str], folds: tuple[int, ...]):
        n = len(folds)
        return foundation.Arm(*key, [1.0] * n, list(folds), [None] * n, 0, 10, "")

    stored = [arm(key, folds) for key, folds in foundation.RUNS.items()]
    monkeypatch.setattr(foundation, "arms", lambda tasks=None, every_task=False: stored)
    header, _, *lines = foundation.table().splitlines()
    names = [c.strip() for c in header.strip("|").split("|")]
    column = names.index("shared with MPtrj (pretraining)")
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in lines]
    assert all(len(r) == len(names) for r in rows)
    task_of = {f"{t} ({foundation.task_metadata(t).unit})": t for t in foundation.GOALS}
    seen = set()
    for r in rows:
        task, kind = task_of[r[0]], r[1]
        expected = {"goal": "", "from scratch": foundation.NO_PRETRAINING}.get(
            kind, foundation.SHARED_WITH_PRETRAINING[task]
        )
        assert r[column] == expected, r
        seen.add(kind)
    assert {"goal", "from scratch", "frozen", "fine-tuned"} <= seen


#: the memory-reduction figures of the speed page (prose, measured once on 2026-11-22 against
#: the commit before; not a table), each with the stored log lines it comes from
_SPEED, _LARGER = "training_speed_2026-11-22.txt", "alignn_memory_larger_batches_2026-11-22.txt"
MEMORY_FIGURES = [
    ("4,383 -> 2,830 MB", _SPEED,
     ["fp32 2.080 s 4383 MB", "fp32         6784   100310    1.800     35.6     2830"]),
    ("3,339 -> 1,770 MB", _SPEED,
     ["fp32 3.115 s 3339 MB", "fp32         6784   100310    2.625     24.4     1770"]),
    ("bf16 2,287 -> 1,412 MB", _SPEED,
     ["bf16 0.848 s 2287 MB", "bf16         6784   100310    1.028     62.2     1412"]),
    ("10,907 -> 5,551 MB", _LARGER,
     ["before: ours (default graph)           fp32        16814   240870    5.038",
      "after:  ours (default graph)           fp32        16814   240870    4.910",
      "240870    5.038     25.4    10907", "240870    4.910     26.1     5551"]),
    ("bf16 5,852 -> 3,014 MB", _LARGER,
     ["bf16        16814   240870    2.169     59.0     5852",
      "bf16        16814   240870    2.090     61.2     3014"]),
    ("at 5.04\n  -> 4.91 s per step", _LARGER, ["240870    5.038", "240870    4.910"]),
    ("killed for memory (24 GB), the new one\n  needs 9.3 GB", _LARGER,
     ["Out of memory: Killed process 23711 (python)", "anon-rss:24284608kB",
      "fp32        28112   395714    7.192     35.6     9252"]),
    ("15.0-15.6 -> 9.8-9.9 GB with `retain`", _LARGER,
     ["before retain run2: max RSS 14970440 kB", "before retain run1: max RSS 15603068 kB",
      "after retain run2: max RSS 9821808 kB", "after retain run1: max RSS 9938824 kB"]),
    ("10.5 -> 6.2 GB without", _LARGER,
     ["before glibc: max RSS 10517888 kB", "after glibc: max RSS 6194320 kB"]),
]  # fmt: skip


@pytest.mark.parametrize(
    ("prose", "log", "lines"), MEMORY_FIGURES, ids=[f[0] for f in MEMORY_FIGURES]
)
def test_the_speed_page_memory_figures_are_in_the_stored_logs(prose, log, lines):
    """The speed page's memory-reduction prose states each figure as the stored logs hold it
    (the page says they were measured once and not re-measured)."""
    page = (REPO / "docs" / "results" / "speed.md").read_text()
    stored = (REPO / "benchmarks" / "results" / log).read_text()
    assert prose in page, f"the speed page no longer says {prose!r}: update MEMORY_FIGURES"
    for line in lines:
        assert line in stored, f"{log} has no {line!r}"


def test_the_capped_accuracy_table_stops_at_missing_predictions_or_unpaired_runs(
    tmp_path, monkeypatch
):
    """Capped against uncapped batches: a capped run without its stored predictions, a bf16
    run among the fp32 ones, or a seed without its uncapped pair stops the table."""
    import pandas as pd

    module = script("benchmarks/data_store/capped_accuracy.py")
    assert "capped at" in module.table()
    monkeypatch.setattr(module, "CAPPED_PREDICTIONS", tmp_path)
    with pytest.raises(SystemExit, match="no stored predictions"):
        module.table()
    monkeypatch.undo()
    runs = pd.read_csv(module.CAPPED)
    for broken, match in (
        (runs.assign(precision="bf16-mixed"), "fp32"),
        (runs.assign(seed=runs["seed"] + 10), "no stored predictions|seeds"),
        (runs.assign(max_batch_rows=range(1, len(runs) + 1)), "one cap"),
    ):
        path = tmp_path / "capped.csv"
        broken.to_csv(path, index=False)
        monkeypatch.setattr(module, "CAPPED", path)
        with pytest.raises((SystemExit, ValueError), match=match):
            module.table()


def test_huge_pages_runs_are_compared_with_their_own_kind():
    """A run with huge pages gets its speed-up against the reference's run with huge pages, and
    each trainer's epoch time without and with them is reported only for one day's seeds."""
    import pandas as pd

    equal_budget = script("benchmarks/fidelity/equal_budget.py")
    rows = []
    for implementation, seconds, day in [
        ("matgnn", 40.0, "2026-12-05"),
        ("upstream", 60.0, "2026-12-05"),
        ("matgnn_huge_pages", 36.0, "2026-12-05"),
        ("upstream_huge_pages", 45.0, "2026-12-05"),
        ("matgnn_layernorm_upstream_graph", 41.0, "2026-12-04"),
        ("matgnn_layernorm_upstream_graph_huge_pages", 38.0, "2026-12-05"),
    ]:
        for seed in (0, 1):
            rows.append({"model": "alignn", "task": "matbench_phonons", "seed": seed,
                         "implementation": implementation, "wall_per_epoch_s": seconds,
                         "measured": day})  # fmt: skip
    lines = equal_budget._variant_lines(pd.DataFrame(rows))
    assert len(lines) == 2 and lines[0] == ""
    assert "matgnn 40.0 -> 36.0 s (1.11x)" in lines[1]
    assert "upstream 60.0 -> 45.0 s (1.33x)" in lines[1]
    assert "matgnn_layernorm_upstream_graph: - (other day, machine or seeds)" in lines[1]


def test_epoch_times_are_compared_on_the_seeds_both_trainers_ran():
    """A speed-up is taken over the seeds both trainers ran whose two runs share a day and a
    machine, naming them where either side ran others: a later seed of one side, or a pair
    measured on two days or boots, does not hide the paired seeds; pairs each on its own day
    give the mean of the per-seed ratios, said so; no such pair, no ratio."""
    import pandas as pd

    equal_budget = script("benchmarks/fidelity/equal_budget.py")
    boot = "2026-12-06 08:29"

    def runs(implementation, *timed):
        return pd.DataFrame([{"model": "alignn", "task": "mp2018_5k", "seed": seed,
                              "implementation": implementation, "wall_per_epoch_s": seconds,
                              "measured": day, "machine_boot": machine}
                             for seed, seconds, day, machine in timed])  # fmt: skip

    ours = runs("matgnn_layernorm_upstream_graph", (0, 600.0, "2026-12-06", boot),
                (1, 580.0, "2026-12-07", boot))  # fmt: skip
    theirs = runs("upstream", (0, 660.0, "2026-12-06", boot))
    assert equal_budget._speed_up(ours, theirs) == ("1.10x (seed 0)", "2026-12-06")
    assert equal_budget._speed_up(ours.iloc[:1], theirs) == ("1.10x", "2026-12-06")
    assert equal_budget._speed_up(ours.iloc[1:], theirs) is None  # no seed in common
    # seed 1 of upstream measured on another day, or on another machine: seed 0 alone
    other_day = runs("upstream", (0, 660.0, "2026-12-06", boot), (1, 640.0, "2026-12-06", boot))
    assert equal_budget._speed_up(ours, other_day) == ("1.10x (seed 0)", "2026-12-06")
    other_boot = runs("upstream", (0, 660.0, "2026-12-06", boot),
                      (1, 640.0, "2026-12-07", "2026-12-07 09:00"))  # fmt: skip
    assert equal_budget._speed_up(ours, other_boot) == ("1.10x (seed 0)", "2026-12-06")
    # each pair on its own day of one machine: the mean of the per-seed ratios (1.10, 1.20)
    each = runs("upstream", (0, 660.0, "2026-12-06", boot), (1, 696.0, "2026-12-07", boot))
    assert equal_budget._speed_up(ours, each) == (
        "1.15x (mean of per-seed ratios, seeds 0, 1)",
        "2026-12-06, 2026-12-07",
    )
    retained = runs("matgnn_layernorm_upstream_graph_retained", (0, 400.0, "2026-12-06", boot))
    lines = equal_budget._variant_lines(pd.concat([ours, theirs, retained]))
    assert "matgnn_layernorm_upstream_graph 600.0 -> 400.0 s (1.50x) (seed 0)" in lines[1]


def test_epoch_times_are_compared_only_on_one_machine():
    """Runs of one day are compared only when they ran on one boot of one machine, or when no
    run of the pair knows its boot (the sweeps collected before boots were recorded)."""
    import pandas as pd

    equal_budget = script("benchmarks/fidelity/equal_budget.py")

    def runs(*boots):
        return pd.DataFrame([{"seed": 0, "measured": "2026-12-06", "machine_boot": b}
                             for b in boots])  # fmt: skip

    early, late = "2026-12-05 10:20", "2026-12-06 08:28"
    assert equal_budget._one_day(runs(late), runs(late)) == "2026-12-06"
    assert equal_budget._one_day(runs(None), runs(None)) == "2026-12-06"
    assert equal_budget._one_day(runs(early), runs(late)) is None
    assert equal_budget._one_day(runs(None), runs(late)) is None
    # the kernel's boot time drifts with the clock: a minute apart is still one boot
    assert equal_budget._one_day(runs("2026-12-06 08:28"), runs("2026-12-06 08:29")) is not None
    assert equal_budget._one_day(runs(late), runs("2026-12-06 09:28")) is None
    no_column = pd.DataFrame([{"seed": 0, "measured": "2026-12-06"}])
    assert equal_budget._one_day(no_column, no_column) == "2026-12-06"


@pytest.mark.skipif(not Path("/proc/stat").is_file(), reason="boot time from Linux /proc")
def test_a_run_is_stamped_with_this_boot_only_when_it_finished_after_it(tmp_path):
    """Every implementation's result file dates it: matgnn's, upstream ALIGNN's and cgcnn-tr's."""
    import os

    equal_budget = script("benchmarks/fidelity/equal_budget.py")
    run = tmp_path / "s1"
    for implementation, result in [
        ("matgnn", "test_metrics.json"),
        ("upstream", "output/test_best.csv"),
        ("reference", "output_s1/test_results.csv"),
        ("reference_floored", "output_s1/test_results.csv"),
    ]:
        assert equal_budget.machine_boot(run, implementation) is None  # not finished
        (run / result).parent.mkdir(parents=True, exist_ok=True)
        (run / result).write_text("{}")
        assert equal_budget.machine_boot(run, implementation) is not None  # on this boot
        os.utime(run / result, (0, 0))  # written in 1970: another boot
        assert equal_budget.machine_boot(run, implementation) is None


@pytest.mark.skipif(not Path("/proc/stat").is_file(), reason="boot time from Linux /proc")
def test_a_resumed_matgnn_run_has_a_boot_only_when_every_process_of_it_started_after_it(tmp_path):
    """A matgnn run stopped and resumed runs in two processes (two log versions); finished on
    this boot, it is stamped with it only if its first process also started after it."""
    import os

    equal_budget = script("benchmarks/fidelity/equal_budget.py")
    run = tmp_path / "s0"
    for n in (0, 1):
        (run / "logs" / f"version_{n}").mkdir(parents=True)
        (run / "logs" / f"version_{n}" / "hparams.yaml").write_text("{}")
    (run / "test_metrics.json").write_text("{}")
    assert equal_budget.machine_boot(run, "matgnn") is not None
    os.utime(run / "logs" / "version_0" / "hparams.yaml", (0, 0))  # started on another boot
    assert equal_budget.machine_boot(run, "matgnn") is None


def test_the_foundation_table_outside_matbench_states_each_goal_the_right_way_round(monkeypatch):
    """An MAE meets its goal below it, an R² above it; R² gets no MAE ratio; every row says what
    MPtrj shares with the task; a declared run that is missing or a stored one not declared
    stops the table by name."""
    import benchmarks.foundation.table as foundation

    results = {
        key: {"values": [30.0] * n, "tested": [1] * n, "epochs": [2] * n, "test": "25"}
        for key, n in foundation.OTHER_RUNS.items()
    }
    results[("ye2018 all", "cgcnn")]["values"] = [40.0] * 5  # above 39: not met
    for model in ("e3nn", "cgcnn", "alignn", "matformer", "potnet", "chgnet_frozen"):
        results[("phonon_dos", model)]["values"] = [0.5]
    results[("phonon_dos", "sevennet_frozen")]["values"] = [0.7]
    monkeypatch.setattr(foundation, "other_results", lambda: results)
    rows = {}
    for line in foundation.other_table().splitlines()[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        rows[(cells[0], cells[1], cells[2])] = cells
    all_label, dos = foundation.OTHER_TASKS["ye2018 all"], foundation.OTHER_TASKS["phonon_dos"]
    assert rows[(all_label, "frozen", "chgnet")][-2:] == ["0.77", "yes"]
    assert rows[(all_label, "from scratch", "cgcnn")][-2:] == ["1.03", "no"]
    assert rows[(dos, "frozen", "chgnet")][-2:] == ["-", "no"]
    assert rows[(dos, "frozen", "sevennet")][-2:] == ["-", "yes"]
    # what pretraining shares with the task, said on every backbone row; nothing from scratch
    assert (
        rows[(all_label, "frozen", "chgnet")][3] == foundation.SHARED_WITH_PRETRAINING["ye2018 all"]
    )
    assert "never labels" in rows[(dos, "fine-tuned", "chgnet")][3]
    assert rows[(all_label, "from scratch", "cgcnn")][3] == foundation.NO_PRETRAINING
    del results[("ye2018 all", "cgcnn")]
    with pytest.raises(SystemExit, match="cgcnn"):
        foundation.other_table()


def test_equal_budget_reads_a_resumed_matgnn_run_across_its_log_versions(tmp_path):
    """A matgnn run killed and resumed (``ckpt_path=last``) logs its later epochs in a new
    ``logs/version_N``: the equal-budget reader counts every epoch once, the later version's
    where both logged one, and times every epoch."""
    import json

    import pandas as pd

    equal_budget = script("benchmarks/fidelity/equal_budget.py")
    target = "formation_energy_per_atom"
    val = f"val_{target}"

    def version(n: int, epochs: range, tested: int | None = None) -> None:
        rows = []
        for epoch in epochs:
            rows.append({"epoch": epoch, "step": 10 * epoch, "train_loss": 1.0})
            rows.append({"epoch": epoch, f"{val}_mae": 1.0 / (epoch + 1),
                         f"{val}_rmse": 2.0 / (epoch + 1),
                         "epoch_wall_time_s": 100.0 + epoch})  # fmt: skip
        if tested is not None:
            rows.append({"epoch": epochs[-1], "tested_epoch": tested})
        folder = tmp_path / "logs" / f"version_{n}"
        folder.mkdir(parents=True)
        (folder / "hparams.yaml").write_text("{}\n")  # written as the process starts
        pd.DataFrame(rows).to_csv(folder / "metrics.csv", index=False)

    version(0, range(0, 4))  # epoch 3 logged, then killed before its checkpoint was written
    version(1, range(3, 5), tested=4)  # resumed from epoch 2's checkpoint: epoch 3 again
    logged = tmp_path / "logs" / "version_1" / "metrics.csv"
    frame = pd.read_csv(logged)
    frame.loc[frame["epoch"] == 3, "epoch_wall_time_s"] *= 2  # the rerun of epoch 3 differs
    frame.to_csv(logged, index=False)
    (tmp_path / "test_metrics.json").write_text(json.dumps({f"test_{target}_mae": 0.25}))
    pd.DataFrame({"id": ["mp-1"], target: [0.1], f"predicted_{target}": [0.2]}).to_csv(
        tmp_path / "test_predictions.csv", index=False
    )
    row, curve, _ = equal_budget.matgnn_run(tmp_path, "mp2018_5k", "mae")
    assert list(curve["epoch"]) == [0, 1, 2, 3, 4]
    assert list(curve["wall_s"]) == [100.0, 101.0, 102.0, 206.0, 104.0]  # epoch 3: the rerun
    assert row["epochs"] == 5 and row["best_epoch"] == 4
    assert row["processes"] == 2
    (tmp_path / "logs" / "version_2").mkdir()  # a third process killed before it logged
    (tmp_path / "logs" / "version_2" / "hparams.yaml").write_text("{}\n")
    assert equal_budget.matgnn_run(tmp_path, "mp2018_5k", "mae")[0]["processes"] == 3
    assert row["wall_per_epoch_s"] == pytest.approx((101 + 102 + 206 + 104) / 4)


@pytest.mark.parametrize(
    ("altered", "change", "message"),
    [
        ("alignn_upstream_sampled_s1_retain", ("equal", "angles", 1), "not ours in its semantics"),
        ("alignn_upstream_sampled_dgl_s2_default", ("upstream_dgl", "edges", 1), "not the batch"),
        ("alignn_upstream_sampled_dgl_s0_retain", ("structures", None, "other"), "not the batch"),
    ],
)
def test_the_sampled_speed_block_refuses_rows_that_did_not_do_the_same_work(
    monkeypatch, altered, change, message
):
    """Upstream's and our row of a sampled batch must hold the same bonds and angles, and the
    DGL row the same batch (bonds, angles, crystals): a stored output that differs stops the
    block by name instead of giving a ratio of different work."""
    import copy

    speed_tables = script("benchmarks/speed_tables.py")
    speed_tables.sampled_table()  # the stored outputs pass
    read = speed_tables.read

    def tampered(name: str) -> dict:
        raw = copy.deepcopy(read(name))
        if name == altered:
            key, field, value = change
            if field is None:
                raw[key] = value
            else:
                row = next(r for r in raw["rows"] if r["key"] == key)
                row[field] += value
        return raw

    monkeypatch.setattr(speed_tables, "read", tampered)
    with pytest.raises(ValueError, match=message):
        speed_tables.sampled_table()


def test_the_summary_names_each_sides_seeds_where_they_differ(monkeypatch):
    """An equal-budget summary row whose two trainers ran different seeds says so for each
    side; the seed table's mark of a seed run in several processes (``1\\*``) is dropped."""
    summary = script("benchmarks/summary.py")
    seeds = {"ours": "3 (0, 1\\*, 2)", "theirs": "2 (0, 1)"}

    def cell(name, column, implementation, **row):
        return {"seeds": seeds[implementation], "epochs": "10"}.get(column, f"{implementation} MAE")

    monkeypatch.setattr(summary, "cell", cell)
    mine, other, budget = summary._equal_budget("alignn", "task", "ours", "theirs")
    assert (mine, other) == ("ours MAE", "theirs MAE (reference trainer)")
    assert budget == "10 epochs; matgnn 3 seeds (0, 1, 2), the reference 2 seeds (0, 1)"
    seeds["theirs"] = "1 (0)"
    assert summary._equal_budget("alignn", "task", "ours", "theirs")[2] == (
        "10 epochs; matgnn 3 seeds (0, 1, 2), the reference 1 seed (0)"
    )
    seeds["theirs"] = "3 (0, 1, 2)"
    assert (
        summary._equal_budget("alignn", "task", "ours", "theirs")[2]
        == "10 epochs, 3 seeds (0, 1, 2)"
    )
