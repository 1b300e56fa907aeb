#!/usr/bin/env bash
# ARISE-style structure recognition (issue 15) on a 2-core CPU:
#   bash benchmarks/arise/run.sh [runs folder]   (from the repository root)
# 1. train CGCNN with MC dropout (0.1) on the pristine AFLOW prototypes (task=arise_prototypes):
#    300 epochs, AdamW 1e-3 one-cycle, batch 64, early-stopping patience 100 on the validation
#    loss; calibration (temperature) on the validation cells;
# 2. evaluate on the defect grid of benchmarks/arise/evaluate.py (2 draws per level), next to
#    spglib, into benchmarks/arise/results, and refresh the docs table.
set -euo pipefail
RUNS=${1:-runs/arise}
if [ ! -f "$RUNS/train/uncertainty_metrics.json" ]; then
    python -m matgnn.train model=cgcnn task=arise_prototypes uncertainty=mc_dropout \
        trainer.max_epochs=300 callbacks.early_stopping.patience=100 \
        +trainer.enable_progress_bar=false hydra.run.dir="$RUNS/train"
fi
python benchmarks/arise/evaluate.py "$RUNS/train/checkpoints/best.ckpt" benchmarks/arise/results \
    --draws 2 --update docs/results/uncertainty.md
