"""Train and test a model on a task: ``python -m matgnn.train model=alignn task=mp2018_eform``
(or the console script ``matgnn-train``).

Hydra composes ``configs/train.yaml`` (installed as ``pkg://matgnn.configs``, so it runs from any
directory). The task declares its outputs (``task.outputs``); the model gets one head per
output (the output's default head, built from the model's own ``heads.y``, or
``task.heads.<name>``). The graph config is resolved to data before anything is built, so
the checkpoint carries it and never refers back to a preset file.

Every run has its own folder, ``outputs/<task>/<model>/<run_name>`` (``run_name`` defaults to
the start time; each job of a ``-m`` multirun gets ``multirun/<run_name>/<job>_<task>_<model>``)
holding the resolved config (``.hydra/``), ``checkpoints/best.ckpt`` and ``last.ckpt``, logs,
``split.json``, the test predictions CSV and plots. Resume an interrupted run with
``resume=<its folder>`` (same overrides as the first run), or ``run_name=<name>
ckpt_path=last``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import hydra
import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf

from matgnn import __version__
from matgnn.checkpoint import read_checkpoint
from matgnn.config_dir import CONFIG_PATH
from matgnn.data.splits import split_sha256
from matgnn.models.base import DEFAULT_HEAD
from matgnn.outputs import Output
from matgnn.training import CrystalLitModule
from matgnn.training.allocator import retain_freed_memory

log = logging.getLogger(__name__)


def task_outputs(cfg: DictConfig) -> list[Output]:
    """The task's declared outputs (``task.outputs``: ``{key: output config}``)."""
    outputs = [instantiate(c) for c in (cfg.task.get("outputs") or {}).values() if c is not None]
    if not outputs:
        raise ValueError(f"task {cfg.task.get('name')!r} declares no outputs (task.outputs)")
    return outputs


def model_config(cfg: DictConfig) -> dict[str, Any]:
    """The resolved model config a checkpoint stores: the graph as data (every field), one
    head per task output, and the outputs themselves."""
    model = OmegaConf.to_container(cfg.model, resolve=True)
    graph = instantiate(model["graph"])
    model["graph"] = graph.to_config()
    outputs = task_outputs(cfg)
    template = model.get("heads", {}).get(DEFAULT_HEAD)
    if template is None:
        raise ValueError(f"model config has no template head heads.{DEFAULT_HEAD}")
    heads = cfg.task.get("heads")
    chosen = OmegaConf.to_container(heads, resolve=True) if heads else {}
    unknown = sorted(set(chosen) - {o.name for o in outputs})
    if unknown:
        raise ValueError(f"task.heads names {unknown}, which are not outputs of the task")
    model["heads"] = {o.name: chosen.get(o.name) or o.head_config(template) for o in outputs}
    model["outputs"] = [o.to_config() for o in outputs]
    return model


def provenance(
    cfg: DictConfig, outputs: Sequence[Output], split: Mapping[str, list[str]]
) -> dict[str, Any]:
    """What a checkpoint records about how it was made."""
    source = OmegaConf.to_container(cfg.task.data.source, resolve=True)
    return {
        "matgnn_version": __version__,
        "task": cfg.task.get("name"),
        "model": HydraConfig.get().runtime.choices.get("model")
        if HydraConfig.initialized()
        else None,
        "targets": {o.name: o.target for o in outputs},
        "data_source": {k: v for k, v in source.items() if k != "_partial_"},
        "split_sha256": split_sha256(split),
        "split_sizes": {k: len(v) for k, v in split.items()},
        "seed": int(cfg.seed),
    }


def checkpoint_to_resume(cfg: DictConfig, output_dir: Path, model: dict) -> str | None:
    """``ckpt_path``, with ``last`` (and ``resume=<run dir>``) meaning the run's last.ckpt; a
    checkpoint whose model config differs from this run's is refused in words."""
    ckpt_path = cfg.get("ckpt_path")
    if cfg.get("resume") and ckpt_path is None:
        ckpt_path = "last"
    if ckpt_path == "last":
        ckpt_path = str(output_dir / "checkpoints" / "last.ckpt")
        if not Path(ckpt_path).is_file():
            raise FileNotFoundError(f"resume: no {ckpt_path} (has this run saved a checkpoint?)")
    if ckpt_path is None:
        return None
    saved = read_checkpoint(ckpt_path)["hyper_parameters"]
    if saved["model"] != model:
        keys = sorted(
            k for k in set(saved["model"]) | set(model) if saved["model"].get(k) != model.get(k)
        )
        raise ValueError(
            f"resume: {ckpt_path} was trained with another model config (differs in {keys}); "
            "resume with the overrides of the original run"
        )
    return ckpt_path


def run(cfg: DictConfig) -> dict[str, float]:
    """Fit, then test the best checkpoint; returns the test metrics."""
    L.seed_everything(cfg.seed, workers=True)
    if cfg.get("retain_freed_memory", False):
        retain_freed_memory()
    output_dir = Path(cfg.paths.output_dir)
    model = model_config(cfg)
    ckpt_path = checkpoint_to_resume(cfg, output_dir, model)
    # the model first: a head that the backbone cannot feed fails before any graph is built
    lit = CrystalLitModule(
        model=model,
        optimizer=OmegaConf.to_container(cfg.optimizer, resolve=True),
        scheduler=(
            OmegaConf.to_container(cfg.scheduler, resolve=True) if cfg.get("scheduler") else None
        ),
        output_dir=str(output_dir),
        monitor=cfg.task.monitor,
    )
    data = instantiate(cfg.task.data)(graph=lit.model.graph_config(), outputs=lit.outputs)
    data.setup("fit")
    output_dir.mkdir(parents=True, exist_ok=True)
    if rank_zero_only.rank == 0:  # DDP re-runs this script in every process
        data.save_split(output_dir / "split.json")
    lit.provenance = provenance(cfg, lit.outputs, data.split_ids())
    lit.fit_normalizer(data.subsets["train"])
    loggers = [instantiate(c) for c in (cfg.get("logger") or {}).values()]
    callbacks = [instantiate(c) for c in (cfg.get("callbacks") or {}).values()]
    trainer = instantiate(cfg.trainer, logger=loggers or False, callbacks=callbacks)
    trainer.fit(lit, datamodule=data, ckpt_path=ckpt_path)
    best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
    results = trainer.test(lit, datamodule=data, ckpt_path=best or None)
    metrics = {k: float(v) for k, v in (results[0] if results else {}).items()}
    for output in lit.outputs:
        train = torch.cat([g[output.key] for g in data.subsets["train"]]).double()
        test = torch.cat([g[output.key] for g in data.subsets["test"]]).double()
        for name, value in output.baselines(train, test).items():
            metrics[f"test_{output.name}_{name}"] = value
    log.info("test metrics: %s; outputs in %s", metrics, output_dir)
    return metrics


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="train")
def main(cfg: DictConfig) -> None:
    run(cfg)


if __name__ == "__main__":
    main()
