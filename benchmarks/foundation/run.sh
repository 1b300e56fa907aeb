#!/usr/bin/env bash
# Foundation backbones on Matbench (issue 26), one run after another on a 2-core CPU:
#   bash benchmarks/foundation/run.sh [RUN ...]   (from the repository root; every run by default)
# then: python benchmarks/foundation/table.py --update docs/results/foundation.md
# Each run is resumable: run it again and it continues at the first fold not recorded. The
# frozen backbone's features are computed once per crystal (finetune.freeze=backbone caches them
# under paths.cache_dir/backbone_features, MATGNN_CACHE_DIR here) and reused by every fold.
#
# Runs and their budgets (2 cores, torch CPU, fp32; partial copies of the Matbench tasks, see
# benchmarks/matbench/README.md):
#   chgnet_frozen_phonons     CHGNet 0.3.0 frozen, features of its 4 blocks mean-pooled, 128-unit
#                             head; 5 folds, 300 epochs (patience 100), AdamW 1e-3 one-cycle, batch 64
#   sevennet_frozen_phonons   SevenNet-0 frozen, invariant features of its 5 blocks, same head and recipe
#   chgnet_frozen_log_kvrh    CHGNet frozen on matbench_log_kvrh (7,679 of 10,987 rows), 5 folds,
#                             200 epochs (patience 50)
#   chgnet_frozen_log_gvrh    the same on matbench_log_gvrh
#   chgnet_frozen_perovskites CHGNet frozen on matbench_perovskites (15,418 of 18,928 rows), 5 folds,
#                             200 epochs (patience 50)
#   chgnet_last_blocks_phonons CHGNet with its embeddings and first 2 of 4 blocks frozen
#                             (finetune.freeze=layers:2), the last 2 blocks trained at a tenth of the
#                             head's learning rate; 5 folds, 40 epochs (patience 40), as the fine-tuned arm
#   chgnet_finetuned_phonons  CHGNet fine-tuned whole (backbone at a tenth of the head's learning
#                             rate); 5 folds, 40 epochs (patience 40), about 8 min a fold here
#
# FOUNDATION_ROOT (default benchmarks/foundation) is where the submissions go, and
# FOUNDATION_EXTRA holds Hydra overrides added after every run's own, split at spaces (so
# an override cannot hold one: folds=[0,1], not folds=[0, 1]); the smoke test in
# tests/test_benchmark_scripts.py runs each recipe for one fold that way.
set -euo pipefail
DATA=${MATGNN_DATA_DIR:-../shared/data}
CACHE=${MATGNN_CACHE_DIR:-.cache/graphs}
ROOT=${FOUNDATION_ROOT:-benchmarks/foundation}
read -r -a EXTRA <<< "${FOUNDATION_EXTRA:-}"
RUNS=("$@")
[ ${#RUNS[@]} -gt 0 ] || RUNS=(chgnet_frozen_phonons sevennet_frozen_phonons chgnet_frozen_log_kvrh
    chgnet_frozen_log_gvrh chgnet_frozen_perovskites chgnet_last_blocks_phonons
    chgnet_finetuned_phonons)
matbench() {
    python -m matgnn.matbench paths.data_dir="$DATA" paths.cache_dir="$CACHE" "$@" \
        ${EXTRA[@]+"${EXTRA[@]}"}
}
# the submission's info.json says what the frozen arm is (the model's submission text describes
# fine-tuning): frozen MODEL_NAME ...
frozen() {
    local name=$1; shift
    matbench finetune.freeze=backbone finetune.cache_features=true submission_root="$ROOT/frozen" \
        "submission.algorithm=\"matgnn $name, frozen (head only)\"" \
        "submission.algorithm_long=\"The pretrained $name network frozen as an encoder through matgnn: the atom features of its blocks, computed once per crystal, mean-pooled and read by a 128-unit SiLU MLP head, the only part trained, on the target standardised inside the model. One head per fold, trained on the fold's training rows with a seeded 10% held out for early stopping. Its pretraining set (MPtrj) holds Materials Project structures, so crystals of a test fold may have been seen in pretraining (as structures with energies, never with this task's labels).\"" \
        "$@"
}
# one frozen run: NAME MODEL TASK EPOCHS PATIENCE
frozen_run() {
    frozen "$1" model="$2" task="$3" trainer.max_epochs="$4" callbacks.early_stopping.patience="$5" \
        "notes=\"frozen $1, head only: $4 epochs per fold (CPU budget; 2 cores)\""
}
for name in "${RUNS[@]}"; do
    echo "=== $name $(date -u +%FT%TZ) $(git rev-parse --short HEAD)"
    case "$name" in
        chgnet_frozen_phonons) frozen_run "CHGNet 0.3.0" chgnet matbench_phonons 300 100 ;;
        sevennet_frozen_phonons) frozen_run "SevenNet-0" sevennet matbench_phonons 300 100 ;;
        chgnet_frozen_log_kvrh) frozen_run "CHGNet 0.3.0" chgnet matbench_log_kvrh 200 50 ;;
        chgnet_frozen_log_gvrh) frozen_run "CHGNet 0.3.0" chgnet matbench_log_gvrh 200 50 ;;
        chgnet_frozen_perovskites) frozen_run "CHGNet 0.3.0" chgnet matbench_perovskites 200 50 ;;
        chgnet_last_blocks_phonons) matbench model=chgnet task=matbench_phonons \
            finetune.freeze=layers:2 finetune.backbone_lr_scale=0.1 trainer.max_epochs=40 \
            callbacks.early_stopping.patience=40 submission_root="$ROOT/last_blocks" \
            "submission.algorithm=\"matgnn CHGNet 0.3.0, last 2 of 4 blocks trained\"" \
            "submission.algorithm_long=\"The pretrained CHGNet 0.3.0 network through matgnn with its embeddings and first 2 of its 4 interaction blocks frozen; its last 2 blocks trained at a tenth of the learning rate of the head (mean pooling of every block's atom features, a 128-unit SiLU MLP), on the target standardised inside the model. One model per fold, trained on the fold's training rows with a seeded 10% held out for early stopping. Its pretraining set (MPtrj) holds Materials Project structures, so crystals of a test fold may have been seen in pretraining (as structures with energies, never with this task's labels).\"" \
            'notes="CHGNet 0.3.0, embeddings and first 2 blocks frozen, last 2 trained at lr x0.1: 40 epochs per fold (CPU budget; 2 cores)"' ;;
        chgnet_finetuned_phonons) matbench model=chgnet task=matbench_phonons \
            finetune.backbone_lr_scale=0.1 trainer.max_epochs=40 callbacks.early_stopping.patience=40 \
            submission_root="$ROOT/finetuned" \
            'notes="CHGNet 0.3.0 fine-tuned whole, backbone lr x0.1: 40 epochs per fold (CPU budget; 2 cores)"' ;;
        *) echo "unknown run $name" >&2; exit 2 ;;
    esac
done
