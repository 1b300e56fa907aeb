#!/usr/bin/env bash
# The prepared check for a machine with an NVIDIA GPU (written for one H200, 16 cores, no
# network). Run from the repository root after `bash scripts/install.sh`:
#
#   bash benchmarks/gpu_check.sh
#
# A few minutes. Every step has a timeout, and each timeout is cut to what is left of an
# 8-minute budget (GPU_CHECK_BUDGET seconds, default 470), so the whole check stops within
# 8 minutes. Each step prints one PASS or FAIL line. The lines are also written to
# ${OUT:-gpu_check_out}/gpu_check.txt, and each step's full log is in the same folder.
# Nothing here makes up a number: every figure in that folder is measured by this run.
#
#   a. nvidia-smi; the torch, CUDA, cuDNN, Lightning and PyG versions; the device; a matrix
#      product on it. scripts/install.sh installs the CPU build of torch, so the check stops
#      first (exit status 1) if torch.cuda.is_available() is false, and says how to install a
#      CUDA build.
#   b. The tests that exercise device-sensitive code: the fused edge-gated convolution against
#      the plain autograd formulas (values, gradients, batch-norm statistics), bf16 autocast,
#      and every model's forward and backward. The tests in tests/ run on the CPU unless
#      MATGNN_TEST_DEVICE names another device. So this step runs
#        b1. tests/models/test_edge_gating.py, tests/models/test_mixed_precision.py and
#            tests/models/test_training.py::test_gradients_reach_every_parameter as written
#            (they check the CPU path of the installed CUDA build of torch), and
#        b2. the same tests on cuda:0 (MATGNN_TEST_DEVICE=cuda:0, read by their `device`
#            fixture in tests/conftest.py), with tests/models/test_device.py, which checks
#            each model's CUDA predictions against its CPU ones in float64.
#      Each part runs with pytest -q -x under a timeout. A skipped test counts as FAIL.
#   c. One-GPU DDP smoke test: python -m matgnn.train trainer=ddp trainer.accelerator=gpu
#      trainer.devices=1 trainer.max_epochs=1 run_name=gpu_check_ddp on the embedded default
#      task (cgcnn, mp_sample_eform), writing to outputs/mp_sample_eform/cgcnn/gpu_check_ddp.
#      The log must show NCCL, and the predictions CSV must hold every test crystal exactly
#      once.
#   d. ALIGNN training throughput on cuda:0 next to upstream alignn's ALIGNNAtomWisePure.
#      This uses the rows and the step of benchmarks/alignn_upstream.py: forward -> MSE ->
#      backward -> AdamW step, fp32 and bf16 autocast, same model settings, same graphs. The
#      batch is 64 crystals, seeded and drawn from mp_eform: the Matbench copy in
#      ${MATGNN_DATA_DIR:-../shared/data}, read through matgnn.data.sources.matbench.local_file.
#      If that copy is missing, the batch comes from the embedded sample task mp_sample_eform,
#      and the output says so. Each time is the median of GPU_CHECK_STEPS (20) synchronised
#      steps after 3 warm-up steps. The memory figure is the peak CUDA memory allocated over
#      those steps.
#      Upstream alignn must be installed in benchmarks/.reference-site. Use
#      `bash benchmarks/setup_reference_codes.sh` where there is a package index, or copy that
#      folder onto the machine. With GPU_CHECK_SETUP_REFERENCE=1 this script tries the setup
#      itself when the folder is missing. Without upstream, our rows are still measured but the
#      step FAILs.
#
# Environment: PYTHON (default .venv/bin/python), OUT, MATGNN_DATA_DIR, GPU_CHECK_STEPS,
# GPU_CHECK_BATCH, GPU_CHECK_SETUP_REFERENCE, GPU_CHECK_BUDGET. Exit status: 0 only when every
# step passes.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
python="${PYTHON:-$root/.venv/bin/python}"
out_dir="${OUT:-gpu_check_out}"
mkdir -p "$out_dir"
out_dir="$(cd "$out_dir" && pwd)"
summary="$out_dir/gpu_check.txt"
data_dir="${MATGNN_DATA_DIR:-../shared/data}"
steps="${GPU_CHECK_STEPS:-20}"
batch="${GPU_CHECK_BATCH:-64}"
export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 MPLBACKEND=Agg
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
failures=0
started=$SECONDS
budget="${GPU_CHECK_BUDGET:-470}"

