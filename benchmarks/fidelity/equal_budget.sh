#!/usr/bin/env bash
# The same recipe learns as well (issue 25, part 4): matgnn's CGCNN against the reference
# trainer (cgcnn2 0.6.0's `cgcnn-tr`, the original CGCNN code path), and matgnn's ALIGNN against
# upstream alignn's own trainer, on the same crystals, split, epochs, batch, optimiser and
# schedule, one run at a time on the 2 CPU cores.
#   bash benchmarks/fidelity/equal_budget.sh [runs folder]     (from the repository root)
# then: python benchmarks/fidelity/equal_budget.py --collect <runs folder> \
#     --update docs/results/fidelity.md
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
#
# ALIGNN arm (ARMS=alignn; runs under <runs>/alignn/): matgnn's ALIGNN (published widths, its
# `alignn` graph) against upstream alignn 2026.8.11's own trainer (train_for_folder ->
# train_dgl, on its jarvis k-nearest DGL graphs; benchmarks/setup_reference_codes.sh installs
# it), both with upstream's recipe: AdamW lr 1e-3, weight decay 1e-5, OneCycle stepped per
# batch, L1 loss, batch 64, $ALIGNN_EPOCHS epochs, the best-validation checkpoint tested
# (equal_budget_alignn.py re-tests upstream's best_model.pt; upstream itself writes the last
# epoch's predictions). Targets standardised on the training split for both, as above.
# Upstream's own departures, kept: its loaders drop the last partial batch (it trains on
# whole batches and validates on 64 of the 100 validation crystals), and its AdamW exempts
# biases and normalisation parameters from weight decay.
# Upstream's trainer trains only its alignn_atomwise network (LayerNorm), not the BatchNorm
# ALIGNN of the paper; see equal_budget_alignn.py. Further runs per seed train matgnn's ALIGNN
# on upstream's own graphs (upstream_graphs.py: built once per task by upstream's code from the
# same CIFs; matgnn's `alignn` preset differs from them), once per norm of $ALIGNN_NORMS:
# batch (the published network) and layer (model.backbone.norm=layer: alignn_atomwise's
# network, so that run differs from upstream's in the trainer alone).
# ALIGNN_RUNS="matgnn upstream" (default) also runs both sides on their own graphs; without
# matgnn, each seed's split is drawn by equal_budget_prepare.py --split-only (every run
# on upstream's graphs is checked to have trained on that split).
# A finished run is skipped and a killed matgnn run continues from its last checkpoint
# (benchmarks/train_run.sh: its log is <run folder>.log; a run on upstream's graphs appends
# to <run folder>/train.log), so a stopped sweep continues where it was; a killed upstream
# run starts again (its trainer does not resume); a failed run stops the sweep, naming its log.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../train_run.sh"
RUNS=${1:-runs/equal_budget}
DATA=${MATGNN_DATA_DIR:-../shared/data}
SEEDS=${SEEDS:-"0 1 2"}
ARMS=${ARMS:-"cgcnn alignn"}
TASKS=${TASKS:-"mp2018_5k matbench_phonons"}
EPOCHS=${EPOCHS:-30}
ALIGNN_TASKS=${ALIGNN_TASKS:-"matbench_phonons"}
ALIGNN_EPOCHS=${ALIGNN_EPOCHS:-10}
# reference_floored: cgcnn-tr with its Gaussian tails below exp(-60) set to 0, as matgnn's
# basis (cgcnn_tr_floored.py; a diagnostic of the subnormal-float penalty, not the reference)
CGCNN_REFERENCES=${CGCNN_REFERENCES-"reference reference_floored"}
ALIGNN_NORMS=${ALIGNN_NORMS-"batch layer"}
ALIGNN_RUNS=${ALIGNN_RUNS-"matgnn upstream"}  # the runs on each side's own graph ("": neither)
# ALIGNN_HUGE_PAGES=1: every ALIGNN run of this sweep with THP_MEM_ALLOC_ENABLE=1 (PyTorch's
# transparent huge pages for CPU tensors of 2 MB and more, for both trainers alike), its
# folders named <implementation>_huge_pages, next to the runs without
# ALIGNN_RETAIN=1: every ALIGNN run keeps freed memory for reuse, its folders named
# <implementation>_retained: matgnn with retain_freed_memory=true (bounded by malloc_trim),
# upstream's process with the same two glibc settings through GLIBC_TUNABLES (mmap_max=0,
# trim_threshold=2147483647; no resident-memory bound, as upstream has none; in both, glibc
# still trims more than 2 GiB of free memory at the heap's top). One variant per sweep.
variant="" thp=0 retain=() tunables=${GLIBC_TUNABLES:-}
if [ "${ALIGNN_HUGE_PAGES:-0}" = 1 ] && [ "${ALIGNN_RETAIN:-0}" = 1 ]; then
    echo "ALIGNN_HUGE_PAGES and ALIGNN_RETAIN: one variant per sweep" >&2; exit 2
