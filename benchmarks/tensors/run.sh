#!/usr/bin/env bash
# Issue 14 tensor runs, seed 0, 2 cores, one run at a time. Chen 2021 recipe for every run:
# AdamW 5e-3, wd 0.05, exponential 0.96/epoch, batch 16, <=100 epochs, wall-clock cap each.
#   RUNS=<runs folder, default runs/tensors> MATGNN_DATA_DIR=<data, default ../shared/data> \
#     bash benchmarks/tensors/run.sh
# then: python benchmarks/tensors/table.py --collect <runs folder> --update docs/results/tensors.md
# ONLY="<run> ..." runs those alone (table.py --collect keeps the stored results of the others).
# A finished run (test_metrics.json) is skipped and a killed one continues from its last
# checkpoint, so a stopped chain goes on where it was; a run that fails stops the chain, naming
# its log (no run drops out of the table unseen). Python: the active virtual environment's
# (VIRTUAL_ENV set), else the repository's .venv.
set -euo pipefail
cd "$(dirname "$0")/../.."
source benchmarks/train_run.sh
RUNS=${RUNS:-runs/tensors}
DATA=${MATGNN_DATA_DIR:-../shared/data}
mkdir -p "$RUNS"
[ -n "${VIRTUAL_ENV:-}" ] || export PATH="$PWD/.venv/bin:$PATH"  # else the active venv's
COMMON=(scheduler=exponential optimizer.lr=5e-3 optimizer.weight_decay=0.05
        trainer.max_epochs=100 "paths.data_dir=$DATA" seed=0)
run() {  # name model task cap (minutes) [overrides]; a resumed run gets a fresh time cap
  local name=$1 model=$2 task=$3 cap=$4
  shift 4
  [[ -z "${ONLY:-}" || " $ONLY " == *" $name "* ]] || return 0
  train_run "$RUNS/$name" "model=$model" "task=$task" "${COMMON[@]}" \
    "+trainer.max_time=00:00:$cap:00" "$@"
}
# SevenNet-0 frozen (issue 26): the task turns on block 3's equivariant features, made
# parity-exact (split_parity, matgnn.models.sevennet); computed once per crystal, so only the
# head trains, with the same recipe: the task's linear TensorHead, and ("gated") the same head
# with one gated equivariant layer (128x0e + 32x1e + 32x2e) on each atom's scalars (all 5
# blocks) and irreps first
frozen=(finetune.freeze=backbone finetune.cache_features=true)
head_overrides() {  # one line, the task.heads overrides of one output:
  # NAME HEAD_CLASS FORMULA [KEY=VALUE ...] (values quoted for Hydra)
  local name=$1 head=$2 formula=$3 setting
  shift 3
  local line="+task.heads.$name._target_=matgnn.heads.$head +task.heads.$name._partial_=true"
  line+=" +task.heads.$name.formula='$formula'"
  for setting in "$@"; do line+=" +task.heads.$name.${setting%%=*}='${setting#*=}'"; done
  echo "$line"
}
gated="hidden=128x0e+32x1e+32x2e"
read -r -a gated_electronic <<< "$(head_overrides e_electronic TensorHead ij=ji "$gated")"
read -r -a gated_total <<< "$(head_overrides e_total TensorHead ij=ji "$gated")"
read -r -a gated_born <<< "$(head_overrides becs AtomTensorHead ij "$gated") \
  $(head_overrides eps TensorHead ij=ji "$gated")"
run e3nn_dielectric_electronic e3nn dielectric_electronic 12
run e3nn_elastic_tensor e3nn elastic_tensor 14
run cgcnn_dielectric_scalars cgcnn dielectric_scalars 06
run cgcnn_elastic_moduli cgcnn elastic_moduli 06
run e3nn_dielectric_total e3nn dielectric_total 12
run e3nn_born_charges e3nn born_charges 14
# the same scalars from the same backbone (e3nn with regression heads)
run e3nn_elastic_moduli e3nn elastic_moduli 10
run e3nn_dielectric_scalars e3nn dielectric_scalars 10
run sevennet_dielectric_electronic sevennet dielectric_electronic 12 "${frozen[@]}"
run sevennet_gated_dielectric_electronic sevennet dielectric_electronic 12 "${frozen[@]}" \
  "${gated_electronic[@]}"
run sevennet_dielectric_total sevennet dielectric_total 12 "${frozen[@]}"
run sevennet_gated_dielectric_total sevennet dielectric_total 12 "${frozen[@]}" "${gated_total[@]}"
run sevennet_born_charges sevennet born_charges 14 "${frozen[@]}"
run sevennet_gated_born_charges sevennet born_charges 14 "${frozen[@]}" "${gated_born[@]}"
# elastic tensors: SevenNet-0's features stop at l = 2, so the head makes the tensor's 4e from
# each atom's tensor square (square: 16x4e, 2e x 2e -> 4e), on block 3's irreps ("TensorHead +
# square") or after the gated layer ("+ gated layer + square")
read -r -a square_elastic <<< "$(head_overrides elastic_tensor TensorHead ijkl=jikl=klij \
  square=16x4e)"
read -r -a gated_square_elastic <<< "$(head_overrides elastic_tensor TensorHead ijkl=jikl=klij \
  square=16x4e "$gated")"
run sevennet_square_elastic_tensor sevennet elastic_tensor 14 "${frozen[@]}" "${square_elastic[@]}"
run sevennet_gated_square_elastic_tensor sevennet elastic_tensor 14 "${frozen[@]}" \
  "${gated_square_elastic[@]}"
echo CHAIN-DONE
