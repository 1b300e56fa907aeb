#!/usr/bin/env bash
# The same recipe learns as well (issue 25, part 4): matgnn's CGCNN against the reference
# trainer (cgcnn2 0.6.0's `cgcnn-tr`, the original CGCNN code path) on the same crystals, split,
# epochs, batch, optimiser and schedule, one run at a time on the 2 CPU cores.
#   bash benchmarks/fidelity/equal_budget.sh [runs folder]     (from the repository root)
# then: python benchmarks/fidelity/equal_budget.py --collect <runs folder> --update README.md
#
# Recipe (cgcnn-tr's own defaults, which both sides use): CGCNN 64 atom features, 3
# convolutions, h 128 x 1, the reference graph (12 nearest within 8 Å, exact cut, padded:
# graph cgcnn_reference + pad_neighbors 12), Adam lr 0.01 constant, MSE loss, batch 256,
# $EPOCHS epochs without early stopping, the best-validation-MSE checkpoint tested.
# Targets: matgnn's head standardises them on the training split; cgcnn-tr computes a
# normaliser but never applies it, so equal_budget_prepare.py hands it targets standardised
# the same way (undone when equal_budget.py reads its results). Both validate once per epoch.
# Tasks: mp2018_5k (the first 6,250 mp36k rows, seeded 80/10/10: 5,000/625/625) and
# matbench_phonons fold 0 (the partial local copy; validation: a seeded 10% of the fold's
# training rows). matgnn runs first; its split.json is written out for cgcnn-tr
# (equal_budget_prepare.py), so both see the same crystals.
# A finished run is skipped, so a stopped sweep continues where it was.
set -euo pipefail
RUNS=${1:-runs/equal_budget}
DATA=${MATGNN_DATA_DIR:-../shared/data}
SEEDS=${SEEDS:-"0 1 2"}
TASKS=${TASKS:-"mp2018_5k matbench_phonons"}
EPOCHS=${EPOCHS:-30}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
for seed in $SEEDS; do
    for task in $TASKS; do
        case $task in
            mp2018_5k) task_args=(task=mp2018_eform task.data.source.limit=6250) ;;
            matbench_phonons) task_args=(task=matbench_phonons task.fold=0) ;;
            *) echo "unknown task $task" >&2; exit 2 ;;
        esac
        ours="$RUNS/$task/matgnn/s$seed"
        if [ ! -f "$ours/test_metrics.json" ]; then
            echo "### matgnn $task seed=$seed $(date +%T)"
            python -m matgnn.train model=cgcnn graph@model.graph=cgcnn_reference \
                +model.backbone.pad_neighbors=12 "${task_args[@]}" paths.data_dir="$DATA" \
                task.loss=mse optimizer._target_=torch.optim.Adam optimizer.lr=0.01 \
                optimizer.weight_decay=0 scheduler=none task.data.batch_size=256 \
                trainer.max_epochs="$EPOCHS" callbacks.early_stopping.patience=100000 \
                seed="$seed" +trainer.enable_progress_bar=false hydra.run.dir="$ours" \
                2>&1 | grep -E "test metrics|Error|error" || true
            [ -f "$ours/test_metrics.json" ] || { echo "run $ours failed" >&2; exit 1; }
        fi
        ref="$RUNS/$task/reference/s$seed"
        if [ ! -f "$ref/output_s$seed/test_results.csv" ]; then
            echo "### cgcnn-tr $task seed=$seed $(date +%T)"
            rm -rf "$ref"
            python benchmarks/fidelity/equal_budget_prepare.py "$ours" "$ref/data" \
                "${task_args[@]}" paths.data_dir="$DATA"
            abs_data="$(cd "$ref/data" && pwd)"
            (cd "$ref" && cgcnn-tr -trs "$abs_data/train" -vs "$abs_data/val" \
                -ts "$abs_data/test" -e "$EPOCHS" -bs 256 -lr 0.01 --n-conv 3 \
                --atom-fea-len 64 --h-fea-len 128 --n-h 1 -rs "$seed" -j 0 -ji "s$seed" \
                --disable-cuda > train.log 2>&1) || { echo "cgcnn-tr failed: $ref/train.log" >&2
                                                     exit 1; }
            rm -rf "$ref/data"  # the CIFs are a copy of the task's own crystals
        fi
    done
done
echo EQUAL-BUDGET-DONE
