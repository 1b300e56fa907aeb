"""The benchmark scripts run: each one on a tiny input, in its own process, as a user would call
it (a script that loads no structure, or measures a model that cannot take its input, fails
here instead of rotting unseen). The numbers are not checked, only that every row is there."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from matgnn.config_dir import group_options, plain_structure_options

REPO = Path(__file__).resolve().parents[1]


def run_script(script: str, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, str(REPO / script), *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, f"{script} failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    return done


def test_plain_structure_options_leave_out_only_the_site_descriptor_network():
    models = plain_structure_options("model")
    assert "ye2018_net" in group_options("model") and "ye2018_net" not in models
    assert {"cgcnn", "alignn", "e3nn"} <= set(models)
    graphs = plain_structure_options("graph")
    assert "ye2018_perovskite" not in graphs and {"cgcnn", "alignn"} <= set(graphs)
    with pytest.raises(ValueError, match="model or graph"):
        plain_structure_options("task")


def test_models_script_measures_each_model_on_real_structures(tmp_path):
    raw = tmp_path / "models.json"
    run_script("benchmarks/models.py", "--batch", "2", "--repeat", "1", "--models", "cgcnn",
               "potnet", "--json", str(raw))  # fmt: skip
    rows = json.loads(raw.read_text())["rows"]
    assert [r["model"] for r in rows] == ["cgcnn", "potnet"]
    assert all(r["params"] > 0 and r["fp32"] > 0 and r["atoms"] > 0 for r in rows)


def test_trainer_overhead_script_runs(tmp_path):
    raw = tmp_path / "trainer.json"
    run_script("benchmarks/trainer_overhead.py", "--batch", "4", "--steps", "1", "--warmup",
               "1", "--models", "cgcnn", "--json", str(raw))  # fmt: skip
    (row,) = json.loads(raw.read_text())["rows"]
    assert row["model"] == "cgcnn" and row["trainer_s"] > 0 and row["pure_s"] > 0


def test_alignn_speed_script_runs_our_rows(tmp_path):
    """Our two rows (the upstream rows need ``benchmarks/setup_reference_codes.sh``)."""
    raw = tmp_path / "alignn.json"
    run_script("benchmarks/alignn_upstream.py", "--batch", "2", "--steps", "1", "--rows",
               "default", "equal", "--json", str(raw))  # fmt: skip
    rows = json.loads(raw.read_text())["rows"]
    assert {(r["key"], r["precision"]) for r in rows} == {
        (k, p) for k in ("default", "equal") for p in ("fp32", "bf16")
    }
    assert all(r["edges"] > 0 and r["angles"] > 0 for r in rows)


def test_graph_build_script_measures_our_graphs_on_the_shipped_sample(tmp_path):
    """Our rows and the pymatgen ones (the jarvis and upstream alignn rows need
    ``benchmarks/setup_reference_codes.sh``)."""
    raw = tmp_path / "graph_build.json"
    run_script("benchmarks/graph_build.py", "--n", "4", "--potnet-n", "1", "--data-dir",
               str(tmp_path / "none"), "--ours-only", "--json", str(raw))  # fmt: skip
    stored = json.loads(raw.read_text())
    names = [r["name"].split(" (")[0] for r in stored["rows"]]
    assert names[0].startswith("(d)") and names[1].startswith("(a)")
    assert {f"ours {m}" for m in plain_structure_options("graph")} <= set(names)
    assert stored["reference_codes"] is False and stored["n"] == 4
    assert all(r["ms"] > 0 and r["edges"] > 0 for r in stored["rows"])


def test_mp2018_5k_script_trains_and_tables_a_model_on_the_shipped_mp36k_rows(tmp_path):
    run_script("benchmarks/mp2018_5k.py", "--models", "cgcnn", "--epochs", "1",
               "--limit-batches-for", "cgcnn=1", "--data-dir", str(REPO / "tests/data/mini"),
               "--out", str(tmp_path))  # fmt: skip
    (row,) = pd.read_csv(tmp_path / "mp2018_5k.csv").to_dict("records")
    assert row["model"] == "cgcnn" and row["epochs"] == 1 and row["batches_per_epoch"] == 1
    assert row["test_mae_eV_per_atom"] > 0 and (tmp_path / "mp2018_5k.md").is_file()


def test_physics_helpers_script_runs(tmp_path):
    raw = tmp_path / "physics.json"
    run_script("benchmarks/physics_helpers.py", "--repeat", "1", "--json", str(raw))
    written = json.loads(raw.read_text())
    rows = {r["quantity"]: r for r in written["rows"]}
    assert len(rows) == 7 and all(r["items"] > 0 for r in rows.values())
    assert "heat_capacity 300 K (51 bins)" in rows and "vrh_moduli (6 moduli)" in rows
    for row in rows.values():  # every timing measured, batched where the helper has a batch form
        timings = [v for k, v in row.items() if k.endswith("_us")]
        assert len(timings) >= 2 and all(v > 0 for v in timings), row["quantity"]
    assert sum("ours_batched_us" in r for r in rows.values()) == 6
    assert written["scale"]["cartesian_rotations_us_per_crystal"] > 0


#: the body of a stand-in ``python`` for matgnn.train: it echoes its arguments and, unless
#: NO_METRICS is set, writes test_metrics.json into its ``hydra.run.dir`` as a finished run does
_WRITES_METRICS = """echo "args: $*"
for a in "$@"; do
    case $a in hydra.run.dir=*) d=${a#hydra.run.dir=} ;; esac
done
[ -n "$NO_METRICS" ] || { mkdir -p "$d"; echo "{}" > "$d/test_metrics.json"; }
"""


def _stand_in_python(tmp_path: Path, body: str = _WRITES_METRICS) -> Path:
    """A folder ``tmp_path/bin`` holding a stand-in ``python``: a bash script of ``body``
    (by default :data:`_WRITES_METRICS`). Put the folder first on ``PATH`` to run a benchmark
    script without training anything."""
    stand_in = tmp_path / "bin" / "python"
    stand_in.parent.mkdir(exist_ok=True)
    stand_in.write_text(f"#!/usr/bin/env bash\n{body}")
    stand_in.chmod(0o755)
    return stand_in.parent


def tensor_run_args(tmp_path: Path, only: str = "") -> dict[str, list[str]]:
    """The matgnn.train arguments of each run of ``benchmarks/tensors/run.sh`` (those named in
    ``only``, else every run), as the script passes them: run with a stand-in ``python``."""
    bin_dir = _stand_in_python(tmp_path)
    runs = tmp_path / "tensor_runs"
    env = {k: v for k, v in os.environ.items() if k not in ("NO_METRICS", "ONLY")}
    env.update(PATH=f"{bin_dir}:{env['PATH']}", VIRTUAL_ENV=str(bin_dir.parent),
               RUNS=str(runs), ONLY=only)  # fmt: skip
    done = subprocess.run(
        ["bash", str(REPO / "benchmarks/tensors/run.sh")],
        cwd=REPO, env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0 and "CHAIN-DONE" in done.stdout, done.stderr
    return {
        log.stem: log.read_text().removeprefix("args: -m matgnn.train ").split()
        for log in runs.glob("*.log")
    }


def test_tensor_runs_give_each_head_its_overrides(tmp_path):
    """``benchmarks/tensors/run.sh`` with a stand-in ``python``: all 16 runs, each with the
    recipe and its cap; the SevenNet runs frozen with cached features; the gated runs give their
    outputs' heads a hidden gated layer, the elastic ones a tensor square (and both)."""
    args = tensor_run_args(tmp_path)
    assert len(args) == 16
    recipe = "scheduler=exponential optimizer.lr=5e-3 optimizer.weight_decay=0.05"
    assert all(recipe in " ".join(a) for a in args.values())
    frozen = {"finetune.freeze=backbone", "finetune.cache_features=true"}
    for name, a in args.items():
        assert name.startswith("sevennet") == frozen.issubset(a), name
        assert ("_gated_" in name) == any(".hidden=" in x for x in a), name
        assert ("square" in name) == any(".square=" in x for x in a), name
    assert "+trainer.max_time=00:00:14:00" in args["sevennet_gated_square_elastic_tensor"]
    heads = [x for x in args["sevennet_gated_born_charges"] if x.startswith("+task.heads")]
    assert heads == [
        "+task.heads.becs._target_=matgnn.heads.AtomTensorHead",
        "+task.heads.becs._partial_=true",
        "+task.heads.becs.formula='ij'",
        "+task.heads.becs.hidden='128x0e+32x1e+32x2e'",
        "+task.heads.eps._target_=matgnn.heads.TensorHead",
        "+task.heads.eps._partial_=true",
        "+task.heads.eps.formula='ij=ji'",
        "+task.heads.eps.hidden='128x0e+32x1e+32x2e'",
    ]
    square = [x for x in args["sevennet_square_elastic_tensor"] if x.startswith("+task.heads")]
    assert square[2:] == [
        "+task.heads.elastic_tensor.formula='ijkl=jikl=klij'",
        "+task.heads.elastic_tensor.square='16x4e'",
    ]


def test_the_fine_tuning_sweep_runs_each_arm_through_train_run(tmp_path):
    """``benchmarks/finetune/learning_curve.sh`` with a stand-in ``python``: every arm, size
    and seed is one ``train_run`` (so a finished run is skipped and a killed one resumes), with
    the arm's fine-tuning overrides and the nested training subset of its size and seed."""
    bin_dir = _stand_in_python(tmp_path)
    runs = tmp_path / "runs"
    (runs / "frozen" / "n50_s1").mkdir(parents=True)
    (runs / "frozen" / "n50_s1" / "test_metrics.json").write_text("{}")
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "SEEDS": "1",
           "SIZES": "50 all", "ARMS": "scratch slow frozen"}  # fmt: skip
    done = subprocess.run(
        ["bash", str(REPO / "benchmarks/finetune/learning_curve.sh"), str(runs)],
        cwd=REPO, env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"DONE {runs}/frozen/n50_s1 (skipped)" in done.stdout
    logs = {p.relative_to(runs).as_posix(): p.read_text() for p in runs.glob("*/*.log")}
    assert sorted(logs) == ["frozen/nall_s1.log", "scratch/n50_s1.log", "scratch/nall_s1.log",
                            "slow/n50_s1.log", "slow/nall_s1.log"]  # fmt: skip
    assert (
        "task.data.split.train_size=50 task.data.split.train_seed=1 seed=1"
        in logs["scratch/n50_s1.log"]
    )
    assert "task.data.split.train_size=null" in logs["scratch/nall_s1.log"]
    assert "finetune." not in logs["scratch/n50_s1.log"]
    slow = "finetune.from=cgcnn_mp2018_eform finetune.backbone_lr_scale=0.1"
    assert slow in logs["slow/n50_s1.log"]
    assert "finetune.freeze=backbone" in logs["frozen/nall_s1.log"]
    assert (runs / "slow" / "n50_s1" / "commits.txt").is_file()


def test_equal_budget_resumes_a_killed_run_on_upstreams_graphs(tmp_path):
    """``benchmarks/fidelity/equal_budget.sh``'s runs of matgnn's trainer on upstream's graphs,
    with a stand-in ``python``: a run with a last checkpoint continues from it (``ckpt_path=
    last``, the attempt appended to its log), a fresh one starts from scratch, a finished one
    is skipped, and one that ends without test metrics stops the sweep, naming its log."""
    bin_dir = _stand_in_python(
        tmp_path,
        'echo "args: $*"\n'
        'if [ "$2" = train ]; then\n'  # upstream_graphs.py train <graphs> <run> ...
        '    cp "$SPLIT" "$4/split.json"\n'
        '    [ -n "$NO_METRICS" ] || echo "{}" > "$4/test_metrics.json"\n'
        "fi\n",
    )
    runs = tmp_path / "runs"
    task = runs / "alignn" / "mp2018_5k"
    split = task / "split" / "s0" / "split.json"
    split.parent.mkdir(parents=True)
    split.write_text("{}")
    (task / "upstream_graphs.npz").write_text("")  # built: the sweep does not build it

    def sweep(norms: str, no_metrics: str = "") -> subprocess.CompletedProcess:
        # the sweep's other settings from outside would rename or change its runs
        settings = {"NO_METRICS", "ALIGNN_HUGE_PAGES", "ALIGNN_RETAIN", "ALIGNN_EPOCHS", "TASKS"}
        env = {k: v for k, v in os.environ.items() if k not in settings}
        env.update(PATH=f"{bin_dir}:{env['PATH']}", SPLIT=str(split), SEEDS="0",
                   ARMS="alignn", ALIGNN_TASKS="mp2018_5k", ALIGNN_RUNS="",
                   ALIGNN_NORMS=norms)  # fmt: skip
        if no_metrics:
            env["NO_METRICS"] = "1"
        return subprocess.run(
            ["bash", str(REPO / "benchmarks/fidelity/equal_budget.sh"), str(runs)],
            cwd=REPO, env=env, capture_output=True, text=True,
        )  # fmt: skip

    killed = task / "matgnn_layernorm_upstream_graph" / "s0"
    (killed / "checkpoints").mkdir(parents=True)
    (killed / "checkpoints" / "last.ckpt").write_text("")
    (killed / "train.log").write_text("epochs 0-1 of the first attempt\n")
    done = sweep("layer batch")
    assert done.returncode == 0 and "EQUAL-BUDGET-DONE" in done.stdout, done.stderr
    log = (killed / "train.log").read_text()
    assert log.startswith("epochs 0-1 of the first attempt\n")  # appended, not replaced
    assert re.search(r"### attempt \S+Z ckpt_path=last\n", log)
    assert re.search(r"args: .*upstream_graphs\.py train .*seed=0 ckpt_path=last\n", log)
    assert "++model.backbone.norm=layer" in log
    fresh = (task / "matgnn_upstream_graph" / "s0" / "train.log").read_text()
    assert "args: " in fresh and "ckpt_path" not in fresh and "norm=" not in fresh
    again = sweep("layer")  # finished: skipped
    assert again.returncode == 0 and (killed / "train.log").read_text() == log
    failed = sweep("none", no_metrics="1")
    assert failed.returncode == 1 and "EQUAL-BUDGET-DONE" not in failed.stdout
    run = task / "matgnn_nonenorm_upstream_graph" / "s0"
    assert f"run {run} failed: {run}/train.log" in failed.stderr
    (task / "upstream_graphs.npz").unlink()
    no_norms = sweep(" ")  # no run on upstream's graphs: they are not built
    assert no_norms.returncode == 0 and "EQUAL-BUDGET-DONE" in no_norms.stdout, no_norms.stderr
    assert "upstream_graphs.py" not in no_norms.stdout
    assert not (task / "upstream_graphs.npz").exists()
    assert "upstream_graphs.py export" in sweep("batch").stdout  # a norm to run: built


def test_chen_dos_runs_give_each_foundation_arm_its_overrides_and_cap(tmp_path):
    """``benchmarks/phonons/run_models.sh`` with a stand-in ``python``: every model runs the
    e3nn recipe on Chen's DOS; the frozen backbones cache their features; the fine-tuned CHGNet
    trains whole and the last-blocks one freezes its embeddings and first 2 blocks, both with
    the backbone at a tenth of the learning rate and a 45-minute cap instead of 10."""
    bin_dir = _stand_in_python(tmp_path)
    runs = tmp_path / "runs"
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}",
           "MODELS": "cgcnn chgnet_frozen chgnet_finetuned chgnet_last_blocks"}  # fmt: skip
    done = subprocess.run(
        ["bash", str(REPO / "benchmarks/phonons/run_models.sh"), str(runs)],
        cwd=REPO, env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    args = {p.stem: p.read_text() for p in runs.glob("*.log")}
    assert sorted(args) == ["cgcnn", "chgnet_finetuned", "chgnet_frozen", "chgnet_last_blocks"]
    recipe = "task=phonon_dos scheduler=exponential optimizer.lr=5e-3"
    assert all(recipe in a for a in args.values())
    assert "model=cgcnn " in args["cgcnn"] and "finetune." not in args["cgcnn"]
    assert "+trainer.max_time=00:00:10:00" in args["cgcnn"]
    frozen = "model=chgnet finetune.freeze=backbone finetune.cache_features=true"
    assert frozen in args["chgnet_frozen"]
    assert "+trainer.max_time=00:00:10:00" in args["chgnet_frozen"]
    whole = "model=chgnet finetune.backbone_lr_scale=0.1 paths.cache_dir="
    assert whole in args["chgnet_finetuned"]
    last = "model=chgnet finetune.freeze=layers:2 finetune.backbone_lr_scale=0.1 paths.cache_dir="
    assert last in args["chgnet_last_blocks"]
    for name in ("chgnet_finetuned", "chgnet_last_blocks"):
        assert "+trainer.max_time=00:00:45:00" in args[name]
        assert "cache_features" not in args[name] and "freeze=backbone" not in args[name]


def test_train_run_skips_resumes_and_stops_loudly(tmp_path):
    """``benchmarks/train_run.sh``, the run step of the benchmark run scripts, with a stand-in
    ``python`` that records its arguments: a finished run is skipped, a killed one resumes
    from its last checkpoint, and a failed one stops the script, naming its log."""
    bin_dir = _stand_in_python(tmp_path, f'[ -z "$FAIL" ] || exit 1\n{_WRITES_METRICS}')

    def call(run: Path, fail: str = "") -> subprocess.CompletedProcess:
        script = f'source "{REPO}/benchmarks/train_run.sh"; train_run "{run}" task=x; echo after'
        env = {k: v for k, v in os.environ.items() if k not in ("FAIL", "NO_METRICS")}
        env["PATH"] = f"{bin_dir}:{env['PATH']}"
        if fail:
            env[fail] = "1"
        return subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True)

    done = tmp_path / "done"
    done.mkdir()
    (done / "test_metrics.json").write_text("{}")
    result = call(done)
    assert "DONE" in result.stdout and not (tmp_path / "done.log").exists()
    killed = tmp_path / "killed"
    (killed / "checkpoints").mkdir(parents=True)
    (killed / "checkpoints" / "last.ckpt").write_text("")
    result = call(killed)
    assert result.returncode == 0 and "after" in result.stdout
    log = (tmp_path / "killed.log").read_text()
    assert f"-m matgnn.train task=x ckpt_path=last hydra.run.dir={killed}" in log
    # the attempt's code is recorded: the commit (of this repository) and the time
    (attempt,) = (killed / "commits.txt").read_text().splitlines()
    assert attempt.split()[0] != "unknown" and attempt.endswith("Z")
    # and the machine: CPU model, cores, time
    (machine,) = (killed / "machines.txt").read_text().splitlines()
    assert re.fullmatch(r"\S.*, \d+ cores \d{4}-\d\d-\d\dT\S+Z", machine), machine
    assert (killed / "test_metrics.json").is_file()
    result = call(tmp_path / "fresh", fail="FAIL")
    assert result.returncode == 1 and "after" not in result.stdout
    assert f"FAILED {tmp_path / 'fresh'}: see {tmp_path / 'fresh'}.log" in result.stderr
    assert "ckpt_path" not in (tmp_path / "fresh.log").read_text()
    # a run that exits 0 without its test metrics is a failure too
    result = call(tmp_path / "silent", fail="NO_METRICS")
    assert result.returncode == 1 and "after" not in result.stdout
    assert f"FAILED {tmp_path / 'silent'}: it ended without test_metrics.json" in result.stderr


