#!/usr/bin/env bash
# Every measurement of the data-store table (issue 29), one process at a time on an otherwise
# idle machine (2 cores here): store builds on 1 and 2 processes, then ALIGNN training (batch
# 64, 20 timed steps after 3 warm-up steps) in memory and from the disk store on the first
# 5,000 rows, on 5,000 rows drawn at random (the whole set's cell sizes; their sites per cell
# in cell-sizes) and on all 33,370 rows of the partial matbench_mp_e_form copy, and 2-process
# DDP from the store, and store builds of all rows; the same with training batches capped in
# feature rows; every structure source together (about 136,000 rows). About 30 minutes on the
# machine of 2026-12-04 (about twice that on the one of 2026-12-03) and 20 more for the capped
# and every-source rows (2026-12-05); results/<name>.json each, then
#   python benchmarks/data_store/table.py --update docs/results/speed.md
# A measurement already in results/ is skipped (delete its JSON to take it again).
#   bash benchmarks/data_store/run.sh            (from the repository root)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
export PYTHONPATH=. TQDM_DISABLE=1 OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
PY=.venv/bin/python
RESULTS=benchmarks/data_store/results
measure() {  # name, then measure.py arguments
    local name=$1
    shift
    if [ -f "$RESULTS/$name.json" ] || [ -f "$RESULTS/$name.rank0.json" ]; then
        echo "have $name"
        return
    fi
    echo "START $name $(date -u +%FT%TZ)"
    $PY benchmarks/data_store/measure.py "$@" --name "$name"
}
measure build-5k-1 build --rows 5000 --workers 1
measure build-5k-2 build --rows 5000 --workers 2
measure train-5k-memory train --rows 5000 --store memory
measure train-5k-disk train --rows 5000 --store disk
OMP_NUM_THREADS=1 measure train-5k-disk-ddp2 train --rows 5000 --store disk --devices 2
measure cell-sizes sizes --rows 5000
# 5,000 rows drawn at random: the whole set's cell sizes, so the peak compares data sizes
measure train-5k-sampled-memory train --rows 5000 --sample --store memory
measure train-5k-sampled-disk train --rows 5000 --sample --store disk
measure build-33k-1 build --rows 0 --workers 1
measure build-33k-2 build --rows 0 --workers 2
measure train-33k-memory train --rows 0 --store memory
measure train-33k-disk train --rows 0 --store disk
OMP_NUM_THREADS=1 measure train-33k-disk-ddp2 train --rows 0 --store disk --devices 2
# training batches capped in feature rows (task.data.max_batch_rows): the same crystals,
# at most 64 per batch on average, no batch above the cap
CAP=150000
measure train-5k-sampled-disk-capped train --rows 5000 --sample --store disk --max-batch-rows $CAP
# a whole epoch and its validation pass, capped (the peak of an epoch, not of 20 steps)
measure epoch-5k-sampled-disk-capped train --rows 5000 --sample --store disk \
    --max-batch-rows $CAP --epoch
measure train-33k-memory-capped train --rows 0 --store memory --max-batch-rows $CAP
measure train-33k-disk-capped train --rows 0 --store disk --max-batch-rows $CAP
OMP_NUM_THREADS=1 measure train-33k-disk-ddp2-capped train --rows 0 --store disk --devices 2 \
    --max-batch-rows $CAP
# every structure source of ../shared/data together (union.py, about 136,000 rows, the target
# computed from each structure); the in-memory path is not run (it would not fit in memory)
measure build-union-2 build --union --rows 0 --workers 2
measure train-union-disk train --union --rows 0 --store disk
measure train-union-disk-capped train --union --rows 0 --store disk --max-batch-rows $CAP
echo DONE