# limit SECONDS: a step's timeout, cut to what is left of the budget (at least 10 s)
limit() {
  local left=$((budget - (SECONDS - started)))
  if ((left < $1)); then
    echo $((left > 10 ? left : 10))
  else
    echo "$1"
  fi
}

# record STATUS STEP SECONDS DETAIL: one summary line, on stdout and in gpu_check.txt
record() {
  local line
  line="$(printf '%-4s  %-30s %4ss  %s' "$1" "$2" "$3" "$4")"
  echo "$line" | tee -a "$summary"
  if [[ "$1" != PASS ]]; then
    failures=$((failures + 1))
  fi
}

# show_tail LOG: the end of a failed step's log on stdout
show_tail() {
  echo "---- last lines of $1"
  tail -n 40 "$1" || true
  echo "----"
}

commit="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
if [[ -n "$(git status --porcelain --untracked-files=no 2>/dev/null || true)" ]]; then
  commit="$commit with uncommitted changes"
fi
{
  echo "# benchmarks/gpu_check.sh $(date -u +%FT%TZ)"
  echo "# commit $commit, $(nproc) cores, host $(hostname)"
  echo "# logs: $out_dir"
} > "$summary"
cat "$summary"

if [[ ! -x "$python" ]]; then
  record FAIL "a. environment" 0 "no $python: run bash scripts/install.sh first (or set PYTHON)"
  exit 1
fi

# ---------------------------------------------------------------------------------------------
# a. nvidia-smi, versions, the device
# ---------------------------------------------------------------------------------------------
t0=$SECONDS
log="$out_dir/a_environment.log"
smi_rc=0
{
  echo "## nvidia-smi"
  timeout 30 nvidia-smi
} > "$log" 2>&1 || smi_rc=$?
cat > "$work/environment.py" <<'PY'
import sys

import lightning
import torch
import torch_geometric

print(f"python {sys.version.split()[0]}")
print(f"torch {torch.__version__}, built for CUDA {torch.version.cuda}, "
      f"cuDNN {torch.backends.cudnn.version()}")
if not torch.cuda.is_available():
    sys.exit(3)
print(f"lightning {lightning.__version__}, torch_geometric {torch_geometric.__version__}")
for i in range(torch.cuda.device_count()):
    p = torch.cuda.get_device_properties(i)
    print(f"cuda:{i} {p.name}, {p.total_memory / 2**30:.0f} GiB, "
          f"compute capability {p.major}.{p.minor}, {p.multi_processor_count} SMs")
print(f"bf16 supported: {torch.cuda.is_bf16_supported()}, "
      f"NCCL available: {torch.distributed.is_nccl_available()}")
a = torch.randn(4096, 4096, device="cuda")
b = (a @ a).sum()
torch.cuda.synchronize()
print(f"4096x4096 matmul on cuda:0: finite {bool(torch.isfinite(b))}")
PY
env_rc=0
{
  echo "## python environment"
  timeout 60 "$python" "$work/environment.py"
} >> "$log" 2>&1 || env_rc=$?
cat "$log"
if [[ $env_rc -eq 3 ]]; then
  record FAIL "a. environment" $((SECONDS - t0)) "torch.cuda.is_available() is false"
  cat <<EOF | tee -a "$summary"

