#!/usr/bin/env bash
# Issue 14 tensor runs, seed 0, 2 cores, one run at a time. Chen 2021 recipe for every run:
# AdamW 5e-3, wd 0.05, exponential 0.96/epoch, batch 16, <=100 epochs, wall-clock cap each.
#   RUNS=<runs folder, default runs/tensors> MATGNN_DATA_DIR=<data, default ../shared/data> \
#     bash benchmarks/tensors/run.sh
# then: python benchmarks/tensors/table.py --collect <runs folder> --update docs/results/tensors.md
# A finished run (test_metrics.json) is skipped and a killed one continues from its last
# checkpoint, so a stopped chain goes on where it was; a run that fails stops the chain, naming
# its log (no run drops out of the table unseen).
set -euo pipefail
cd "$(dirname "$0")/../.."
source benchmarks/train_run.sh
RUNS=${RUNS:-runs/tensors}
DATA=${MATGNN_DATA_DIR:-../shared/data}
mkdir -p "$RUNS"
export PATH="$PWD/.venv/bin:$PATH"
COMMON=(scheduler=exponential optimizer.lr=5e-3 optimizer.weight_decay=0.05
        trainer.max_epochs=100 "paths.data_dir=$DATA" seed=0)
run() {  # name model task cap (minutes); a resumed run gets a fresh time cap
  train_run "$RUNS/$1" "model=$2" "task=$3" "${COMMON[@]}" "+trainer.max_time=00:00:$4:00"
}
run e3nn_dielectric_electronic e3nn dielectric_electronic 12
run e3nn_elastic_tensor e3nn elastic_tensor 14
run cgcnn_dielectric_scalars cgcnn dielectric_scalars 06
run cgcnn_elastic_moduli cgcnn elastic_moduli 06
run e3nn_dielectric_total e3nn dielectric_total 12
run e3nn_born_charges e3nn born_charges 14
# the same scalars from the same backbone (e3nn with regression heads)
run e3nn_elastic_moduli e3nn elastic_moduli 10
run e3nn_dielectric_scalars e3nn dielectric_scalars 10
echo CHAIN-DONE
