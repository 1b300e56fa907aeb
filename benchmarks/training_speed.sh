#!/usr/bin/env bash
# Every measurement of the issue "Training speed and memory", one after another, into one log:
#   bash benchmarks/setup_reference_codes.sh     # once: upstream alignn, jarvis-tools, matgl
#   bash benchmarks/training_speed.sh [out.txt]  # ~25 min on 2 cores; run on an idle machine
# 1. ALIGNN vs upstream ALIGNNAtomWisePure (and matgl's M3GNet as a second reference): step time
#    fp32 / bf16, step memory, GEMM share; with matgnn.train's allocator setting and glibc's own.
# 2. Every model: parameters, fp32 and bf16 step, step memory (benchmarks/models.py).
# 3. Trainer step vs bare step, DataLoader collation and graph-cache reload vs the model step
#    (benchmarks/trainer_overhead.py).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$here/.."
python="${PYTHON:-$root/.venv/bin/python}"
out="${1:-$here/results/training_speed_$(date +%F).txt}"
export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"
{
  echo "# $(date -u +%FT%TZ) $(git -C "$root" rev-parse --short HEAD) $(nproc) cores"
  echo "## benchmarks/alignn_upstream.py --steps 5 (allocator retain, as matgnn.train)"
  "$python" "$here/alignn_upstream.py" --steps 5
  echo "## benchmarks/alignn_upstream.py --steps 5 --allocator default --rows upstream default equal"
  "$python" "$here/alignn_upstream.py" --steps 5 --allocator default --rows upstream default equal
  echo "## benchmarks/models.py --repeat 3"
  "$python" "$here/models.py" --repeat 3
  echo "## benchmarks/trainer_overhead.py --steps 6"
  # its stderr (graph-building progress bars, Lightning's notices) goes to <out>.stderr
  "$python" "$here/trainer_overhead.py" --steps 6 2>"$out.stderr"
} 2>&1 | grep --line-buffered -v "USDT\|Warning\|warnings.warn" | tee "$out"
