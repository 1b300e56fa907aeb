#!/usr/bin/env bash
# iMatGen's autoencoders on the V-O data set (issue 27), one run after another on a 2-core CPU:
#   bash benchmarks/design/run.sh [labels] [basis] [basis_shape] [basis_continued]
#       [basis_choice] [cell] [cell_shape] [generator_sweep] [generator] [evaluate] [generation]
# (from the repository root; by default labels basis cell generator evaluate generation), then
#   python benchmarks/blocks.py --update   (the labels, autoencoder and generation tables)
# Each training run is resumable within its budget: run it again and it continues from its
# last.ckpt (a run that ended at its max_time stops there; raise MAX_TIME to go on).
#
# Runs and budgets (2 cores, torch CPU, fp32; the whole V-O data set, split by MP binary 80/10/10
# with the 14 known V-O structures held out):
#   basis     BasisAutoencoder 64^3 -> 200, width 16 (the paper: 64), batch 16, Adam 1e-3,
#             MAX_TIME_BASIS (default 1 h 15 min; about 7.5 min an epoch of 14,700 images,
#             alone on 2 cores)
#             BASIS_WIDTH: another width (default 16), trained in $OUT/basis_w<width>, which
#             the generator steps (in $OUT/generator_w<width>..., codes of their own) and the
#             evaluation then use; the evaluation and generation write the published results
#             (e.g. BASIS_WIDTH=32: about 2.8x the time of a training step on one core,
#             docs/how-to/inverse-design.md, "Why the autoencoders use batch norm")
#             BASIS_OVERRIDES: more overrides of the basis run, e.g. its learning-rate decay
#             when resumed from its epoch-11 checkpoint ("lr_decay.start=12 lr_decay.epochs=12
#             trainer.max_epochs=24", with MAX_TIME_BASIS raised by the ~90 min those take: the
#             checkpoint's timer already holds the time spent; the last epoch, 23, runs at
#             ~2.7e-5, the minimum comes at epoch start + epochs)
#   basis_shape the basis run above warm-started (init_from) and trained WARM_EPOCHS more
#             epochs (default 6; about 7 min each) with the log-value shape error added to the
#             loss (network.shape_weight=1), at lr 1e-4 decaying by half cosine to 1e-5 in
#             the last of them, in $OUT/basis_w<width>_shape (MAX_TIME_BASIS_WARM, default 1 h)
#   basis_continued its control: the same warm start, epochs and schedule, cross-entropy
#             only, in $OUT/basis_w<width>_continued
#   basis_choice benchmarks/design/basis_choice.py: the basis run and those of the two steps
#             above that exist, compared on the validation structures (the cell exact)
#   cell      CellAutoencoder 32^3 -> 20, width 32 (the paper: 64), batch 16, Adam 1e-3,
#             MAX_TIME_CELL (default 20 min; about 1 min 20 s an epoch here)
#   cell_shape the same with the log-value shape error added to the loss (network.shape_weight=1);
#             CELL_OVERRIDES: more overrides of this run (as BASIS_OVERRIDES)
#   labels    benchmarks/design/labels.py --run: Xie's CGCNN formation energy of every structure
#             (a model's labels, about 2 min)
#   generator_sweep the generator trained once per KL_WEIGHT:CELL_WEIGHT setting of
#             GENERATOR_SWEEP (default: SWEEP below, six settings), MAX_TIME_SWEEP each
#             (default 10 min), in $OUT/generator_kl<KL>_cw<CELL>, then compared on the
#             validation structures through the generator (generation.py --sweep): what the
#             generator's settings (imatgen.yaml: KL 1e-3, cell weight 30) were chosen on
#   generator MaterialsGenerator (the paper's latent 500, hidden 100) on the two best
#             autoencoders' codes, the CGCNN labels as its scalar property, Adam 1e-3, batch 64,
#             MAX_TIME_GENERATOR (default 6 min); GENERATOR_OVERRIDES: more overrides. The
#             published one (the sweep's KL 1e-3, cell weight 30) ran 202 epochs:
#             MAX_TIME_GENERATOR=00:00:45:00 GENERATOR_OVERRIDES="trainer.max_epochs=202"
#             (about 21 min here); its best checkpoint is kept, slimmed, in
#             benchmarks/design/runs/generator
#   evaluate  benchmarks/design/autoencoders.py --run on both best checkpoints: every test and
#             held-out structure and 500 seeded training structures, then the test structures
#             through each autoencoder alone (the other image exact)
#   generation benchmarks/design/generation.py --run: rediscovery (30 latents around each
#             held-out known V-O structure, sigma 0.1), 1,000 random latents, 50 slerp paths;
#             the screening of the new crystals with two pretrained CGCNNs against the MP V-O
#             hull, and the latent PCA (latent_pca.png)
set -euo pipefail
DATA=${MATGNN_DATA_DIR:-../shared/data}
CACHE=${MATGNN_CACHE_DIR:-.cache/graphs}
OUT=${IMATGEN_RUNS:-runs/imatgen}
# the cell autoencoder run the generator and the evaluation use (CELL_RUN: another one)
CELL=${CELL_RUN:-$OUT/cell_w32}
# the basis autoencoder's width, and its run (the one the generator and the evaluation use)
WIDTH=${BASIS_WIDTH:-16}
BASIS=$OUT/basis_w$WIDTH
# the generators on its codes: $OUT/generator (width 16, the published run) or generator_w<width>
GEN=$OUT/generator
[ "$WIDTH" = 16 ] || GEN=${GEN}_w$WIDTH
STEPS=("$@")
[ ${#STEPS[@]} -gt 0 ] || STEPS=(labels basis cell generator evaluate generation)
LABELS=benchmarks/design/results/vo_labels.csv.gz
LABEL=formation_energy_per_atom__predicted_by__cgcnn_xie2018_formation_energy
CODES=codes.pt
# the generator sweep's settings, KL_WEIGHT:CELL_WEIGHT
SWEEP="1:1 0.01:1 0.001:1 0.01:30 0.001:30 0.001:300"
# one autoencoder: STAGE FOLDER MAX_TIME overrides...
train() {
    local stage=$1 folder=$2 budget=$3; shift 3
    local resume=()
    [ -f "$folder/checkpoints/last.ckpt" ] && resume=("resume=$folder")
    python -m matgnn.design.train stage="$stage" data.source=mp36k paths.data_dir="$DATA" \
        paths.cache_dir="$CACHE" trainer.max_epochs=100 trainer.max_time="$budget" \
        trainer.limit_val_batches=20 trainer.log_every_n_steps=50 hydra.run.dir="$folder" \
        "${resume[@]}" "$@"
}
for step in "${STEPS[@]}"; do
    case $step in
        basis) read -r -a extra <<< "${BASIS_OVERRIDES:-}"
            train basis "$BASIS" "${MAX_TIME_BASIS:-00:01:15:00}" network.width="$WIDTH" \
                "${extra[@]}" ;;
        basis_shape | basis_continued)
            epochs=${WARM_EPOCHS:-6}  # 1e-4 in the first epoch, the minimum in the last
            warm=(init_from="$BASIS" trainer.max_epochs="$epochs" lr=1e-4
                  lr_decay.start=0 lr_decay.epochs="$((epochs - 1))" lr_decay.min=1e-5)
            [ "$step" = basis_shape ] && warm+=(network.shape_weight=1.0)
            train basis "${BASIS}_${step#basis_}" "${MAX_TIME_BASIS_WARM:-00:01:00:00}" \
                network.width="$WIDTH" "${warm[@]}" ;;
        basis_choice) runs=("$BASIS")
            for run in "${BASIS}_shape" "${BASIS}_continued"; do
                [ -f "$run/checkpoints/best.ckpt" ] && runs+=("$run")
            done
            python benchmarks/design/basis_choice.py --data "$CACHE/vo_dataset.json.gz" \
                "${runs[@]}" ;;
        cell) train cell "$OUT/cell_w32" "${MAX_TIME_CELL:-00:00:20:00}" network.width=32 ;;
        cell_shape) read -r -a extra <<< "${CELL_OVERRIDES:-}"
            train cell "$OUT/cell_w32_shape" "${MAX_TIME_CELL:-00:00:20:00}" \
                network.width=32 network.shape_weight=1.0 "${extra[@]}" ;;
        labels) python -c "from matgnn.design.run import load_vo_dataset as l; l('mp36k', '$DATA', '$CACHE')"
            python benchmarks/design/labels.py --run --data "$CACHE/vo_dataset.json.gz" ;;
        generator_sweep) read -r -a settings <<< "${GENERATOR_SWEEP:-$SWEEP}"
            folders=()
            for setting in "${settings[@]}"; do
                kl=${setting%%:*} cw=${setting##*:}
                folder="${GEN}_kl${kl}_cw${cw}"
                folders+=("$folder")
                [ -f "$GEN/$CODES" ] && [ ! -f "$folder/$CODES" ] &&
                    mkdir -p "$folder" && cp "$GEN/$CODES" "$folder/"
                train generator "$folder" "${MAX_TIME_SWEEP:-00:00:10:00}" \
                    generator.cell_run="$CELL" generator.basis_run="$BASIS" \
                    generator.property.labels="$LABELS" generator.property.column="$LABEL" \
                    data.batch_size=64 trainer.max_epochs=1000 trainer.limit_val_batches=1.0 \
                    generator.kl_weight="$kl" generator.cell_weight="$cw"
            done
            python benchmarks/design/generation.py --sweep "${folders[@]}" \
                --data "$CACHE/vo_dataset.json.gz" ;;
        generator) read -r -a extra <<< "${GENERATOR_OVERRIDES:-}"
            train generator "$GEN" "${MAX_TIME_GENERATOR:-00:00:06:00}" \
            generator.cell_run="$CELL" generator.basis_run="$BASIS" \
            generator.property.labels="$LABELS" generator.property.column="$LABEL" \
            data.batch_size=64 trainer.max_epochs=300 trainer.limit_val_batches=1.0 \
            "${extra[@]}" ;;
        generation) python benchmarks/design/generation.py --run --generator "$GEN" \
            --data "$CACHE/vo_dataset.json.gz" --snapshot "$DATA/mp36k/mp36k_with_ehull.csv.gz" ;;
        evaluate) python benchmarks/design/autoencoders.py --run --cell "$CELL" \
            --basis "$BASIS" --data "$CACHE/vo_dataset.json.gz" ;;
        *) echo "unknown step $step (labels basis basis_shape basis_continued basis_choice cell" \
                "cell_shape generator_sweep generator evaluate generation)" >&2
            exit 2 ;;
    esac
done