torch in $python cannot use a GPU. Its version line is above: a "+cpu" version and
"built for CUDA None" mean the CPU build that scripts/install.sh installs. To get a CUDA build of
the same torch version, matching the driver's CUDA version (nvidia-smi, top right), run:
    $python -m pip uninstall -y torch
    $python -m pip install torch==<the version above, without +cpu> \\
        --index-url https://download.pytorch.org/whl/cu<XY>
The second command pulls the nvidia-* runtime wheels too. Plain PyPI's Linux torch wheel is a
CUDA build as well. Without network, install the wheels you copied onto the machine. Then
run bash benchmarks/gpu_check.sh again.
If torch was built for CUDA but still sees no device, check nvidia-smi and
CUDA_VISIBLE_DEVICES.
EOF
  exit 1
fi
if [[ $env_rc -ne 0 ]]; then
  record FAIL "a. environment" $((SECONDS - t0)) "the torch/CUDA check failed (rc $env_rc), see $log"
  exit 1
fi
if [[ $smi_rc -ne 0 ]]; then
  record FAIL "a. environment" $((SECONDS - t0)) "nvidia-smi failed (rc $smi_rc); torch sees the GPU"
else
  record PASS "a. environment" $((SECONDS - t0)) "$(grep -m1 '^cuda:0' "$log"); $(grep -m1 '^torch ' "$log")"
fi

# ---------------------------------------------------------------------------------------------
# b. tests
# ---------------------------------------------------------------------------------------------
# junit_counts XML: "tests failed skipped" from pytest's JUnit XML
junit_counts() {
  "$python" - "$1" <<'PY'
import sys
import xml.etree.ElementTree as ET

root = ET.parse(sys.argv[1]).getroot()
suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
count = lambda key: sum(int(s.get(key, 0)) for s in suites)  # noqa: E731
print(count("tests"), count("failures") + count("errors"), count("skipped"))
PY
}

# run_pytest NAME TIMEOUT LOG XML PYTEST-ARGS...: one summary line; skips count as FAIL
run_pytest() {
  local name="$1" limit="$2" log="$3" xml="$4" t0=$SECONDS rc=0 counts tests failed skipped
  shift 4
  rm -f "$xml"
  timeout "$limit" "$python" -m pytest -q -x -p no:cacheprovider --junitxml="$xml" "$@" \
    > "$log" 2>&1 || rc=$?
  if [[ $rc -eq 124 ]]; then
    record FAIL "$name" $((SECONDS - t0)) "timed out after ${limit}s, see $log"
    show_tail "$log"
    return
  fi
  if [[ ! -s "$xml" ]] || ! counts="$(junit_counts "$xml")"; then
    record FAIL "$name" $((SECONDS - t0)) "pytest rc $rc and no test report, see $log"
    show_tail "$log"
    return
  fi
  read -r tests failed skipped <<< "$counts"
  local detail="$tests tests, $failed failed, $skipped skipped (pytest rc $rc)"
  if [[ $rc -eq 0 && $failed -eq 0 && $skipped -eq 0 && $tests -gt 0 ]]; then
    record PASS "$name" $((SECONDS - t0)) "$detail"
  else
    [[ $skipped -gt 0 ]] && detail="$detail; a skipped test counts as a failure here"
    record FAIL "$name" $((SECONDS - t0)) "$detail, see $log"
    grep -E '^(SKIPPED|FAILED|ERROR)' "$log" || true
    show_tail "$log"
  fi
}

run_pytest "b1. device tests as written" "$(limit 90)" \
  "$out_dir/b1_pytest_cpu.log" "$out_dir/b1_pytest_cpu.xml" \
  tests/models/test_edge_gating.py tests/models/test_mixed_precision.py \
  "tests/models/test_training.py::test_gradients_reach_every_parameter"

