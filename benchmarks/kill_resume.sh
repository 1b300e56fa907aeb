#!/usr/bin/env bash
# Interrupt a training run with kill -9 in the middle of an epoch, then resume it with
# ckpt_path=last and check that it finishes: same max_epochs (OneCycle's step count is fixed
# by it), last checkpoint at the final epoch, test metrics written.
#   bash benchmarks/kill_resume.sh [out_dir]
set -euo pipefail
OUT=${1:-/tmp/matgnn_kill_resume}
PY=${PY:-.venv/bin/python}
rm -rf "$OUT"
ARGS=(model=cgcnn task=mp_sample_eform trainer.max_epochs=8 "hydra.run.dir=$OUT"
      "paths.cache_dir=$OUT/cache" +trainer.enable_progress_bar=false)
"$PY" -m matgnn.train "${ARGS[@]}" >"$OUT.first.log" 2>&1 &
PID=$!
# wait until epoch 3 has started (checkpoint of epoch 2 written), then kill inside epoch 3
until [ -f "$OUT/checkpoints/last.ckpt" ] && "$PY" -c "import torch,sys; sys.exit(torch.load('$OUT/checkpoints/last.ckpt', weights_only=True)['epoch'] < 2)" 2>/dev/null; do
  sleep 0.5
done
sleep 1
kill -9 "$PID"; wait "$PID" || true
KILLED_AT=$("$PY" -c "import torch; c=torch.load('$OUT/checkpoints/last.ckpt', weights_only=True); print(c['epoch'], c['global_step'])")
echo "killed with -9; last.ckpt holds (epoch, global_step) = $KILLED_AT"
"$PY" -m matgnn.train "${ARGS[@]}" ckpt_path=last >"$OUT.resume.log" 2>&1
FINAL=$("$PY" -c "import torch; c=torch.load('$OUT/checkpoints/last.ckpt', weights_only=True); print(c['epoch'], c['global_step'])")
echo "resumed run finished; last.ckpt holds (epoch, global_step) = $FINAL"
grep -o "Restoring states from the checkpoint path at [^ ]*" "$OUT.resume.log" | head -1
grep -o "test metrics: .*" "$OUT.resume.log"
test -s "$OUT/test_predictions.csv" && echo "test_predictions.csv written"
