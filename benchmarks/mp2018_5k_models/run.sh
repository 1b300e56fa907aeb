#!/usr/bin/env bash
# Every scalar model of matgnn on mp2018_eform with 5,000 training structures (the first 6,250
# rows of mp36k, seeded 80/10/10: 5,000 / 625 / 625), each model's default config and graph
# (invariant), AdamW + OneCycle, batch 64, the best-validation checkpoint tested; 3 epochs each
# (the budget that fits ALIGNN, Matformer, PotNet and e3nn into one 2-core session), CGCNN also
# 30 epochs. One run at a time on 2 cores; nothing else should run (the table reports s/epoch).
#   bash benchmarks/mp2018_5k_models/run.sh [runs folder] [run names...]   (from the repo root)
# (run names, e.g. matformer_3 e3nn_3: only those runs; default: every run)
# then: python benchmarks/mp2018_5k_models/table.py --collect <runs folder> \
#     --update docs/results/mp2018-5k.md
# A finished run is skipped, a killed one resumes from its last checkpoint, a failed one stops
# the chain naming its log (benchmarks/train_run.sh).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
source benchmarks/train_run.sh
export PATH="$PWD/.venv/bin:$PATH"
RUNS=${1:-runs/mp2018_5k_models}
shift || true
ONLY=" $* "
DATA=${MATGNN_DATA_DIR:-../shared/data}
mkdir -p "$RUNS"
# each run's <run>/commits.txt (written by train_run) records the code it ran, for the table
run() {  # name model epochs
    if [ "$ONLY" != "  " ] && [[ "$ONLY" != *" $1 "* ]]; then return 0; fi
    train_run "$RUNS/$1" "model=$2" task=mp2018_eform task.data.source.limit=6250 \
        "trainer.max_epochs=$3" "paths.data_dir=$DATA" seed=0
}
run cgcnn_3 cgcnn 3
run cgcnn_30 cgcnn 30
run potnet_3 potnet 3
run alignn_3 alignn 3
run matformer_3 matformer 3
run e3nn_3 e3nn 3
echo CHAIN-DONE
