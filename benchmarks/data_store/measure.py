"""Data beyond memory (issue 29): the on-disk graph store against the in-memory path.

    PYTHONPATH=. .venv/bin/python benchmarks/data_store/measure.py <phase> [options]

Phases (each in its own process, so that its peak resident memory is its own; one at a time on
an otherwise idle machine):

* ``build --rows N --workers W``: an empty cache folder -> the ALIGNN graph store of the first
  N rows of Matbench ``matbench_mp_e_form`` (the partial copy in ``../shared/data``, fold 0)
  built by W processes (``CrystalDataModule(store="disk").setup()``, the normal path). Wall
  time, peak RSS of the parent and of the largest worker, store size.
* ``train --rows N [--sample] --store memory|disk [--devices 2]``: ALIGNN (``model=alignn``,
  its shipped config) trains on those rows with batch 64 for ``--steps`` optimiser steps after
  ``--warmup`` steps, through ``matgnn.training.run`` (the objects ``python -m matgnn.train``
  builds), graphs already built (the store of ``build``, or the in-memory path's graph cache,
  built by a first, unmeasured ``setup``). Peak RSS of each process over the whole run
  (reading or loading the data included) and training throughput in crystals per second.
  ``--devices 2``: Lightning DDP on 2 CPU processes (gloo), each rank's own peak RSS.
  ``--sample``: N rows drawn at random (seed 0) instead of the first N, so that a smaller set
  has the whole set's mix of cell sizes (the first 5,000 rows of the partial copy average 12.2
  sites per cell, all 33,370 rows 24.7), and the peak RSS compares data sizes, not batch sizes.

  ``--max-batch-rows R``: training batches capped at R feature rows (atoms + bonds + angles,
  ``task.data.max_batch_rows``), at most 64 crystals per batch on average.
  ``--epoch``: one whole epoch and then the validation pass over the validation split
  (batches of 64, not capped: no backward pass), instead of ``--steps``; the peak RSS before
  and after validation is recorded apart.

* ``sizes --rows N``: sites per cell of the first N rows, of N rows drawn at random and of all.

Every phase writes ``results/<name>.json`` (the measurement, the command, the machine);
``table.py`` writes the table from them. ``run.sh`` runs every phase of the table.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPOSITORY = HERE.parents[1]
sys.path.insert(0, str(REPOSITORY))

from benchmarks._process import environment, resident_mb  # noqa: E402

TASK = "matbench_mp_e_form"


def compose(
    rows: int | None,
    store: str,
    cache: Path,
    data_dir: str,
    *extra: str,
    sample: bool = False,
    union: bool = False,
):
    """The training config of a measurement. ``union``: the rows of every structure source
    (:mod:`union`, the first ``rows`` of each part when given) with the target
    ``volume_per_atom`` computed from each structure, in a seeded 80/10/10 split."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from matgnn.config_dir import CONFIG_DIR

    if union:
        source = [
            "~task.data.source",
            "+task.data.source={_target_:benchmarks.data_store.union.structure_union,"
            f"_partial_:true,data_dir:${{paths.data_dir}},limit:{rows or 'null'}}}",
            "task.target=volume_per_atom",
            "task.units='A^3/atom'",
            "task.name=structure_union",
            "task.data.split.kind=random",
        ]
    else:
        source = [
            f"task.data.source.limit={rows if rows and not sample else 'null'}",
            f"task.data.source.sample={rows if rows and sample else 'null'}",
        ]
    overrides = [
        "model=alignn",
        f"task={TASK}",
        "paths.output_dir=.",
        f"paths.data_dir={data_dir}",
        f"paths.cache_dir={cache}",
        f"task.data.store={store}",
        "task.data.batch_size=64",
        *source,
        *extra,
    ]
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return hydra_compose(config_name="train", overrides=overrides)


def data_module(cfg):
    from hydra.utils import instantiate

    from matgnn.graphs import GraphConfig
    from matgnn.training.run import model_config, task_outputs

    outputs = task_outputs(cfg)
    graph = GraphConfig.from_dict(model_config(cfg, outputs)["graph"])
    return instantiate(cfg.task.data)(graph=graph, outputs=outputs)