# the same tests on cuda:0: their `device` fixture (tests/conftest.py) reads MATGNN_TEST_DEVICE;
# tests/models/test_device.py adds each model's CUDA predictions against its CPU ones
MATGNN_TEST_DEVICE=cuda:0 run_pytest "b2. device tests on cuda:0" "$(limit 150)" \
  "$out_dir/b2_pytest_cuda.log" "$out_dir/b2_pytest_cuda.xml" \
  tests/models/test_edge_gating.py tests/models/test_mixed_precision.py \
  "tests/models/test_training.py::test_gradients_reach_every_parameter" \
  tests/models/test_device.py

# ---------------------------------------------------------------------------------------------
# c. one-GPU DDP smoke test
# ---------------------------------------------------------------------------------------------
t0=$SECONDS
log="$out_dir/c_ddp.log"
run_dir="outputs/mp_sample_eform/cgcnn/gpu_check_ddp"
rm -rf "$run_dir"  # this script's own run folder from an earlier check
rc=0
lim="$(limit 105)"
timeout "$lim" "$python" -m matgnn.train trainer=ddp trainer.accelerator=gpu trainer.devices=1 \
  trainer.max_epochs=1 run_name=gpu_check_ddp > "$log" 2>&1 || rc=$?
if [[ $rc -eq 0 ]]; then
  rc=0
  detail="$("$python" - "$run_dir" "$log" <<'PY'
import csv
import json
import math
import sys
from pathlib import Path

run, log = Path(sys.argv[1]), Path(sys.argv[2]).read_text()
problems = []
if "distributed_backend=nccl" not in log:
    problems.append("no 'distributed_backend=nccl' in the log")
if "GPU available: True (cuda), used: True" not in log:
    problems.append("Lightning did not report the GPU as used")
metrics_file = run / "test_metrics.json"
metrics = json.loads(metrics_file.read_text()) if metrics_file.is_file() else {}
if not metrics or not all(math.isfinite(v) for v in metrics.values()):
    problems.append(f"test metrics missing or not finite: {metrics}")
test_ids = json.loads((run / "split.json").read_text())["test"]
with open(run / "test_predictions.csv") as handle:
    predicted = [row["id"] for row in csv.DictReader(handle)]
if sorted(predicted) != sorted(test_ids):
    problems.append(f"{len(predicted)} predictions for {len(test_ids)} test crystals")
mae = {k: round(v, 4) for k, v in metrics.items() if k.endswith("_mae")}
print("; ".join(problems) if problems else f"NCCL, {len(test_ids)} test crystals once each, {mae}")
sys.exit(1 if problems else 0)
PY
)" || rc=$?
  if [[ $rc -eq 0 ]]; then
    record PASS "c. DDP, 1 GPU" $((SECONDS - t0)) "$detail; run in $run_dir"
  else
    record FAIL "c. DDP, 1 GPU" $((SECONDS - t0)) "${detail:-the run folder could not be checked}; see $log"
    show_tail "$log"
  fi
elif [[ $rc -eq 124 ]]; then
  record FAIL "c. DDP, 1 GPU" $((SECONDS - t0)) "timed out after ${lim}s, see $log"
  show_tail "$log"
else
  record FAIL "c. DDP, 1 GPU" $((SECONDS - t0)) "matgnn.train exit status $rc, see $log"
  show_tail "$log"
fi

# ---------------------------------------------------------------------------------------------
# d. ALIGNN against upstream alignn on the GPU
# ---------------------------------------------------------------------------------------------
t0=$SECONDS
log="$out_dir/d_alignn_upstream_cuda.log"
: > "$log"
if [[ ! -d benchmarks/.reference-site/alignn && "${GPU_CHECK_SETUP_REFERENCE:-0}" == 1 ]]; then
  echo "## benchmarks/setup_reference_codes.sh (GPU_CHECK_SETUP_REFERENCE=1)" >> "$log"
  PYTHON="$python" timeout "$(limit 120)" bash benchmarks/setup_reference_codes.sh >> "$log" 2>&1 \
    || echo "setup_reference_codes.sh failed or timed out" >> "$log"
