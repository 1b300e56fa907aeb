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
#   chgnet_finetuned_phonons  CHGNet fine-tuned whole (backbone at a tenth of the head's learning
#                             rate), fold 0 only, 20 epochs (patience 10): about 1 h here
set -euo pipefail
DATA=${MATGNN_DATA_DIR:-../shared/data}
CACHE=${MATGNN_CACHE_DIR:-.cache/graphs}
ROOT=benchmarks/foundation
RUNS=("$@")
[ ${#RUNS[@]} -gt 0 ] || RUNS=(chgnet_frozen_phonons sevennet_frozen_phonons chgnet_frozen_log_kvrh
    chgnet_frozen_log_gvrh chgnet_finetuned_phonons)
matbench() { python -m matgnn.matbench paths.data_dir="$DATA" paths.cache_dir="$CACHE" "$@"; }
frozen() {
    matbench finetune.freeze=backbone finetune.cache_features=true submission_root="$ROOT/frozen" "$@"
}
for name in "${RUNS[@]}"; do
    echo "=== $name $(date -u +%FT%TZ) $(git rev-parse --short HEAD)"
    case "$name" in
        chgnet_frozen_phonons) frozen model=chgnet task=matbench_phonons trainer.max_epochs=300 \
            callbacks.early_stopping.patience=100 \
            'notes="frozen CHGNet 0.3.0, head only: 300 epochs per fold (CPU budget; 2 cores)"' ;;
        sevennet_frozen_phonons) frozen model=sevennet task=matbench_phonons trainer.max_epochs=300 \
            callbacks.early_stopping.patience=100 \
            'notes="frozen SevenNet-0, head only: 300 epochs per fold (CPU budget; 2 cores)"' ;;
        chgnet_frozen_log_kvrh) frozen model=chgnet task=matbench_log_kvrh trainer.max_epochs=200 \
            callbacks.early_stopping.patience=50 \
            'notes="frozen CHGNet 0.3.0, head only: 200 epochs per fold (CPU budget; 2 cores)"' ;;
        chgnet_frozen_log_gvrh) frozen model=chgnet task=matbench_log_gvrh trainer.max_epochs=200 \
            callbacks.early_stopping.patience=50 \
            'notes="frozen CHGNet 0.3.0, head only: 200 epochs per fold (CPU budget; 2 cores)"' ;;
        chgnet_finetuned_phonons) matbench model=chgnet task=matbench_phonons 'folds=[0]' \
            finetune.backbone_lr_scale=0.1 trainer.max_epochs=20 callbacks.early_stopping.patience=10 \
            submission_root="$ROOT/finetuned" \
            'notes="CHGNet 0.3.0 fine-tuned whole, backbone lr x0.1: 20 epochs, fold 0 only (CPU budget; 2 cores)"' ;;
        *) echo "unknown run $name" >&2; exit 2 ;;
    esac
done
