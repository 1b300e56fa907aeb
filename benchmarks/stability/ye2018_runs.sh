#!/usr/bin/env bash
# Ye et al. 2018 perovskites (issue 13) and garnets (issue 25): their network and CGCNN on the
# same seeded 80/10/10 splits of ye2018_perovskite_unmixed (244 ABO3), ye2018_perovskite (656:
# unmixed + A- or B-mixed), ye2018_garnet_unmixed (35 mp36k garnets) and ye2018_garnet (46,
# CGCNN only: the Ye network has no input for a mixed site), 5 seeds (the seed draws the split
# and the initialisation).
#   [SEEDS="0 1 2 3 4"] [MODELS="ye2018_net cgcnn"] (or chgnet_frozen, sevennet_frozen, \
#   chgnet_finetuned) \
#   [SUBSETS="unmixed all garnet_unmixed garnet_all"] [MATGNN_DATA_DIR=../shared/data] \
#   bash benchmarks/stability/ye2018_runs.sh [runs folder]
# from the repository root, with the matgnn environment's python on PATH; the runs folder
# (default runs/ye2018) gets <subset>/<model>/s<seed>; the environment variables (defaults
# shown) narrow the sweep, e.g. SUBSETS="garnet_unmixed garnet_all"; further arguments are
# ignored. Each run's output goes to <runs>/<subset>/<model>/s<seed>.log (its test-metrics
# line is echoed); a failed run stops the sweep, naming its log.
# then: python benchmarks/stability/ye2018_table.py --collect <runs folder> --update docs/results/stability.md
# Recipes: Ye network as garnetdnn (experiment=ye2018_net_perovskite[_unmixed]: Adam 1e-3, MSE,
# batch 32, up to 3000 epochs, early stopping patience 500; garnets
# experiment=ye2018_net_garnet_unmixed: Adam 1e-2); CGCNN as the fine-tuning learning
# curve (AdamW 1e-3 one-cycle over 200 epochs, batch 64, patience 50). Foundation backbones
# (issue 26; MODELS="chgnet_frozen sevennet_frozen chgnet_finetuned", the foundation extra
# installed): chgnet_frozen is CHGNet 0.3.0 frozen, its blocks' features computed once per
# crystal and cached under $MATGNN_CACHE_DIR (default .cache/graphs), the 128-unit head trained
# with the CGCNN recipe; sevennet_frozen the same with SevenNet-0; chgnet_finetuned trains the
# whole network, the backbone at a tenth of the head's learning rate, 40 epochs (patience 40),
# as the fine-tuned Matbench phonons arm.
# A finished run (test_metrics.json) is skipped and a killed one continues from its last
# checkpoint (ckpt_path=last), so a stopped sweep continues where it was.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../train_run.sh"
RUNS=${1:-runs/ye2018}
DATA=${MATGNN_DATA_DIR:-../shared/data}
SEEDS=${SEEDS:-"0 1 2 3 4"}
MODELS=${MODELS:-"ye2018_net cgcnn"}
SUBSETS=${SUBSETS:-"unmixed all garnet_unmixed garnet_all"}
CACHE=${MATGNN_CACHE_DIR:-.cache/graphs}
for seed in $SEEDS; do
    for subset in $SUBSETS; do
        for model in $MODELS; do
            dir="$RUNS/$subset/$model/s$seed"
            case $subset in
                unmixed) task=ye2018_perovskite_unmixed ;;
                all) task=ye2018_perovskite ;;
                garnet_unmixed) task=ye2018_garnet_unmixed ;;
                garnet_all) task=ye2018_garnet
                            [ "$model" = ye2018_net ] && continue ;;
                *) echo "unknown subset $subset" >&2; exit 2 ;;
            esac
            case $model in
                ye2018_net)
                    args=(experiment=ye2018_net_perovskite)
                    [ "$subset" = unmixed ] && args=(experiment=ye2018_net_perovskite_unmixed)
                    [ "$subset" = garnet_unmixed ] && args=(experiment=ye2018_net_garnet_unmixed) ;;
                chgnet_frozen|sevennet_frozen)
                    args=(model="${model%_frozen}" task=$task finetune.freeze=backbone
                          finetune.cache_features=true paths.cache_dir="$CACHE"
                          trainer.max_epochs=200 callbacks.early_stopping.patience=50) ;;
                chgnet_finetuned)
                    args=(model=chgnet task=$task finetune.backbone_lr_scale=0.1
                          trainer.max_epochs=40 callbacks.early_stopping.patience=40) ;;
                *)
                    args=(model="$model" task=$task trainer.max_epochs=200
                          callbacks.early_stopping.patience=50) ;;
            esac
            train_run "$dir" "${args[@]}" paths.data_dir="$DATA" seed="$seed"
        done
    done
done
echo YE2018-DONE