fi
cat > "$work/alignn_cuda.py" <<'PY'
"""ALIGNN training throughput on cuda:0 next to upstream alignn's ALIGNNAtomWisePure: the rows,
model settings and step of benchmarks/alignn_upstream.py, moved to the GPU (synchronised
timing, peak CUDA memory). Written and run by benchmarks/gpu_check.sh, step d."""

from __future__ import annotations

import argparse
import gzip
import itertools
import json
import statistics
import sys
import time
from contextlib import nullcontext
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from pymatgen.core import Structure
from torch_geometric.data import Batch

from matgnn.config_dir import compose_option
from matgnn.data.samples import mp_sample_frame
from matgnn.data.sources.matbench import local_file
from matgnn.graphs import GraphConfig, build_graph

parser = argparse.ArgumentParser()
parser.add_argument("--root", type=Path, required=True)
parser.add_argument("--data-dir", type=Path, required=True)
parser.add_argument("--batch", type=int, default=64)
parser.add_argument("--steps", type=int, default=20)
parser.add_argument("--warmup", type=int, default=3)
parser.add_argument("--json", type=Path, required=True)
args = parser.parse_args()

BENCHMARKS = args.root / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))
from _process import environment  # noqa: E402
from alignn_upstream import ROWS, UPSTREAM_GRAPH, upstream_model_and_inputs  # noqa: E402
from models import first_accepted  # noqa: E402

DEVICE = torch.device("cuda")
DEFAULT = GraphConfig.preset("alignn")
EQUAL = replace(DEFAULT, **UPSTREAM_GRAPH)


def candidates():
    """(id, structure, formation energy) of mp_eform, a seeded shuffle of the Matbench copy
    that task=mp_eform reads (only the rows needed are turned into structures), or else of the
    embedded sample task mp_sample_eform; and a note of the source."""
    path = local_file("matbench_mp_e_form", args.data_dir)
    if path is not None:
        with gzip.open(path, "rt") as handle:
            raw = json.load(handle)  # matminer's orient="split" frame
        column = {name: k for k, name in enumerate(raw["columns"])}
        order = np.random.default_rng(0).permutation(len(raw["data"]))

        def rows():
            for i in order:
                row = raw["data"][i]
                structure = Structure.from_dict(row[column["structure"]])
                yield raw["index"][i], structure, float(row[column["e_form"]])

        note = f"mp_eform: {path} ({len(order)} rows, seeded shuffle)"
        return rows(), note
    print(
        f"NOTE: no mp_eform data in {args.data_dir} (looked for matbench_mp_e_form.json.gz and "
        "matbench_partial/matbench_mp_e_form_partial.json.gz): measured on the embedded sample "
        "task mp_sample_eform instead",
        flush=True,
    )
    frame = mp_sample_frame()

    def rows():
        for mp_id, cif, target in zip(
            frame["mp_id"], frame["cif"], frame["formation_energy_per_atom"], strict=True
        ):
            yield mp_id, Structure.from_str(cif, fmt="cif"), float(target)

    return rows(), "mp_sample_eform fallback: the embedded 1,500 MP crystals, first rows"


def load(n: int):
    """The first n candidates that both of our graphs accept (benchmarks/models.py's
    first_accepted: never a silently smaller batch), from at most 5 n candidates."""
    rows, note = candidates()
    tried = itertools.islice(((s, t) for _, s, t in rows), 5 * n)
    structures, targets, skipped = first_accepted(tried, n, [DEFAULT, EQUAL])
    if len(structures) < n:
        raise SystemExit(f"{note}: only {len(structures)} of {n} structures ({skipped} refused)")
    return structures, torch.tensor(targets, dtype=torch.float32), f"{note}; {skipped} refused"


