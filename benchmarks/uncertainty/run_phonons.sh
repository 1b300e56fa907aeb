#!/usr/bin/env bash
# Uncertainty estimators compared on matbench_phonons fold 0 (issue 15), one after another on a
# 2-core CPU (~25 min here):
#   [MATGNN_DATA_DIR=../shared/data] bash benchmarks/uncertainty/run_phonons.sh [runs folder]
# from the repository root, with the matgnn environment's python on PATH; the runs folder
# (default runs/uncertainty_phonons) gets one folder per estimator (names below); the data
# folder (default ../shared/data) holds the Matbench tables; further arguments are ignored.
# Same recipe as the CGCNN Matbench run (benchmarks/matbench): CGCNN, 300 epochs, AdamW 1e-3
# one-cycle, batch 64, early-stopping patience 100; the fold's training rows minus a seeded 10%
# validation split (used for early stopping and for calibration); the fold's test rows.
#   ensemble       5 members, seeds 0-4
#   mc_dropout     dropout 0.1 on atom features and head, 30 passes
#   mean_variance  Gaussian NLL head
#   mean_variance_beta  the same head trained with the beta-NLL (beta 0.5)
# Then: python benchmarks/uncertainty/table.py --collect <runs folder> --update docs/results/uncertainty.md
set -euo pipefail
RUNS=${1:-runs/uncertainty_phonons}
DATA=${MATGNN_DATA_DIR:-../shared/data}
train() {
    python -m matgnn.train model=cgcnn task=matbench_phonons paths.data_dir="$DATA" \
        trainer.max_epochs=300 callbacks.early_stopping.patience=100 \
        +trainer.enable_progress_bar=false "$@"
}
for estimator in mean_variance mc_dropout ensemble; do
    # a finished estimator is skipped; an ensemble continues at its first unfinished member
    [ -f "$RUNS/$estimator/uncertainty_metrics.json" ] && continue
    train uncertainty=$estimator hydra.run.dir="$RUNS/$estimator"
done
if [ ! -f "$RUNS/mean_variance_beta/uncertainty_metrics.json" ]; then
    train uncertainty=mean_variance uncertainty.loss=beta_nll hydra.run.dir="$RUNS/mean_variance_beta"
fi
