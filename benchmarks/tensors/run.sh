set -u
# Usage: bash benchmarks/tensors/run.sh (RUNS=<folder>, default runs/tensors), then
# python benchmarks/tensors/table.py --collect <folder> --update README.md
cd "$(dirname "$0")/../.."
mkdir -p "${RUNS:-runs/tensors}"
export PATH="$PWD/.venv/bin:$PATH"
# Issue 14 tensor runs, seed 0, 2 cores, one run at a time. Chen 2021 recipe for every run:
# AdamW 5e-3, wd 0.05, exponential 0.96/epoch, batch 16, <=100 epochs, wall-clock cap each.
COMMON="scheduler=exponential optimizer.lr=5e-3 optimizer.weight_decay=0.05 trainer.max_epochs=100 paths.data_dir=../shared/data +trainer.enable_progress_bar=false seed=0"
run() {  # name model task cap
  echo "START $1 $(date -u +%FT%TZ)"
  python -m matgnn.train model=$2 task=$3 $COMMON +trainer.max_time=00:00:$4:00 \
    hydra.run.dir=${RUNS:-runs/tensors}/$1 > ${RUNS:-runs/tensors}/$1.log 2>&1
  echo "END $1 rc=$? $(date -u +%FT%TZ)"
}
run e3nn_dielectric_electronic e3nn dielectric_electronic 12
run e3nn_elastic_tensor e3nn elastic_tensor 14
run cgcnn_dielectric_scalars cgcnn dielectric_scalars 06
run cgcnn_elastic_moduli cgcnn elastic_moduli 06
run e3nn_dielectric_total e3nn dielectric_total 12
run e3nn_born_charges e3nn born_charges 14
# the same scalars from the same backbone (e3nn with regression heads)
run e3nn_elastic_moduli e3nn elastic_moduli 10
run e3nn_dielectric_scalars e3nn dielectric_scalars 10
echo CHAIN-DONE