fi
if [ "${ALIGNN_HUGE_PAGES:-0}" = 1 ]; then
    variant=_huge_pages thp=1
fi
if [ "${ALIGNN_RETAIN:-0}" = 1 ]; then
    variant=_retained retain=(retain_freed_memory=true)
    tunables=${GLIBC_TUNABLES:+$GLIBC_TUNABLES:}glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=2147483647
fi
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
task_overrides() {
    case $1 in
        mp2018_5k) echo "task=mp2018_eform task.data.source.limit=6250" ;;
        matbench_phonons) echo "task=matbench_phonons task.fold=0" ;;
        *) echo "unknown task $1" >&2; return 2 ;;
    esac
}
[[ " $ARMS " == *" cgcnn "* ]] || TASKS=""
for seed in $SEEDS; do
    for task in $TASKS; do
        overrides=$(task_overrides "$task")
        read -r -a task_args <<< "$overrides"
        ours="$RUNS/$task/matgnn/s$seed"
        train_run "$ours" model=cgcnn graph@model.graph=cgcnn_reference \
            +model.backbone.pad_neighbors=12 "${task_args[@]}" paths.data_dir="$DATA" \
            task.loss=mse optimizer._target_=torch.optim.Adam optimizer.lr=0.01 \
            optimizer.weight_decay=0 scheduler=none task.data.batch_size=256 \
            trainer.max_epochs="$EPOCHS" callbacks.early_stopping.patience=100000 \
            seed="$seed" +trainer.enable_progress_bar=false
        for reference in $CGCNN_REFERENCES; do
            ref="$RUNS/$task/$reference/s$seed"
            [ ! -f "$ref/output_s$seed/test_results.csv" ] || continue
            echo "### cgcnn-tr ($reference) $task seed=$seed $(date +%T)"
            case $reference in
                reference) trainer=(cgcnn-tr) ;;
                reference_floored) trainer=(python "$here/cgcnn_tr_floored.py") ;;
                *) echo "unknown CGCNN reference $reference" >&2; exit 2 ;;
            esac
            rm -rf "$ref"
            python "$here/equal_budget_prepare.py" "$ours" "$ref/data" \
                "${task_args[@]}" paths.data_dir="$DATA"
            abs_data="$(cd "$ref/data" && pwd)"
            (cd "$ref" && "${trainer[@]}" -trs "$abs_data/train" -vs "$abs_data/val" \
                -ts "$abs_data/test" -e "$EPOCHS" -bs 256 -lr 0.01 --n-conv 3 \
                --atom-fea-len 64 --h-fea-len 128 --n-h 1 -rs "$seed" -j 0 -ji "s$seed" \
                --disable-cuda > train.log 2>&1) || { echo "cgcnn-tr failed: $ref/train.log" >&2
                                                     exit 1; }
            rm -rf "$ref/data"  # the CIFs are a copy of the task's own crystals
        done
    done
done
[[ " $ARMS " == *" alignn "* ]] || ALIGNN_TASKS=""
# upstream's recipe, for both matgnn runs of the ALIGNN arm
alignn_recipe=(paths.data_dir="$DATA" task.loss=mae optimizer=adamw optimizer.lr=0.001
    optimizer.weight_decay=1e-5 scheduler=onecycle task.data.batch_size=64
    trainer.max_epochs="$ALIGNN_EPOCHS" callbacks.early_stopping.patience=100000
    +trainer.enable_progress_bar=false)