def test_data_store_measurements_run_on_a_tiny_local_copy(tmp_path):
    """``benchmarks/data_store/measure.py``, each phase on a 40-row local copy of
    ``matbench_mp_e_form`` (real MP structures standing in for its first official rows): the
    store build, the cell sizes, and ALIGNN training from the store, first rows and sampled,
    with its per-step record."""
    from matminer.utils.io import store_dataframe_as_json

    from matgnn.data.samples import mp_sample_frame, mp_sample_structures

    _, structures = mp_sample_structures(40)
    e_form = mp_sample_frame()["formation_energy_per_atom"].to_numpy()[:40]
    data = tmp_path / "data"
    data.mkdir()
    store_dataframe_as_json(
        pd.DataFrame({"structure": structures, "e_form": e_form}),
        str(data / "matbench_mp_e_form.json.gz"),
        compression="gz",
    )
    common = ("--data-dir", str(data), "--cache", str(tmp_path / "cache"))
    build = run_script("benchmarks/data_store/measure.py", "build", "--rows", "40",
                       "--workers", "2", "--shard-size", "10", *common)  # fmt: skip
    built = json.loads(build.stdout.strip().splitlines()[-1])
    assert built["graphs"] + built["rejected"] == 40 and built["store_mb"] > 0
    sizes = run_script("benchmarks/data_store/measure.py", "sizes", "--rows", "20", *common)
    cells = json.loads(sizes.stdout.strip().splitlines()[-1])
    assert cells["first"]["crystals"] == cells["sampled"]["crystals"] == 20
    assert cells["all"]["crystals"] == 40
    assert cells["sampled"]["mean_sites"] != cells["first"]["mean_sites"]  # other rows
    for sample in ((), ("--sample",)):
        train = run_script("benchmarks/data_store/measure.py", "train", "--rows", "30",
                           *sample, "--store", "disk", "--steps", "1", "--warmup", "1",
                           *common)  # fmt: skip
        result = json.loads(train.stdout.strip().splitlines()[-1])
        assert result["sampled"] == bool(sample) and result["crystals_per_second"] > 0
        assert len(result["per_step"]) == 2 and all(s["atoms"] > 0 for s in result["per_step"])
    capped = run_script("benchmarks/data_store/measure.py", "train", "--rows", "30", "--store",
                        "disk", "--steps", "1", "--warmup", "1", "--max-batch-rows", "40000",
                        *common)  # fmt: skip
    result = json.loads(capped.stdout.strip().splitlines()[-1])
    assert result["max_batch_rows"] == 40000 and result["train_batches"] >= 1
    assert all(s["atoms"] + s["edges"] + s["angles"] <= 40000 for s in result["per_step"])
    epoch = run_script("benchmarks/data_store/measure.py", "train", "--rows", "30", "--store",
                       "disk", "--warmup", "0", "--max-batch-rows", "40000", "--epoch",
                       *common)  # fmt: skip
    result = json.loads(epoch.stdout.strip().splitlines()[-1])
    assert result["epoch"] and len(result["per_step"]) == result["train_batches"]
    assert result["steps"] == result["train_batches"] and result["crystals_per_second"] > 0
    validation = result["validation"]
    assert validation["crystals"] >= 1 and validation["batches"] >= 1
    # VmHWM reads max(the kernel's stored high-water mark, the current resident set) and the
    # stored mark is updated lazily, so a peak read while the resident set stood above it can
    # read a little lower later (CI once: 1110.61 then 1110.43 MB): not monotonic to the MB
    assert validation["peak_rss_after_mb"] >= 0.99 * validation["peak_rss_before_mb"] > 0
    # every structure source together (union.py): the other two Matbench copies stand in as
    # the first one does, mp36k and perov_5 are the shipped subsets
    import shutil

    for task, column in (("matbench_mp_gap", "gap pbe"), ("matbench_perovskites", "e_form")):
        store_dataframe_as_json(
            pd.DataFrame({"structure": structures, column: e_form}),
            str(data / f"{task}.json.gz"),
            compression="gz",
        )
    for folder in ("mp36k", "cdvae"):
        shutil.copytree(REPO / "tests/data/mini" / folder, data / folder)
    build = run_script("benchmarks/data_store/measure.py", "build", "--union", "--rows", "6",
                       "--shard-size", "10", *common)  # fmt: skip
    built = json.loads(build.stdout.strip().splitlines()[-1])
    assert built["union"] and built["rows"] == 30 and built["graphs"] + built["rejected"] == 30
    train = run_script("benchmarks/data_store/measure.py", "train", "--union", "--rows", "12",
                       "--store", "disk", "--steps", "1", "--warmup", "1", *common)  # fmt: skip
    result = json.loads(train.stdout.strip().splitlines()[-1])
    assert result["union"] and result["graphs"] == 60 and result["crystals_per_second"] > 0
    refused = subprocess.run(
        [sys.executable, str(REPO / "benchmarks/data_store/measure.py"), "build", "--sample"],
        cwd=REPO, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    assert refused.returncode == 2 and "--sample is for train" in refused.stderr
    refused = subprocess.run(
        [sys.executable, str(REPO / "benchmarks/data_store/measure.py"), "sizes", "--sample",
         "--rows", "0"],
        cwd=REPO, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    assert refused.returncode == 2 and "--sample needs --rows N" in refused.stderr


def test_invariance_script_stores_every_crystal_and_writes_its_table(tmp_path):
    """``--measure`` on the shipped sample (no shared data): one row per crystal and transform,
    the provenance, and a table that names how many crystals each row covers."""
    import pandas as pd

    out = tmp_path / "invariance"
    absent = str(tmp_path / "absent")
    done = run_script("benchmarks/invariance.py", "--measure", "--n", "2", "--models", "cgcnn",
                      "--published", "--data-dir", absent, "--out", str(out))  # fmt: skip
    changes = pd.read_csv(out / "changes.csv")
    assert set(changes["graph"]) == {"default", "published"} and changes["id"].nunique() == 2
    assert len(changes) == 2 * 2 * 6  # graphs x crystals x transforms
    assert json.loads((out / "run.json").read_text())["crystals"] == 2
    assert "| CGCNN | 2 of 2 |" in done.stdout and "shipped sample" in done.stdout


def test_invariance_table_fails_loudly_without_a_stored_run(tmp_path):
    done = subprocess.run(
        [sys.executable, str(REPO / "benchmarks/invariance.py"), "--out", str(tmp_path)],
        cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode != 0 and "no stored invariance run" in done.stderr


def test_imatgen_representation_script_runs_on_the_shipped_mp_rows(tmp_path):
    """benchmarks/design/representation.py on the 40 MP rows of tests/data/mini: every V-O
    structure of them stored and tabled; without a stored run the table fails loudly."""
    results = tmp_path / "representation.csv.gz"
    done = run_script("benchmarks/design/representation.py", "--run", "tests/data/mini",
                      "--results", str(results))  # fmt: skip
    assert "| position RMSE over the data set, Å | 0.11 |" in done.stdout
    import pandas as pd

    from matgnn.design.vo_dataset import build_vo_dataset

    frame = pd.read_csv(results, comment="#")
    expected = build_vo_dataset(REPO / "tests" / "data" / "mini")
    assert len(expected.ids) > 0 and sorted(frame["id"]) == sorted(expected.ids)
    assert frame["refined_fully_reconstructed"].all()
    with pytest.raises(AssertionError, match=r"is missing: run python representation\.py --run"):
        run_script("benchmarks/design/representation.py", "--results", str(tmp_path / "none.gz"))


def test_imatgen_autoencoder_and_generation_tables_run_on_tiny_runs(tmp_path):
    """benchmarks/design/autoencoders.py and generation.py on one-epoch networks of the shipped
    sample: every part tabled with the checkpoints' epochs; without a stored run each fails
    loudly."""

    def train(stage: str, *overrides: str) -> None:
        done = subprocess.run(
            [sys.executable, "-m", "matgnn.design.train", f"stage={stage}",
             "trainer.max_epochs=1", f"paths.cache_dir={tmp_path}",
             f"hydra.run.dir={tmp_path / stage}", *overrides],
            cwd=tmp_path, env={**os.environ, "OMP_NUM_THREADS": "1"},
            capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]

    for stage in ("cell", "basis"):
        train(stage, "network.width=2", "data.train_limit=4", "trainer.limit_val_batches=1")
    chosen = run_script("benchmarks/design/cell_choice.py", "--data", "sample",
                        str(tmp_path / "cell"), str(tmp_path / "cell"))  # fmt: skip
    assert chosen.stdout.strip() == str(tmp_path / "cell")
    assert "best checkpoint epoch 0" in chosen.stderr and "within 0.1 Å and 2°" in chosen.stderr
    chosen = run_script("benchmarks/design/basis_choice.py", "--data", "sample",
                        str(tmp_path / "basis"), str(tmp_path / "basis"))  # fmt: skip
    assert chosen.stdout.strip() == str(tmp_path / "basis")
    lines = [line for line in chosen.stderr.splitlines() if "best checkpoint epoch" in line]
    assert len(lines) == 2 and lines[0] == lines[1]  # the same run, the same numbers
    assert "best checkpoint epoch 0, decoding threshold" in lines[0]
    assert "the cell exact: fully reconstructed" in lines[0]
    assert not (tmp_path / "basis" / "decoding.json").exists()  # written by the evaluation only
    from benchmarks.design.basis_choice import chosen_run

    runs = [{"run": "a", "fully_reconstructed": 5, "matches": 9},
            {"run": "b", "fully_reconstructed": 6, "matches": 7},
            {"run": "c", "fully_reconstructed": 6, "matches": 8},
            {"run": "d", "fully_reconstructed": 6, "matches": 8}]  # fmt: skip
    assert chosen_run(runs) == "c"  # the most reconstructed, then matched, then the first
    results = tmp_path / "autoencoders.csv.gz"
    done = run_script("benchmarks/design/autoencoders.py", "--run",
                      "--cell", str(tmp_path / "cell"), "--basis", str(tmp_path / "basis"),
                      "--train-rows", "3", "--results", str(results))  # fmt: skip
    for part in ("| train | 3 |", "| test |", "| held out | 14 |", "| paper (train and test) |"):
        assert part in done.stdout
    assert "best checkpoint epoch 0 (1 epochs run, 4 training structures" in done.stdout
    assert "Adam lr 0.001 constant)" in done.stdout
    assert "| fully reconstructed | matched by StructureMatcher |" in done.stdout
    # the decoding chosen on the validation structures, stored in the basis run, tabled
    decoding = json.loads((tmp_path / "basis" / "decoding.json").read_text())
    peak = decoding["peak_threshold"]
    assert f"Decoded at a peak threshold of {peak:g} in the basis images" in done.stdout
    saddles = " | ".join(f"merge saddle {k}" for k in ("none", "0.9", "0.8", "0.7", "0.6"))
    assert f"| peak threshold | {saddles} |" in done.stdout
    assert len(decoding["counts"]) == 7 * 5 and "overlap_cut" in decoding
    # the test structures again through one autoencoder alone, the other image exact
    for part in ("| test, the cell autoencoder alone (basis images exact) |",
                 "| test, the basis autoencoder alone (cell image exact) |"):  # fmt: skip
        assert done.stdout.count(part) == 1
    rows = pd.read_csv(results, skiprows=1, keep_default_na=False, na_values=[""])
    cell_alone, basis_alone = (rows[rows["part"] == f"test_{k}_alone"] for k in ("cell", "basis"))
    assert len(cell_alone) == len(basis_alone) == (rows["part"] == "test").sum()
    # the image left exact never fails: a cell image's failure only where the cell network is
    # used, a basis image's only where the basis network is; an exact cell gives the lattice
    reasons = {k: f["reason"].fillna("") for k, f in (("cell", cell_alone), ("basis", basis_alone))}
    assert not reasons["basis"].str.contains("lines through the centre|no valid angles").any()
    assert not reasons["cell"].str.contains("no atom").any()
    decoded = basis_alone[basis_alone["decoded"].astype(str) == "True"]
    assert (decoded["error_a"].abs() < 1e-4).all() and (decoded["error_gamma"].abs() < 1e-3).all()
    with pytest.raises(AssertionError, match=r"is missing: run python autoencoders\.py --run"):
        run_script("benchmarks/design/autoencoders.py", "--results", str(tmp_path / "none.gz"))

    train(
        "generator",
        "generator.latent=8",
        "generator.hidden=8",
        f"generator.cell_run={tmp_path / 'cell'}",
        f"generator.basis_run={tmp_path / 'basis'}",
        "seed=3",
    )
    # the generation decodes as the basis run's decoding.json says: set values the choice
    # cannot give
    stored = tmp_path / "basis" / "decoding.json"
    peak = 0.042
    chosen = {"peak_threshold": peak, "merge_saddle": 0.65, "overlap_cut": 1.23}
    stored.write_text(json.dumps({**json.loads(stored.read_text()), **chosen}))
    results = tmp_path / "generation.csv.gz"
    done = run_script("benchmarks/design/generation.py", "--run",
                      "--generator", str(tmp_path / "generator"), "--random", "4",
                      "--pairs", "2", "--points", "3", "--per-structure", "2",
                      "--snapshot", str(REPO / "matgnn/resources/mp36k_sample.csv.gz"),
                      "--results", str(results),
                      "--sweep", str(tmp_path / "generator"))  # fmt: skip
    for row in ("| rediscovery mu | 14 |", "| rediscovery | 28 |", "| random | 4 |",
                "| slerp | 6 |", "| fitted | 4 |", "best checkpoint epoch 0", "Screened: ",
                "| candidate | formula |", "nearest other one",
                "| generator | 0.001 | 30 | 1 (0) |",
                "after the generator (best checkpoint, epoch 0)",
                f"basis images decoded at a peak threshold of {peak:g}, a maximum merged into "
                "a higher one where the path between them stays above 0.65 of its height",
                "| and no atoms closer than 1.23 Å (of all) |",
                "the cut calibrated on the validation structures"):  # fmt: skip
        assert row in done.stdout
    # the validation and test structures from their codes, without and with the generator
    chain = pd.read_csv(tmp_path / "generator_reconstruction.csv.gz", skiprows=1)
    split = json.loads((tmp_path / "generator" / "split.json").read_text())
    for part in ("val", "test"):
        for through in ("autoencoders", "generator"):
            rows = chain[(chain["part"] == part) & (chain["through"] == through)]
            assert rows["id"].tolist() == split[part]
            route = "autoencoders" if through == "autoencoders" else "generator, then autoencoders"
            assert f"| {part} | {route} | {len(rows)} |" in done.stdout
    assert (chain.loc[chain["through"] == "autoencoders", "code_error"] == 0).all()
    assert (chain.loc[chain["through"] == "generator", "code_error"] > 0).all()
    sweep = pd.read_csv(tmp_path / "generator_sweep.csv.gz", skiprows=1)
    assert sweep["structures"].tolist() == [len(split["val"])]
    assert sweep["fully_reconstructed"].tolist() == [
        int(
            (chain[(chain["part"] == "val") & (chain["through"] == "generator")])[
                "fully_reconstructed"
            ].sum()
        )
    ]
    pca = pd.read_csv(tmp_path / "latent_pca.csv.gz", skiprows=1)
    assert len(pca) == 200 and set(pca["part"]) >= {"train", "held_out"}
    assert pca["label"].isna().all()  # a generator without a property: no label to colour by
    assert (tmp_path / "latent_pca.png").stat().st_size > 0
    screened = pd.read_csv(tmp_path / "screening.csv.gz", skiprows=1)
    generated = pd.read_csv(results, skiprows=1)
    sampled = generated["method"].isin(["random", "fitted", "slerp"])
    chosen = generated[sampled & generated["decoded"] & generated["valid_oxidation_state"]]
    assert generated["id"].is_unique and screened["id"].is_unique
    assert set(screened["id"]) <= set(chosen["id"])
    # the attribution script at the stored decoding's saddle gives generation.py's chain counts
    # and rediscovery (the same draw: 2 latents per held-out structure). One-epoch networks of
    # width 2 decode nothing, so every count here is 0: this checks the record's plumbing, and
    # tests/test_benchmark_tables.py the kept generator's real counts against its tables
    attribution = tmp_path / "attribution.json"
    run_script("benchmarks/design/merge_attribution.py", "--generator",
               str(tmp_path / "generator"), "--per-structure", "2",
               "--out", str(attribution))  # fmt: skip
    record = json.loads(attribution.read_text())
    # by default without merging and at the chosen saddle
    assert record["peak_threshold"] == peak and set(record["by_saddle"]) == {"none", "0.65"}
    assert record["generator_epoch"] == 0  # one epoch run: its best checkpoint is epoch 0
    training = record["training"]  # the run's seed, recipe and result, for a spread over seeds
    assert training["seed"] == 3 and training["epochs_run"] == 1 and training["best_val_loss"] > 0
    assert training["recipe"]["latent"] == 8 and training["recipe"]["kl_weight"] == 1e-3
    assert training["codes_sha256"] is not None
    from benchmarks.blocks import script

    counted = script("benchmarks/design/merge_attribution.py").COUNTED
    at_chosen = record["by_saddle"]["0.65"]
    for part in ("val", "test"):
        for through in ("autoencoders", "generator"):
            rows = chain[(chain["part"] == part) & (chain["through"] == through)]
            counts = at_chosen["chain"][f"{part}/{through}"]
            assert counts == {c: int(rows[c].sum()) for c in counted}
    redrawn = generated[generated["method"] == "rediscovery"]
    assert at_chosen["rediscovery_decoded"] == int(redrawn["decoded"].sum())
    assert set(at_chosen["rediscovered"]) == set(redrawn.loc[redrawn["matches_parent"], "parent"])
    for counts in record["by_saddle"].values():
        assert set(counts["rediscovered"]) <= set(split["held_out"])
    # the training facts rewritten from the run folder: the same, and refused for other weights
    refresh = ("--generator", str(tmp_path / "generator"), "--out", str(attribution),
               "--training-only")  # fmt: skip
    run_script("benchmarks/design/merge_attribution.py", *refresh)
    assert json.loads(attribution.read_text()) == record
    attribution.write_text(json.dumps({**record, "generator_weights_sha256": "0" * 64}))
    refused = subprocess.run(
        [sys.executable, str(REPO / "benchmarks/design/merge_attribution.py"), *refresh],
        env={**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"},
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert refused.returncode != 0 and "not the weights" in refused.stderr
    # a generator run kept without its codes: the checked autoencoders make them again
    (tmp_path / "generator" / "codes.pt").unlink()
    again = tmp_path / "again.csv.gz"
    run_script("benchmarks/design/generation.py", "--run", "--generator",
               str(tmp_path / "generator"), "--random", "4", "--pairs", "2", "--points", "3",
               "--per-structure", "2", "--results", str(again),
               "--snapshot", str(REPO / "matgnn/resources/mp36k_sample.csv.gz"),
               "--sweep", str(tmp_path / "generator"))  # fmt: skip
    assert (
        pd.read_csv(again, skiprows=1)["formula"].fillna("").equals(generated["formula"].fillna(""))
    )
    with pytest.raises(AssertionError, match=r"is missing: run python generation\.py --run"):
        run_script("benchmarks/design/generation.py", "--results", str(tmp_path / "none.gz"))


def test_imatgen_labels_script_labels_the_shipped_sample(tmp_path):
    """benchmarks/design/labels.py on the shipped V-O sample: every structure labelled by the
    named model, checked on the 14 known V-O structures; without a stored run it fails."""
    results = tmp_path / "labels.csv.gz"
    done = run_script("benchmarks/design/labels.py", "--run", "--results", str(results))
    assert "| `cgcnn_xie2018_formation_energy` | 200 | 200 | 0 | 14 | 0.069 |" in done.stdout
    with pytest.raises(AssertionError, match=r"is missing: run python labels\.py --run"):
        run_script("benchmarks/design/labels.py", "--results", str(tmp_path / "none.gz"))


def test_foundation_runs_start_on_the_shipped_partial_copy(tmp_path):
    """``benchmarks/foundation/run.sh``: the frozen, last-blocks and fine-tuned CHGNet recipes,
    each for one fold and one epoch of two batches (``FOUNDATION_EXTRA``), on the shipped 80-row
    partial copy of matbench_phonons, each recorded in its own submission folder."""
    from tests.matbench import DATA

    root = tmp_path / "foundation"
    fast = "folds=[0] trainer.max_epochs=1 +trainer.limit_train_batches=2 task.data.batch_size=16"
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": str(REPO),
        "OMP_NUM_THREADS": "1",
        "MATGNN_DATA_DIR": str(DATA),
        "MATGNN_CACHE_DIR": str(tmp_path / "cache"),
        "FOUNDATION_ROOT": str(root),
        "FOUNDATION_EXTRA": f"{fast} +trainer.enable_progress_bar=false",
    }
    runs = ["chgnet_frozen_phonons", "chgnet_last_blocks_phonons", "chgnet_finetuned_phonons"]
    done = subprocess.run(
        ["bash", "benchmarks/foundation/run.sh", *runs],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]
    for arm in ("frozen", "last_blocks", "finetuned"):
        task = root / arm / "matbench_v0.1_matgnn_chgnet" / "matbench_phonons"
        assert (task / "fold_0").is_dir(), sorted(p.name for p in root.rglob("*"))[:40]
        assert not (task / "fold_1").exists()
    info = json.loads((root / "frozen" / "matbench_v0.1_matgnn_chgnet" / "info.json").read_text())
    assert info["algorithm"] == "matgnn CHGNet 0.3.0, frozen (head only)"
    last = root / "last_blocks" / "matbench_v0.1_matgnn_chgnet"
    assert "freeze: layers:2" in (last / "matbench_phonons" / "config.yaml").read_text()
    info = json.loads((last / "info.json").read_text())
    assert info["algorithm"] == "matgnn CHGNet 0.3.0, last 2 of 4 blocks trained"
    refused = subprocess.run(
        ["bash", "benchmarks/foundation/run.sh", "nonsense"],
        cwd=REPO, env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert refused.returncode == 2 and "unknown run nonsense" in refused.stderr


def test_benchmark_batches_drawn_at_random_are_seeded_and_refuse_too_few_rows(tmp_path):
    """``load(sample=(rows, seed))`` (``alignn_upstream.py --sample-rows``): the same seed draws
    the same crystals, another seed others, and not simply the first rows; asking for more
    rows than the data holds is refused in words."""
    from benchmarks.models import load
    from matgnn.graphs import GraphConfig

    graphs = [GraphConfig.preset("cgcnn")]
    none = tmp_path / "none"  # no mp36k here: the shipped sample
    first, _, _ = load(4, none, graphs)
    drawn, target, source = load(4, none, graphs, sample=(40, 1))
    again, target_again, _ = load(4, none, graphs, sample=(40, 1))
    other, _, _ = load(4, none, graphs, sample=(40, 2))
    assert "random sample (seed 1) of its first 40 rows" in source
    assert drawn == again and target.tolist() == target_again.tolist()
    assert drawn != first and drawn != other
    head, _, _ = load(40, none, graphs)  # the draw comes from the first 40 rows only
    assert all(s in head for s in drawn + other)
    with pytest.raises(SystemExit, match="fewer than the 1000000 to sample"):
        load(4, none, graphs, sample=(10**6, 0))


def _design_run_calls(tmp_path: Path, steps: list[str], **env_vars: str) -> list[list[str]]:
    """The ``python`` calls of ``benchmarks/design/run.sh`` for ``steps``, run with a
    stand-in ``python`` that records its arguments, one call a line."""
    calls = tmp_path / "calls.txt"
    bin_dir = _stand_in_python(tmp_path, f'echo "$*" >> "{calls}"\n')
    env = {k: v for k, v in os.environ.items() if k != "BASIS_WIDTH"}
    env.update(PATH=f"{bin_dir}:{env['PATH']}", IMATGEN_RUNS=str(tmp_path / "runs"),
               **env_vars)  # fmt: skip
    done = subprocess.run(["bash", str(REPO / "benchmarks/design/run.sh"), *steps],
                          cwd=REPO, env=env, capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return [line.split() for line in calls.read_text().splitlines()]


@pytest.mark.parametrize("width", [None, "32"])
def test_design_run_trains_and_uses_the_basis_autoencoder_of_its_width(tmp_path, width):
    """``BASIS_WIDTH`` sets the basis autoencoder's width and run folder (default 16,
    ``basis_w16``); the generators read that run and train in folders of their own width
    (``generator``, else ``generator_w<width>``), which the generation reads."""
    extra = {"BASIS_WIDTH": width} if width else {}
    steps = ["basis", "generator_sweep", "generator", "evaluate", "generation"]
    basis, *sweep, compare, generator, evaluate, generation = _design_run_calls(
        tmp_path, steps, **extra
    )
    runs = tmp_path / "runs"
    run = str(runs / f"basis_w{width or 16}")
    gen = str(runs / ("generator" + (f"_w{width}" if width else "")))
    assert f"network.width={width or 16}" in basis and f"hydra.run.dir={run}" in basis
    assert "stage=basis" in basis
    assert len(sweep) == 6 and compare[compare.index("--sweep") + 1].startswith(f"{gen}_kl")
    for call in [*sweep, generator]:
        assert f"generator.basis_run={run}" in call
    assert all(any(a.startswith(f"hydra.run.dir={gen}_kl") for a in call) for call in sweep)
    assert f"hydra.run.dir={gen}" in generator
    assert evaluate[evaluate.index("--basis") + 1] == run
    assert generation[generation.index("--generator") + 1] == gen


def test_design_run_warm_starts_the_basis_autoencoder_and_compares_on_validation(tmp_path):
    """``basis_shape`` and its control ``basis_continued`` start from the basis run's best
    weights (``init_from``) with the same epochs and schedule, the shape term only in the
    first, each in its own folder; ``basis_choice`` compares the basis run with those that
    exist."""
    basis, shape, continued, choice = _design_run_calls(
        tmp_path, ["basis", "basis_shape", "basis_continued", "basis_choice"]
    )
    run = str(tmp_path / "runs" / "basis_w16")
    for call, name in ((shape, "shape"), (continued, "continued")):
        assert f"init_from={run}" in call and f"hydra.run.dir={run}_{name}" in call
        assert "stage=basis" in call and "network.width=16" in call
        assert {"lr=1e-4", "lr_decay.start=0", "trainer.max_epochs=6", "lr_decay.epochs=5"} <= set(
            call
        )
    assert "network.shape_weight=1.0" in shape and "network.shape_weight=1.0" not in continued
    assert "init_from" not in " ".join(basis)
    # no warm run has a checkpoint here: the basis run is compared alone
    assert choice[0] == "benchmarks/design/basis_choice.py" and choice[-1] == run
    (tmp_path / "calls.txt").unlink()
    (tmp_path / "runs" / "basis_w16_shape" / "checkpoints").mkdir(parents=True)
    (tmp_path / "runs" / "basis_w16_shape" / "checkpoints" / "best.ckpt").write_text("")
    [choice] = _design_run_calls(tmp_path, ["basis_choice"])
    assert choice[-2:] == [run, f"{run}_shape"]