def build(args) -> dict:
    """The source loaded (not timed: matminer decodes the whole partial file, 33,370
    structures, whatever ``limit``), then its graph store built by ``workers`` processes."""
    from matgnn.data.stores import GraphStore
    from matgnn.graphs import GraphConfig
    from matgnn.graphs.cache import structures_fingerprint
    from matgnn.training.run import model_config, task_outputs

    cache = Path(args.cache) / f"build-{args.rows}-{args.workers}-{args.union}"
    shutil.rmtree(cache, ignore_errors=True)
    cfg = compose(args.rows, "disk", cache, args.data_dir, union=args.union)
    outputs = task_outputs(cfg)
    graph = GraphConfig.from_dict(model_config(cfg, outputs)["graph"])
    from hydra.utils import instantiate

    records = instantiate(cfg.task.data.source)()
    ids = [str(i) for i in records.ids]
    fingerprint = structures_fingerprint(records.structures, ids)
    loaded_rss = resident_mb("VmRSS")
    start = time.perf_counter()
    store = GraphStore.at(cache, graph, "bench").build(
        records.structures, ids, fingerprint, shard_size=args.shard_size,
        workers=args.workers, progress=False,
    )  # fmt: skip
    seconds = time.perf_counter() - start
    size = sum(p.stat().st_size for p in store.directory.iterdir())
    result = {
        "rows": len(ids),
        "union": args.union,
        "workers": args.workers,
        "shard_size": args.shard_size,
        "graphs": len(store),
        "rejected": len(store.failures),
        "seconds": seconds,
        "graphs_per_second": len(store) / seconds,
        "rss_with_structures_mb": loaded_rss,
        "peak_rss_mb": resident_mb("VmHWM"),
        "store_mb": size / 2**20,
        "store_bytes_per_graph": size / max(len(store), 1),
    }
    shutil.rmtree(cache, ignore_errors=True)
    return result


class Clock:
    """A Lightning callback that times optimiser steps ``warmup`` .. ``warmup + steps``."""

    def __init__(self, warmup: int) -> None:
        import lightning as L

        class _Clock(L.Callback):
            def __init__(inner) -> None:
                inner.start = inner.end = None
                inner.crystals = 0
                inner.steps: list[dict] = []
                inner.validation: dict = {}

            def on_train_batch_start(inner, trainer, module, batch, batch_idx) -> None:
                if trainer.global_step == warmup and inner.start is None:
                    inner.start = time.perf_counter()

            def on_train_batch_end(inner, trainer, module, outputs, batch, batch_idx) -> None:
                if inner.start is not None:
                    inner.crystals += batch.num_graphs
                    inner.end = time.perf_counter()
                # every step: the memory after it and the size of its batch, so that a peak
                # can be traced to the batch that made it
                inner.steps.append(
                    {
                        "step": int(trainer.global_step),
                        "rss_mb": resident_mb("VmRSS"),
                        "peak_rss_mb": resident_mb("VmHWM"),
                        "crystals": int(batch.num_graphs),
                        "atoms": int(batch.num_nodes),
                        "edges": int(batch.edge_index.size(1)),
                        "angles": int(batch.lg_edge_index.size(1)),
                    }
                )

            def on_validation_start(inner, trainer, module) -> None:
                inner.validation["peak_rss_before_mb"] = resident_mb("VmHWM")

            def on_validation_batch_end(inner, trainer, module, outputs, batch, *_) -> None:
                inner.validation["batches"] = inner.validation.get("batches", 0) + 1
                inner.validation["crystals"] = (
                    inner.validation.get("crystals", 0) + batch.num_graphs
                )

            def on_validation_end(inner, trainer, module) -> None:
                inner.validation["peak_rss_after_mb"] = resident_mb("VmHWM")

        self.callback = _Clock()


def train(args) -> dict:
    import lightning as L
    import torch

    from matgnn.training.run import build_module, model_config

    cap = [f"task.data.max_batch_rows={args.max_batch_rows}"] if args.max_batch_rows else []
    cfg = compose(
        args.rows, args.store, _train_cache(args), args.data_dir, *cap, sample=args.sample,
        union=args.union,
    )  # fmt: skip
    rank = int(os.environ.get("LOCAL_RANK", 0))
    if rank == 0 and not os.environ.get("MATGNN_BENCH_PREPARED"):
        # graphs built (store or cache) by an unmeasured process: this one only reads them
        import subprocess

        subprocess.run(
            [sys.executable, __file__, "prepare", *sys.argv[2:]], check=True,
            env={**os.environ, "MATGNN_BENCH_PREPARED": "1"},
        )  # fmt: skip
    os.environ["MATGNN_BENCH_PREPARED"] = "1"  # DDP ranks re-run this script
    start = time.perf_counter()
    L.seed_everything(0)
    model = model_config(cfg)
    module = build_module(cfg, model, resuming=False)
    data = data_module(cfg)
    data.setup("fit")
    module.prepare(data.subsets, data.split_ids())
    setup_seconds = time.perf_counter() - start
    setup_rss = resident_mb("VmHWM")
    clock = Clock(args.warmup)
    # one whole epoch with its validation pass, or warm-up + steps without validation
    length = (
        {"max_epochs": 1}
        if args.epoch
        else {"max_steps": args.warmup + args.steps, "limit_val_batches": 0}
    )
    trainer = L.Trainer(
        accelerator="cpu",
        devices=args.devices,
        strategy="ddp" if args.devices > 1 else "auto",
        **length,
        num_sanity_val_steps=0,
        enable_checkpointing=False,
        logger=False,
        enable_progress_bar=False,
        callbacks=[clock.callback],
    )
    trainer.fit(module, datamodule=data)
    if clock.callback.start is None or clock.callback.end is None:
        raise SystemExit(
            f"{len(clock.callback.steps)} training steps: none timed after the {args.warmup} "
            "warm-up steps"
        )
    seconds = clock.callback.end - clock.callback.start
    result = {
        "rows": args.rows,
        "sampled": args.sample,
        "union": args.union,
        "store": args.store,
        "devices": args.devices,
        "rank": trainer.global_rank,
        "graphs": sum(len(v) for v in data.subsets.values()),
        "setup_seconds": setup_seconds,
        "setup_peak_rss_mb": setup_rss,
        "peak_rss_mb": resident_mb("VmHWM"),
        "epoch": args.epoch,
        "steps": len(clock.callback.steps) - args.warmup if args.epoch else args.steps,
        "warmup": args.warmup,
        "validation": clock.callback.validation,
        "max_batch_rows": args.max_batch_rows,
        "train_batches": int(trainer.num_training_batches),
        "crystals_per_second": clock.callback.crystals / seconds,
        "per_step": clock.callback.steps,
        "torch_threads": torch.get_num_threads(),
    }
    return result


