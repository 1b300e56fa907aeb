"""Trainer step time against the pure optimisation step, on the same batch (issue "Training
speed and memory": the trainer should cost at most 1.3x the model).

For every graph model of ``matgnn/configs/model/`` (default size, float32, CPU; not the
site-descriptor network, which needs labelled structures): one batch of ``--batch``
structures of the embedded task ``mp_sample_eform`` (graphs built as ``matgnn.train`` builds
them, with their targets), then

* pure: ``model(batch)`` -> the task's loss -> ``backward`` -> AdamW ``step`` -> ``zero_grad``;
* trainer: ``lightning.Trainer.fit`` of :class:`~matgnn.training.CrystalLitModule` (the
  optimiser and scheduler configs of ``matgnn.train``) on a loader that yields that same batch
  ``--warmup + --steps`` times, timed from one batch's start to the next (so the loader's
  collation, every hook and the logging are in).

Both take the median over ``--steps`` steps after ``--warmup``; the ratio is trainer / pure.
The data path is timed apart: ``collate s`` is the DataLoader alone collating one batch of those
graphs (median over ``--steps``), ``cache load s/batch`` the start-up reload of the task's graphs
from a warm on-disk cache, per ``--batch`` graphs.

    PYTHONPATH=. .venv/bin/python benchmarks/trainer_overhead.py --steps 8 [--json <file>]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import lightning as L
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torch_geometric.loader import DataLoader

from matgnn.config_dir import CONFIG_DIR, plain_structure_options
from matgnn.training import CrystalLitModule
from matgnn.training.allocator import retain_freed_memory
from matgnn.training.run import model_config

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _process import environment


class StepTimer(L.Callback):
    """Time from one batch's start to the next one's: the step, every hook and logging call,
    and the loader's collation of the next batch."""

    def __init__(self) -> None:
        self.starts: list[float] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.starts.append(time.perf_counter())

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self.starts.append(time.perf_counter())

    @property
    def times(self) -> list[float]:
        return [b - a for a, b in zip(self.starts, self.starts[1:], strict=False)]


def configs(model: str):
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose(config_name="train", overrides=[f"model={model}", "paths.output_dir=."])


def graphs_with_targets(cfg, n: int, cache_dir: str) -> tuple[list, float]:
    """The first ``n`` training graphs, and the seconds per graph of reloading the task's graphs
    from a warm on-disk cache (what every run after the first does at start-up)."""
    lit = CrystalLitModule(model=model_config(cfg))

    def datamodule():
        data = instantiate(cfg.task.data)(graph=lit.model.graph_config(), outputs=lit.outputs)
        data.cache_dir = cache_dir
        return data

    datamodule().setup("fit")  # builds and writes the cache
    data = datamodule()
    start = time.perf_counter()
    data.setup("fit")
    graphs = [g for subset in data.subsets.values() for g in subset]
    load_per_graph = (time.perf_counter() - start) / len(graphs)
    return data.subsets["train"][:n], load_per_graph


def collate_seconds(graphs, steps: int) -> float:
    """Median seconds to collate one batch, as the trainer's DataLoader does."""
    loader = DataLoader(graphs * steps, batch_size=len(graphs), shuffle=False)
    times, start = [], time.perf_counter()
    for _ in loader:
        now = time.perf_counter()
        times.append(now - start)
        start = now
    return statistics.median(times)


def pure_step_seconds(lit: CrystalLitModule, batch, steps: int, warmup: int) -> float:
    optimizer = torch.optim.AdamW(lit.parameters(), lr=1e-3)
    lit.train()
    times = []
    for k in range(warmup + steps):
        start = time.perf_counter()
        loss = lit.weighted_loss(lit.model(batch), batch)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        if k >= warmup:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def trainer_step_seconds(cfg, graphs, steps: int, warmup: int) -> float:
    lit = CrystalLitModule(
        model=model_config(cfg),
        optimizer=OmegaConf.to_container(cfg.optimizer, resolve=True),
        scheduler=OmegaConf.to_container(cfg.scheduler, resolve=True),
    )
    lit.prepare({"train": graphs})  # what setup("fit") does from a matgnn data module
    loader = DataLoader(graphs * (steps + warmup), batch_size=len(graphs), shuffle=False)
    timer = StepTimer()
    trainer = L.Trainer(
        accelerator="cpu",
        devices=1,
        max_epochs=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[timer],
        log_every_n_steps=cfg.trainer.log_every_n_steps,
        limit_val_batches=0,
    )
    trainer.fit(lit, train_dataloaders=loader)
    return statistics.median(timer.times[warmup:])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--models", nargs="*", default=plain_structure_options("model"))
    parser.add_argument("--allocator", choices=["retain", "default"], default="default")
    parser.add_argument("--json", type=Path, help="also write every row here (raw output)")
    args = parser.parse_args()
    if args.allocator == "retain":  # retain_freed_memory=true; matgnn.train's default is glibc's
        retain_freed_memory()
    rows = []
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch}")
    print(
        f"{'model':<10} {'atoms':>6} {'pure s':>8} {'trainer s':>10} {'ratio':>6} "
        f"{'collate s':>10} {'collate/pure':>12} {'cache load s/batch':>18}"
    )
    cache_dir = tempfile.mkdtemp(prefix="matgnn-overhead-")
    for name in args.models:
        cfg = configs(name)
        graphs, load_per_graph = graphs_with_targets(cfg, args.batch, cache_dir)
        collate = collate_seconds(graphs, args.steps)
        torch.manual_seed(0)
        lit = CrystalLitModule(model=model_config(cfg))
        lit.fit_normalizer(graphs)
        batch = next(iter(DataLoader(graphs, batch_size=len(graphs))))
        pure = pure_step_seconds(lit, batch, args.steps, args.warmup)
        torch.manual_seed(0)
        trained = trainer_step_seconds(cfg, graphs, args.steps, args.warmup)
        atoms = sum(g.num_nodes for g in graphs)
        print(
            f"{name:<10} {atoms:>6} {pure:>8.3f} {trained:>10.3f} {trained / pure:>6.2f} "
            f"{collate:>10.4f} {collate / pure:>12.3f} {load_per_graph * args.batch:>18.4f}",
            flush=True,
        )
        rows.append({"model": name, "atoms": atoms, "pure_s": pure, "trainer_s": trained,
                     "collate_s": collate,
                     "cache_load_s_per_batch": load_per_graph * args.batch})  # fmt: skip
    shutil.rmtree(cache_dir, ignore_errors=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        raw = {**environment(), "script": "benchmarks/trainer_overhead.py", "batch": args.batch,
               "steps": args.steps, "warmup": args.warmup, "allocator": args.allocator,
               "rows": rows}  # fmt: skip
        args.json.write_text(json.dumps(raw, indent=1) + "\n")


if __name__ == "__main__":
    main()
