#!/usr/bin/env bash
# Every measurement of the issue "Training speed and memory", one after another, into one log
# and the raw JSON outputs that benchmarks/speed_tables.py writes the docs tables (docs/results/speed.md) from:
#   bash benchmarks/setup_reference_codes.sh     # once: upstream alignn, jarvis-tools, matgl
#   bash benchmarks/training_speed.sh [out.txt]  # ~55 min on 2 cores; run on an idle machine
#   python benchmarks/speed_tables.py --update docs/results/speed.md
# 1. ALIGNN vs upstream ALIGNNAtomWisePure (and matgl's M3GNet as a second reference): step time
#    fp32 / bf16, step memory, GEMM share; with glibc's allocator (as matgnn.train runs) and
#    with freed memory retained (retain_freed_memory=true); then ours against upstream on
#    upstream's graph semantics, fp32, on three batches drawn at random from the mp2018 5k
#    crystals, with either allocator, and upstream's DGL network on them (~25 min).
# 2. Every graph model: parameters, fp32 and bf16 step, step memory (benchmarks/models.py).
# 3. Trainer step vs bare step, DataLoader collation and graph-cache reload vs the model step
#    (benchmarks/trainer_overhead.py).
# 4. Graph construction, ours against the reference codes (benchmarks/graph_build.py).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$here/.."
python="${PYTHON:-$root/.venv/bin/python}"
out="${1:-$here/results/training_speed_$(date +%F).txt}"
raw="$here/results/speed"
mkdir -p "$raw"
export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"
{
  echo "# $(date -u +%FT%TZ) $(git -C "$root" rev-parse --short HEAD) $(nproc) cores"
  echo "## benchmarks/alignn_upstream.py --steps 5 (glibc's allocator, as matgnn.train)"
  "$python" "$here/alignn_upstream.py" --steps 5 --json "$raw/alignn_upstream.json"
  echo "## benchmarks/alignn_upstream.py --steps 5 --allocator retain --rows upstream default equal"
  "$python" "$here/alignn_upstream.py" --steps 5 --allocator retain --rows upstream default equal \
    --json "$raw/alignn_upstream_retain.json"
  for seed in 0 1 2; do  # batches drawn as a shuffling loader draws them, mp2018 5k crystals
    for allocator in default retain; do
      echo "## benchmarks/alignn_upstream.py --rows upstream equal --precisions fp32 --sample-rows 6250 --sample-seed $seed --allocator $allocator --steps 3"
      "$python" "$here/alignn_upstream.py" --rows upstream equal --precisions fp32 \
        --sample-rows 6250 --sample-seed "$seed" --allocator "$allocator" --steps 3 \
        --json "$raw/alignn_upstream_sampled_s${seed}_${allocator}.json"
    done
  done
  for seed in 0 1 2; do  # the same batches through upstream's DGL network (its trainer's)
    for allocator in default retain; do
      echo "## benchmarks/alignn_upstream.py --rows upstream_dgl --precisions fp32 --sample-rows 6250 --sample-seed $seed --allocator $allocator --steps 3"
      "$python" "$here/alignn_upstream.py" --rows upstream_dgl --precisions fp32 \
        --sample-rows 6250 --sample-seed "$seed" --allocator "$allocator" --steps 3 \
        --json "$raw/alignn_upstream_sampled_dgl_s${seed}_${allocator}.json"
    done
  done
  echo "## benchmarks/models.py --repeat 3"
  "$python" "$here/models.py" --repeat 3 --json "$raw/models.json"
  echo "## benchmarks/trainer_overhead.py --steps 6"
  # its stderr (graph-building progress bars, Lightning's notices) goes to <out>.stderr
  "$python" "$here/trainer_overhead.py" --steps 6 --json "$raw/trainer_overhead.json" \
    2>"$out.stderr"
  echo "## benchmarks/graph_build.py --n 2000"
  "$python" "$here/graph_build.py" --n 2000 --json "$raw/graph_build.json"
} 2>&1 | grep --line-buffered -v "USDT\|Warning\|warnings.warn" | tee "$out"
