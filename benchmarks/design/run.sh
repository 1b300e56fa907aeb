#!/usr/bin/env bash
# iMatGen's autoencoders on the V-O data set (issue 27), one run after another on a 2-core CPU:
#   bash benchmarks/design/run.sh [basis] [cell] [evaluate]   (from the repository root)
# then: python benchmarks/design/autoencoders.py --update docs/results/inverse-design.md
# Each training run is resumable within its budget: run it again and it continues from its
# last.ckpt (a run that ended at its max_time stops there; raise MAX_TIME to go on).
#
# Runs and budgets (2 cores, torch CPU, fp32; the whole V-O data set, split by MP binary 80/10/10
# with the 14 known V-O structures held out):
#   basis     BasisAutoencoder 64^3 -> 200, width 16 (the paper: 64), batch 16, Adam 1e-3,
#             MAX_TIME_BASIS (default 1 h 15 min; about 25 min an epoch of 14,700 images here)
#   cell      CellAutoencoder 32^3 -> 20, width 32 (the paper: 64), batch 16, Adam 1e-3,
#             MAX_TIME_CELL (default 30 min)
#   evaluate  benchmarks/design/autoencoders.py --run on both best checkpoints: every test and
#             held-out structure and 500 seeded training structures
set -euo pipefail
DATA=${MATGNN_DATA_DIR:-../shared/data}
CACHE=${MATGNN_CACHE_DIR:-.cache/graphs}
OUT=${IMATGEN_RUNS:-runs/imatgen}
STEPS=("$@")
[ ${#STEPS[@]} -gt 0 ] || STEPS=(basis cell evaluate)
# one autoencoder: STAGE FOLDER MAX_TIME overrides...
train() {
    local stage=$1 folder=$2 budget=$3; shift 3
    local resume=()
    [ -f "$folder/checkpoints/last.ckpt" ] && resume=("resume=$folder")
    python -m matgnn.design.train stage="$stage" data.source=mp36k paths.data_dir="$DATA" \
        paths.cache_dir="$CACHE" trainer.max_epochs=100 trainer.max_time="$budget" \
        trainer.limit_val_batches=20 trainer.log_every_n_steps=50 hydra.run.dir="$folder" \
        "${resume[@]}" "$@"
}
for step in "${STEPS[@]}"; do
    case $step in
        basis) train basis "$OUT/basis_w16" "${MAX_TIME_BASIS:-00:01:15:00}" network.width=16 ;;
        cell) train cell "$OUT/cell_w32" "${MAX_TIME_CELL:-00:00:30:00}" network.width=32 ;;
        evaluate) python benchmarks/design/autoencoders.py --run --cell "$OUT/cell_w32" \
            --basis "$OUT/basis_w16" --data "$CACHE/vo_dataset.json.gz" ;;
        *) echo "unknown step $step (basis, cell, evaluate)" >&2; exit 2 ;;
    esac
done