def cuda_steps(step, parameters) -> tuple[float, float, float]:
    """alignn_upstream.time_steps on the GPU: forward (under bf16 autocast when asked) -> MSE ->
    backward -> AdamW step -> zero_grad, synchronised; median seconds of args.steps after
    args.warmup, the peak CUDA memory allocated over them (MB) and the last loss."""
    optimizer = torch.optim.AdamW(parameters, lr=1e-4)
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated()
    times = []
    for k in range(args.warmup + args.steps):
        torch.cuda.synchronize()
        start = time.perf_counter()
        loss = step()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        torch.cuda.synchronize()
        if k >= args.warmup:
            times.append(time.perf_counter() - start)
    peak = (torch.cuda.max_memory_allocated() - before) / 2**20
    return statistics.median(times), peak, float(loss.detach())


def autocast(bf16: bool):
    return torch.autocast("cuda", dtype=torch.bfloat16) if bf16 else nullcontext()


def ours(structures, target, graph: GraphConfig, bf16: bool):
    """alignn_upstream.ours: matgnn/configs/model/alignn.yaml on ``graph``."""
    cfg = compose_option("model", "alignn")
    cfg.graph = graph.to_config()
    torch.manual_seed(0)
    model = instantiate(cfg).to(DEVICE).train()
    batch = Batch.from_data_list([build_graph(s, graph) for s in structures])
    edges, angles = batch.edge_index.size(1), batch.lg_edge_index.size(1)
    batch = batch.to(DEVICE)

    def step():
        with autocast(bf16):
            prediction = model(batch)["y"]
        return F.mse_loss(prediction.float().squeeze(-1), target)

    return edges, angles, *cuda_steps(step, list(model.parameters()))


def upstream(structures, target, bf16: bool, our_graph: GraphConfig | None = None):
    """alignn_upstream.upstream on cuda:0: the model and inputs of
    alignn_upstream.upstream_model_and_inputs, moved to the GPU."""
    model, (g, lg, lattice), edges, angles = upstream_model_and_inputs(structures, our_graph)
    model, g, lg, lattice = model.to(DEVICE), g.to(DEVICE), lg.to(DEVICE), lattice.to(DEVICE)

    def step():
        with autocast(bf16):
            prediction = model((g, lg, lattice))["out"]
        return F.mse_loss(prediction.float(), target)

    return edges, angles, *cuda_steps(step, list(model.parameters()))


