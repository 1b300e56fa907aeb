"""mp2018_eform with 5,000 training structures: test MAE and time per epoch per model, one table.

    PYTHONPATH=. .venv/bin/python benchmarks/mp2018_5k.py --models cgcnn potnet \
        --epochs 30 [--epochs-for alignn=2 matformer=2] [--out benchmarks/results]

Each model runs ``python -m matgnn.train model=<m> task=mp2018_eform`` through ``run(cfg)``
on the first 6,250 rows of ``<data_dir>/mp36k`` (seeded 80/10/10: 5,000 / 625 / 625), with the
model's default config, AdamW + OneCycle over the epochs given, the best-validation checkpoint
tested. Time per epoch is the median ``train_epoch_time_s`` (training only, from the
``EpochTimer`` callback); with ``--limit-batches-for model=N`` an epoch is cut to N batches
and its time scaled to the 79 batches of a full epoch (the MAE of such a run means little).
``--seeds`` and ``--precisions`` (``32-true``, ``bf16-mixed``) repeat each model; the seed draws
the split and the initial weights, so each precision sees the same splits. ``--max-batch-rows N``
caps every training batch at N feature rows (``task.data.max_batch_rows``; more, smaller batches
per epoch, counted from the run's own logged steps into ``batches_per_epoch``).
Writes ``mp2018_5k.csv`` and a Markdown table to ``--out``; with ``--predictions DIR`` each run's
test predictions (``id``, target, prediction) as ``DIR/<model>_<precision>_s<seed>.csv.gz``
(``..._s<seed>_cap<N>.csv.gz`` for a capped run).
"""

from __future__ import annotations

import argparse
import logging
import statistics
import time
from pathlib import Path

import pandas as pd
from hydra import compose, initialize_config_dir

from matgnn.config_dir import CONFIG_DIR, plain_structure_options
from matgnn.train import run

TARGET = "formation_energy_per_atom"  # the output of task mp2018_eform


def one_model(
    model: str,
    epochs: int,
    out: Path,
    data_dir: str,
    limit_batches: int | None = None,
    seed: int = 0,
    precision: str = "32-true",
    predictions: Path | None = None,
    max_batch_rows: int | None = None,
) -> dict:
    cap = f"_cap{max_batch_rows}" if max_batch_rows else ""
    out = (
        out / model
        if (seed, precision, cap) == (0, "32-true", "")
        else out / model / f"{precision}_seed{seed}{cap}"
    )
    overrides = [
        f"model={model}",
        "task=mp2018_eform",
        "task.data.source.limit=6250",
        f"trainer.max_epochs={epochs}",
        f"paths.data_dir={data_dir}",
        f"paths.output_dir={out}",
        f"seed={seed}",
        f"trainer.precision={precision}",
        "+trainer.enable_progress_bar=false",
    ]
    if limit_batches:
        overrides.append(f"+trainer.limit_train_batches={limit_batches}")
    if max_batch_rows:
        overrides.append(f"task.data.max_batch_rows={max_batch_rows}")
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(config_name="train", overrides=overrides)
    start = time.perf_counter()
    metrics = run(cfg)
    wall = time.perf_counter() - start
    if predictions is not None:  # the per-crystal test predictions, kept for the tables
        predictions.mkdir(parents=True, exist_ok=True)
        pd.read_csv(out / "test_predictions.csv").to_csv(
            predictions / f"{model}_{precision}_s{seed}{cap}.csv.gz",
            index=False,
            float_format="%.9g",
            compression={"method": "gzip", "mtime": 0},
        )
    versions = sorted((out / "logs").glob("version_*/metrics.csv"))
    if len(versions) != 1:  # an earlier run's logs in the same folder would be counted too
        raise SystemExit(f"{out / 'logs'}: {len(versions)} logged runs, expected this one only")
    logged = pd.read_csv(versions[0])
    epoch_times = logged["train_epoch_time_s"].dropna().tolist()
    # optimizer steps over the whole run (the test row is logged at the final global step)
    steps = int(logged["step"].max())
    if steps % len(epoch_times):
        raise SystemExit(f"{out}: {steps} steps over {len(epoch_times)} epochs")
    batches = steps // len(epoch_times)
    full = batches if not limit_batches else 79  # the 5,000 structures in batches of 64
    # a shortened epoch is scaled to a full one
    scale = 1.0 if not limit_batches else full / limit_batches
    return {
        "model": model,
        "precision": precision,
        "seed": seed,
        "max_batch_rows": max_batch_rows or "",
        "epochs": len(epoch_times),
        "batches_per_epoch": batches,
        "train_s_per_epoch": statistics.median(epoch_times) * scale,
        "test_mae_eV_per_atom": metrics[f"test_{TARGET}_mae"],
        "test_r2": metrics[f"test_{TARGET}_r2"],
        "mean_baseline_mae": metrics[f"test_{TARGET}_mae_predict_train_mean"],
        "wall_s": wall,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", nargs="+", default=plain_structure_options("model"))
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--epochs-for", nargs="*", default=[], help="model=epochs overrides")
    parser.add_argument("--data-dir", default="../shared/data")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/mp2018_5k"))
    parser.add_argument(
        "--limit-batches-for",
        nargs="*",
        default=[],
        help="model=batches: time a shortened epoch and scale it to 79 batches",
    )
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--precisions", nargs="+", default=["32-true"])
    parser.add_argument(
        "--predictions",
        type=Path,
        help="also keep each run's test predictions here (<model>_<precision>_s<seed>[_cap<N>]"
        ".csv.gz)",
    )
    parser.add_argument(
        "--max-batch-rows",
        type=int,
        help="cap each training batch at this many feature rows (task.data.max_batch_rows)",
    )
    args = parser.parse_args()
    if args.max_batch_rows and args.limit_batches_for:
        parser.error("--limit-batches-for scales to 79 batches of 64: not with --max-batch-rows")
    # the per-epoch lines of matgnn's EpochSummary (no progress bar off a terminal) go through
    # logging, which run() outside Hydra's CLI does not configure
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    epochs = {m: args.epochs for m in args.models}
    epochs.update({k: int(v) for k, v in (item.split("=") for item in args.epochs_for)})
    limits = {k: int(v) for k, v in (item.split("=") for item in args.limit_batches_for)}
    rows = []
    runs = [(m, s, p) for m in args.models for s in args.seeds for p in args.precisions]
    for model, seed, precision in runs:
        rows.append(
            one_model(
                model,
                epochs[model],
                args.out,
                args.data_dir,
                limits.get(model),
                seed,
                precision,
                args.predictions,
                args.max_batch_rows,
            )
        )
        table = pd.DataFrame(rows)
        args.out.mkdir(parents=True, exist_ok=True)
        table.to_csv(args.out / "mp2018_5k.csv", index=False)
        (args.out / "mp2018_5k.md").write_text(table.to_markdown(index=False, floatfmt=".4g"))
        print(table.to_string(index=False), flush=True)


if __name__ == "__main__":
    main()
