"""Train and test a model on a task: ``python -m matgnn.train model=alignn task=mp2018_eform``.

Hydra composes ``configs/train.yaml``; the graph follows the model (``model.graph``). A task
that needs another output than the model's regression head (classification logits, a DOS
vector) names it in ``task.head``, which replaces ``model.heads.y``. The run directory
(``paths.output_dir``) holds checkpoints (``best.ckpt``, ``last.ckpt``), logs, ``split.json``
(the ids of each subset), the test predictions CSV and the parity (or DOS) plot.
``ckpt_path=last`` resumes an interrupted run.
"""

from __future__ import annotations

import logging
from pathlib import Path

import hydra
import lightning as L
import numpy as np
import torch
from hydra.utils import instantiate
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf, open_dict

from matgnn.config_dir import CONFIG_DIR
from matgnn.training import CrystalLitModule
from matgnn.training.allocator import retain_freed_memory

log = logging.getLogger(__name__)


def run(cfg: DictConfig) -> dict[str, float]:
    """Fit, then test the best checkpoint; returns the test metrics."""
    L.seed_everything(cfg.seed, workers=True)
    if cfg.get("retain_freed_memory", False):
        retain_freed_memory()
    output_dir = Path(cfg.paths.output_dir)
    apply_task_head(cfg)
    lit = CrystalLitModule(
        model=OmegaConf.to_container(cfg.model, resolve=True),
        task_type=cfg.task.task_type,
        loss=cfg.task.loss,
        optimizer=OmegaConf.to_container(cfg.optimizer, resolve=True),
        scheduler=(
            OmegaConf.to_container(cfg.scheduler, resolve=True) if cfg.get("scheduler") else None
        ),
        element_reference=cfg.element_reference,
        target_name=cfg.task.target,
        output_dir=str(output_dir),
        grid=spectrum_grid(cfg.task.get("grid")),
        monitor=cfg.task.monitor,
    )
    data = instantiate(cfg.task.data)(graph=lit.model.graph_config())
    data.setup("fit")
    output_dir.mkdir(parents=True, exist_ok=True)
    if rank_zero_only.rank == 0:  # DDP re-runs this script in every process
        data.save_split(output_dir / "split.json")
    lit.fit_normalizer(data.subsets["train"])
    loggers = [instantiate(c) for c in (cfg.get("logger") or {}).values()]
    callbacks = [instantiate(c) for c in (cfg.get("callbacks") or {}).values()]
    trainer = instantiate(cfg.trainer, logger=loggers or False, callbacks=callbacks)
    ckpt_path = cfg.ckpt_path
    if ckpt_path == "last":
        ckpt_path = str(output_dir / "checkpoints" / "last.ckpt")
    trainer.fit(lit, datamodule=data, ckpt_path=ckpt_path)
    best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
    results = trainer.test(lit, datamodule=data, ckpt_path=best or None)
    metrics = {k: float(v) for k, v in (results[0] if results else {}).items()}
    if cfg.task.task_type == "regression":
        metrics["test_mae_predict_train_mean"] = mean_baseline_mae(data)
    log.info("test metrics: %s; outputs in %s", metrics, output_dir)
    return metrics


def spectrum_grid(grid) -> list[float] | None:
    """``{start, stop, num}`` of a DOS task -> the bin centres."""
    return None if grid is None else np.linspace(grid.start, grid.stop, grid.num).tolist()


def apply_task_head(cfg: DictConfig) -> None:
    """Replace ``model.heads.y`` by ``task.head`` (resolved first, so the task's head may copy
    settings of the model's own head through interpolation)."""
    head = cfg.task.get("head")
    if head is None:
        return
    resolved = OmegaConf.to_container(head, resolve=True)
    with open_dict(cfg):
        cfg.model.heads.y = resolved
        cfg.task.head = None


def mean_baseline_mae(data) -> float:
    """Test MAE of predicting the training mean for every crystal (the floor to beat)."""
    train = torch.cat([g.y for g in data.subsets["train"]])
    test = torch.cat([g.y for g in data.subsets["test"]])
    return float((test - train.mean(dim=0)).abs().mean())


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="train")
def main(cfg: DictConfig) -> None:
    run(cfg)


if __name__ == "__main__":
    main()
