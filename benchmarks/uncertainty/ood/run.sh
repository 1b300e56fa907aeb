#!/usr/bin/env bash
# Uncertainty on random and out-of-distribution splits (issue 28): every estimator of matgnn
# (ensemble of 5, MC dropout, mean-variance, latent distance), each with split-conformal 95%
# intervals and every crystal's ood score, CGCNN on
#   mp_sample_eform    the embedded 1,500 MP crystals (formation energy), 60 epochs;
#   matbench_phonons   last phonon DOS peak (the 1,261-row copy), 100 epochs, patience 30;
# each on its random split (mp_sample: seeded 80/10/10; phonons: Matbench fold 0 with a seeded
# 10% of its training rows for validation) and on a hold-out of whole chemical systems
# (split.kind=holdout, group chemsys, at least 10% of the crystals in test; validation a
# random 10% of the rest); mp_sample also on a hold-out of elements (group element).
# The ensemble once more with its std made distance-aware (uncertainty.distance_std=true), on
# the same trained members: a copy of the finished ensemble run without its test outputs, so
# the run only calibrates, tests and predicts again (ensemble_distance).
# One seed per run (seed 0; the ensemble's members 0-4). One run at a time on 2 cores: about
# 4 min per mp_sample run and 20 per ensemble (about 1.6 h for its three splits), about twice
# that per phonons split.
#   bash benchmarks/uncertainty/ood/run.sh [runs folder]   (from the repository root)
# then: python benchmarks/uncertainty/ood/table.py --collect <runs folder> \
#     --update docs/results/uncertainty.md
# A finished run is skipped, a killed one resumes (benchmarks/train_run.sh; an ensemble
# continues at its first unfinished member).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../../.."
source benchmarks/train_run.sh
export PATH="$PWD/.venv/bin:$PATH"
RUNS=${1:-runs/uncertainty_ood}
DATA=${MATGNN_DATA_DIR:-../shared/data}
mkdir -p "$RUNS"
HOLDOUT=(task.data.split.kind=holdout task.data.split.test=0.1 task.data.split.val=0.1)
declare -A SPLITS=(
    [random]=""
    [chemsys]="${HOLDOUT[*]} task.data.split.group=chemsys"
    [element]="${HOLDOUT[*]} task.data.split.group=element"
)
declare -A TASKS=(
    [mp_sample_eform]="trainer.max_epochs=60"
    [matbench_phonons]="trainer.max_epochs=100 callbacks.early_stopping.patience=30 paths.data_dir=$DATA"
)
train_one() {  # task split folder estimator [overrides]
    local task=$1 split=$2 folder=$3 estimator=$4
    shift 4
    # shellcheck disable=SC2086  # the override lists split on spaces
    train_run "$RUNS/$task/$split/$folder" model=cgcnn "task=$task" seed=0 \
        "uncertainty=$estimator" uncertainty.coverage=0.95 \
        +trainer.enable_progress_bar=false ${TASKS[$task]} ${SPLITS[$split]} "$@"
}
run_all() {  # task split
    local task=$1 split=$2 here="$RUNS/$1/$2"
    for estimator in latent_distance mean_variance mc_dropout ensemble; do
        train_one "$task" "$split" "$estimator" "$estimator"
    done
    if [ ! -d "$here/ensemble_distance" ]; then  # the trained members, not their test outputs
        mkdir -p "$here/ensemble_distance"
        cp -r "$here/ensemble/members" "$here/ensemble_distance/"
    fi
    train_one "$task" "$split" ensemble_distance ensemble uncertainty.distance_std=true
}
run_all mp_sample_eform random
run_all mp_sample_eform chemsys
run_all mp_sample_eform element
run_all matbench_phonons random
run_all matbench_phonons chemsys
echo CHAIN-DONE
