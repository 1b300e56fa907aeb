#!/usr/bin/env bash
# Fine-tuning vs training from scratch (issue 12): a learning curve on ye2018_perovskite
# (formation energy relative to the binary oxides, 656 crystals; seeded 80/10/10 split, seed 0:
# 524 train / 65 val / 67 test). The validation and test crystals are the same in every run;
# only the training crystals are subsampled (task.data.split.train_size, nested per seed).
#   bash benchmarks/finetune/learning_curve.sh [runs folder]   (from the repository root)
# then: python benchmarks/finetune/table.py --collect <runs folder> --update docs/results/fine-tuning.md
#
# Arms, same recipe and budget (CGCNN as in cgcnn_mp2018_eform, AdamW 1e-3 one-cycle over 200
# epochs, batch 64, early stopping on the validation MAE with patience 50):
#   scratch    random initialisation
#   finetune   from the packaged cgcnn_mp2018_eform (every layer trained, new head)
#   slow       the same with the backbone at a tenth of the head's learning rate
#   frozen     from cgcnn_mp2018_eform with the backbone frozen (only the new head trains)
#   xie_finetune, xie_slow, xie_frozen: the same three from Xie & Grossman's original
#              formation-energy model (cgcnn_xie2018_formation_energy: 4 convolutions, h 32,
#              and its own graph, cgcnn_reference: the reference's exact 12-neighbour cut,
#              which fine-tuning keeps), issue 25
# ARMS="xie_finetune xie_slow xie_frozen" runs a subset of the arms.
# Training sizes 50 100 200 400 and all (524); seeds 0 1 2 (subset draw and initialisation).
# Each run goes through benchmarks/train_run.sh: a finished run (test_metrics.json) is skipped, a
# killed one continues from its last checkpoint, a failed one stops the sweep naming its log
# (<run folder>.log), and each attempt records its commit and machine in the run folder.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../train_run.sh"
RUNS=${1:-runs/finetune_curve}
DATA=${MATGNN_DATA_DIR:-../shared/data}
SEEDS=${SEEDS:-"0 1 2"}
SIZES=${SIZES:-"50 100 200 400 all"}
ARMS=${ARMS:-"scratch finetune slow frozen xie_finetune xie_slow xie_frozen"}
for seed in $SEEDS; do
    for size in $SIZES; do
        for arm in $ARMS; do
            dir="$RUNS/$arm/n${size}_s${seed}"
            case $arm in
                scratch) extra=() ;;
                finetune) extra=(finetune.from=cgcnn_mp2018_eform) ;;
                slow) extra=(finetune.from=cgcnn_mp2018_eform finetune.backbone_lr_scale=0.1) ;;
                frozen) extra=(finetune.from=cgcnn_mp2018_eform finetune.freeze=backbone) ;;
                xie_finetune) extra=(finetune.from=cgcnn_xie2018_formation_energy) ;;
                xie_slow) extra=(finetune.from=cgcnn_xie2018_formation_energy
                                 finetune.backbone_lr_scale=0.1) ;;
                xie_frozen) extra=(finetune.from=cgcnn_xie2018_formation_energy
                                   finetune.freeze=backbone) ;;
                *) echo "unknown arm $arm" >&2; exit 2 ;;
            esac
            [ "$size" = all ] && train_size=null || train_size=$size
            train_run "$dir" model=cgcnn task=ye2018_perovskite paths.data_dir="$DATA" \
                task.data.split.seed=0 task.data.split.train_size=$train_size \
                task.data.split.train_seed=$seed seed=$seed \
                trainer.max_epochs=200 callbacks.early_stopping.patience=50 \
                +trainer.enable_progress_bar=false "${extra[@]}"
        done
    done
done