for seed in $SEEDS; do
    for task in $ALIGNN_TASKS; do
        overrides=$(task_overrides "$task")
        read -r -a task_args <<< "$overrides"
        ours="$RUNS/alignn/$task/matgnn$variant/s$seed"
        if [[ " $ALIGNN_RUNS " == *" matgnn "* ]]; then
            THP_MEM_ALLOC_ENABLE=$thp train_run "$ours" model=alignn "${task_args[@]}" \
                "${alignn_recipe[@]}" ${retain[@]+"${retain[@]}"} seed="$seed"
            split="$ours"  # its split.json: the crystals of every other run of the seed
        elif [ -f "$ours/split.json" ]; then
            split="$ours"
        else  # the same split, drawn without training
            split="$RUNS/alignn/$task/split/s$seed"
            [ -f "$split/split.json" ] || python "$here/equal_budget_prepare.py" --split-only \
                "$split" model=alignn "${task_args[@]}" "${alignn_recipe[@]}" seed="$seed"
        fi
        up="$RUNS/alignn/$task/upstream$variant/s$seed"
        if [[ " $ALIGNN_RUNS " == *" upstream "* ]] && [ ! -f "$up/output/test_best.csv" ]; then
            echo "### upstream alignn $task seed=$seed $(date +%T)"
            rm -rf "$up"
            python "$here/equal_budget_prepare.py" --layout alignn "$split" "$up/data" \
                "${task_args[@]}" paths.data_dir="$DATA"
            THP_MEM_ALLOC_ENABLE=$thp GLIBC_TUNABLES="$tunables" CUDA_VISIBLE_DEVICES="" \
                PYTHONPATH="$here/../.reference-site" PYTHONUNBUFFERED=1 \
                python "$here/equal_budget_alignn.py" "$up/data" "$up/output" --seed "$seed" \
                --epochs "$ALIGNN_EPOCHS" --batch-size 64 > "$up/train.log" 2>&1 \
                || { echo "upstream alignn failed: $up/train.log" >&2; exit 1; }
            rm -rf "$up/data" "$up"/output/cache_*  # copies of the task's crystals and graphs
        fi
        # matgnn's trainer on upstream's graphs (upstream_graphs.py): the same crystals for
        # every seed, so upstream's graphs are built once per task (and not at all when
        # ALIGNN_NORMS is empty: no run of the sweep trains on them)
        graphs="$RUNS/alignn/$task/upstream_graphs.npz"
        if [[ -n "${ALIGNN_NORMS// /}" ]] && [ ! -f "$graphs" ]; then
            echo "### upstream graphs $task $(date +%T)"
            rm -rf "$graphs.data"
            python "$here/equal_budget_prepare.py" --layout alignn "$split" "$graphs.data" \
                "${task_args[@]}" paths.data_dir="$DATA"
            PYTHONPATH="$here/../.reference-site" python "$here/upstream_graphs.py" export \
                "$graphs.data" "$graphs"
            rm -rf "$graphs.data" "$(dirname "$graphs")/scaling.json"
        fi
        # ... with the published network (BatchNorm) and with upstream alignn_atomwise's
        # (norm=layer): the same network and graph as upstream's run, matgnn's trainer
        for norm in $ALIGNN_NORMS; do
            name=matgnn_upstream_graph$variant norm_override=()  # batch: the model's default
            if [ "$norm" != batch ]; then
                name=matgnn_${norm}norm_upstream_graph$variant
                norm_override=(++model.backbone.norm="$norm")
            fi
            ug="$RUNS/alignn/$task/$name/s$seed"
            if [ ! -f "$ug/test_metrics.json" ]; then
                echo "### matgnn alignn ($norm norm) on upstream's graphs $task seed=$seed $(date +%T)"
                mkdir -p "$ug"
                resume=()  # a killed run continues from its last checkpoint, its log appended
                [ ! -f "$ug/checkpoints/last.ckpt" ] || resume=(ckpt_path=last)
                echo "### attempt $(date -u +%FT%TZ) ${resume[*]-}" >> "$ug/train.log"
                THP_MEM_ALLOC_ENABLE=$thp python "$here/upstream_graphs.py" train \
                    "$graphs" "$ug" model=alignn \
                    graph@model.graph=alignn_upstream ${norm_override[@]+"${norm_override[@]}"} \
                    "${task_args[@]}" "${alignn_recipe[@]}" ${retain[@]+"${retain[@]}"} \
                    seed="$seed" ${resume[@]+"${resume[@]}"} >> "$ug/train.log" 2>&1 \
                    || true
                [ -f "$ug/test_metrics.json" ] || { echo "run $ug failed: $ug/train.log" >&2
                                                    exit 1; }
            fi
            cmp -s "$split/split.json" "$ug/split.json" \
                || { echo "$ug trained on another split than $split" >&2; exit 1; }
        done
    done
done
echo EQUAL-BUDGET-DONE