def sizes(args) -> dict:
    """Sites per cell of the rows each training measurement takes: the first 5,000, 5,000
    drawn at random (``--sample``'s rows) and all of them."""
    import numpy as np
    from hydra.utils import instantiate

    def mean_sites(rows: int | None, sample: bool) -> dict:
        cfg = compose(rows, "memory", Path(args.cache), args.data_dir, sample=sample)
        records = instantiate(cfg.task.data.source)()
        sites = np.array([len(s) for s in records.structures])
        return {"crystals": len(sites), "mean_sites": float(sites.mean()),
                "max_sites": int(sites.max())}  # fmt: skip

    from matgnn.data.sources.matbench import frames_kept

    with frames_kept():  # the source decoded once for the three
        return {
            "first": mean_sites(args.rows, False),
            "sampled": mean_sites(args.rows, True),
            "all": mean_sites(None, False),
        }


def _train_cache(args) -> Path:
    """The graphs of one training measurement, built by ``prepare`` and read by ``train``."""
    union = "-union" if args.union else ""
    return Path(args.cache) / f"train-{args.rows}-{args.sample}-{args.store}{union}"


def prepare(args) -> dict:
    cfg = compose(
        args.rows, args.store, _train_cache(args), args.data_dir, "task.data.store_workers=2",
        sample=args.sample, union=args.union,
    )  # fmt: skip
    data_module(cfg).setup("fit")
    return {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("phase", choices=["build", "train", "prepare", "sizes"])
    parser.add_argument("--rows", type=int, default=5000, help="first rows (0: all)")
    parser.add_argument(
        "--sample", action="store_true",
        help="the rows drawn at random (seed 0) instead of the first: the whole set's cell sizes",
    )  # fmt: skip
    parser.add_argument(
        "--union", action="store_true",
        help="every structure source together (union.py; --rows: the first rows of each part)",
    )  # fmt: skip
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--store", choices=["memory", "disk"], default="disk")
    parser.add_argument("--devices", type=int, default=1)
    parser.add_argument("--shard-size", type=int, default=250)
    parser.add_argument(
        "--max-batch-rows", type=int, default=None,
        help="task.data.max_batch_rows: batches capped in feature rows (<= 64 crystals on average)",
    )  # fmt: skip
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument(
        "--epoch", action="store_true",
        help="train one whole epoch, then validate (instead of --steps)",
    )  # fmt: skip
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--name", default=None, help="results/<name>.json")
    parser.add_argument("--cache", default="/tmp/matgnn-data-store")
    parser.add_argument("--data-dir", default=os.environ.get("MATGNN_DATA_DIR", "../shared/data"))
    args = parser.parse_args()
    if args.sample and args.phase == "build":
        parser.error("--sample is for train, prepare and sizes; build takes the first rows")
    if args.max_batch_rows is not None and args.max_batch_rows < 1:
        parser.error("--max-batch-rows must be positive")
    if args.union and (args.sample or args.phase == "sizes"):
        parser.error("--union is for build, train and prepare, without --sample")
    if args.epoch and args.phase not in ("train", "prepare"):  # train hands it to prepare
        parser.error("--epoch is for train")
    if args.sample and not args.rows:
        parser.error("--sample needs --rows N (a sample of all rows is all rows)")
    args.rows = args.rows or None
    phases = {"build": build, "train": train, "prepare": prepare, "sizes": sizes}
    result = phases[args.phase](args)
    if args.phase == "prepare":
        return
    result["command"] = " ".join(["benchmarks/data_store/measure.py", *sys.argv[1:]])
    result["environment"] = environment()
    if args.name:
        rank = result.get("rank", 0)
        name = args.name + (f".rank{rank}" if args.devices > 1 else "")
        (HERE / "results").mkdir(exist_ok=True)
        (HERE / "results" / f"{name}.json").write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