def main() -> int:
    started = time.perf_counter()
    structures, target, source = load(args.batch)
    target = target.to(DEVICE)
    atoms = sum(len(s) for s in structures)
    print(f"structures: {args.batch} ({atoms} atoms) from {source}", flush=True)
    print(
        f"torch {torch.__version__}, {torch.cuda.get_device_name(0)}; median of {args.steps} "
        f"synchronised steps after {args.warmup}; data ready after "
        f"{time.perf_counter() - started:.0f}s",
        flush=True,
    )
    header = (
        f"{'code':<30} {'precision':<9} {'edges':>7} {'angles':>8} {'s/step':>8} "
        f"{'struct/s':>9} {'peak MB':>8} {'loss':>9}"
    )
    print(header + "\n" + "-" * len(header), flush=True)
    rows: dict[tuple[str, str], dict] = {}
    raw = {
        **environment(),
        "script": "benchmarks/gpu_check.sh (step d)",
        "device": torch.cuda.get_device_name(0),
        "batch": args.batch,
        "steps": args.steps,
        "warmup": args.warmup,
        "structures": source,
        "atoms": atoms,
        "rows": [],
    }
    site = BENCHMARKS / ".reference-site"
    have_upstream = (site / "alignn").is_dir()
    plan = [("default", DEFAULT), ("equal", EQUAL)]
    plan += [("upstream", None), ("upstream_default", DEFAULT)] if have_upstream else []
    for key, graph in plan:
        if key.startswith("upstream") and str(site) not in sys.path:
            sys.path.insert(0, str(site))
        for precision in ("fp32", "bf16"):
            bf16 = precision == "bf16"
            if key == "upstream":
                measured = upstream(structures, target, bf16)
            elif key == "upstream_default":
                measured = upstream(structures, target, bf16, graph)
            else:
                measured = ours(structures, target, graph, bf16)
            edges, angles, seconds, peak, loss = measured
            row = rows[key, precision] = {
                "key": key, "name": ROWS[key], "precision": precision, "edges": edges,
                "angles": angles, "seconds": seconds, "peak_mb": peak, "loss": loss,
            }  # fmt: skip
            raw["rows"].append(row)
            args.json.write_text(json.dumps(raw, indent=1) + "\n")
            print(
                f"{ROWS[key]:<30} {precision:<9} {edges:>7} {angles:>8} {seconds:>8.4f} "
                f"{args.batch / seconds:>9.1f} {peak:>8.0f} {loss:>9.3g}",
                flush=True,
            )
            torch.cuda.empty_cache()
    comparisons = [
        ("ours default graph / upstream on its own graph", "default", "upstream"),
        ("ours / upstream, both on our default graph", "default", "upstream_default"),
        ("ours / upstream, both on upstream's graph", "equal", "upstream"),
    ]
    raw["ratios"] = []
    for text, ours_key, up_key in comparisons:
        for precision in ("fp32", "bf16"):
            if (ours_key, precision) in rows and (up_key, precision) in rows:
                a, b = rows[ours_key, precision], rows[up_key, precision]
                throughput, memory = b["seconds"] / a["seconds"], a["peak_mb"] / b["peak_mb"]
                raw["ratios"].append({"comparison": text, "precision": precision,
                                      "throughput": throughput, "memory": memory})  # fmt: skip
                print(f"{text}, {precision}: throughput {throughput:.2f}, peak memory {memory:.2f}")
    args.json.write_text(json.dumps(raw, indent=1) + "\n")
    bad = [f"{r['name']} {r['precision']}" for r in rows.values() if not np.isfinite(r["loss"])]
    if bad:
        print(f"non-finite loss: {bad}")
        return 1
    if not have_upstream:
        print(
            f"upstream: not measured, {site} has no alignn: run bash "
            "benchmarks/setup_reference_codes.sh where there is a package index, or copy that "
            "folder here (GPU_CHECK_SETUP_REFERENCE=1 makes gpu_check.sh try the setup)"
        )
        return 3
    return 0


sys.exit(main())
PY
rc=0
lim="$(limit 180)"
timeout "$lim" "$python" "$work/alignn_cuda.py" --root "$root" --data-dir "$data_dir" \
  --batch "$batch" --steps "$steps" --json "$out_dir/alignn_upstream_cuda.json" 2>&1 \
  | grep --line-buffered -v "warnings.warn" | tee -a "$log" || rc=${PIPESTATUS[0]}
data_note=mp_eform
if grep -q '^NOTE: no mp_eform data' "$log"; then
  data_note="mp_sample_eform (no mp_eform data)"
fi
headline="$(grep -m1 '^ours default graph / upstream on its own graph, fp32' "$log" || true)"
step="d. ALIGNN vs upstream, GPU"
case $rc in
  0) record PASS "$step" $((SECONDS - t0)) \
       "data $data_note; ours/upstream fp32: ${headline#*fp32: }; table in $log" ;;
  3) record FAIL "$step" $((SECONDS - t0)) \
       "data $data_note; our rows measured, upstream not (no benchmarks/.reference-site/alignn)" ;;
  124) record FAIL "$step" $((SECONDS - t0)) \
       "timed out after ${lim}s (rows so far in $out_dir/alignn_upstream_cuda.json); see $log" ;;
  *) record FAIL "$step" $((SECONDS - t0)) "exit status $rc; see $log"
     show_tail "$log" ;;
esac

echo "# total $((SECONDS - started))s, $failures step(s) failed" | tee -a "$summary"
[[ $failures -eq 0 ]]
