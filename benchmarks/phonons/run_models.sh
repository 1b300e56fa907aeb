#!/usr/bin/env bash
# Chen et al. 2021 phonon DOS (issue 13) with the four other backbones, each with a VectorHead,
# on the authors' split and with the e3nn recipe (experiment=e3nn_phonon_dos: AdamW lr 5e-3,
# weight decay 0.05, exponential decay 0.96 per epoch, batch 16, 100 epochs, early stopping),
# capped at 10 minutes of wall-clock time each on the 2-core CPU machine. Foundation backbones
# (issue 26, the foundation extra installed): MODELS="chgnet_frozen sevennet_frozen" is CHGNet
# 0.3.0 (SevenNet-0) frozen, the features of its blocks computed once per crystal (cached under
# $MATGNN_CACHE_DIR, default .cache/graphs) and read by the VectorHead, the only part trained,
# with the same recipe. MODELS="chgnet_finetuned chgnet_last_blocks": CHGNet 0.3.0 trained
# whole (its last 2 of 4 blocks only, the embeddings and first 2 blocks frozen), the backbone at
# a tenth of the head's learning rate (5e-4 against 5e-3), the same recipe otherwise; the
# backbone runs every epoch (no cached features), so these two are capped at 45 minutes each.
#   bash benchmarks/phonons/run_models.sh [runs folder]   (from the repository root)
# then: python benchmarks/phonons/chen2021_table.py --collect <runs folder> --update docs/results/phonons.md
# The e3nn row is the shipped pretrained model's run (benchmarks/results/pretrained_e3nn_phonon_dos).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../train_run.sh"
RUNS=${1:-runs/chen2021}
DATA=${MATGNN_DATA_DIR:-../shared/data}
CACHE=${MATGNN_CACHE_DIR:-.cache/graphs}
for model in ${MODELS:-cgcnn matformer alignn potnet}; do
    case $model in
        # the backbone frozen, its features computed once per crystal and cached
        chgnet_frozen|sevennet_frozen)
            args=(model="${model%_frozen}" finetune.freeze=backbone finetune.cache_features=true
                  paths.cache_dir="$CACHE") ;;
        chgnet_finetuned)
            args=(model=chgnet finetune.backbone_lr_scale=0.1 paths.cache_dir="$CACHE") ;;
        chgnet_last_blocks)
            args=(model=chgnet finetune.freeze=layers:2 finetune.backbone_lr_scale=0.1
                  paths.cache_dir="$CACHE") ;;
        *) args=(model="$model") ;;
    esac
    # a resumed run gets a fresh cap
    cap=00:00:10:00
    case $model in chgnet_finetuned|chgnet_last_blocks) cap=00:00:45:00 ;; esac
    train_run "$RUNS/$model" "${args[@]}" task=phonon_dos scheduler=exponential \
        optimizer.lr=5e-3 optimizer.weight_decay=0.05 trainer.max_epochs=100 \
        paths.data_dir="$DATA" +trainer.max_time="$cap"
done
