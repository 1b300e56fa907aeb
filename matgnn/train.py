"""Train and test a model on a task: ``python -m matgnn.train model=alignn task=mp2018_eform``.

Hydra composes ``configs/train.yaml``; the graph follows the model (``model.graph``). The run
directory (``paths.output_dir``) holds checkpoints (``best.ckpt``, ``last.ckpt``), logs, the
test predictions CSV and the parity plot. ``ckpt_path=last`` resumes an interrupted run.
"""

from __future__ import annotations

import logging
from pathlib import Path

import hydra
import lightning as L
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from matgnn.config_dir import CONFIG_DIR
from matgnn.training import CrystalLitModule

log = logging.getLogger(__name__)


def run(cfg: DictConfig) -> dict[str, float]:
    """Fit, then test the best checkpoint; returns the test metrics."""
    L.seed_everything(cfg.seed, workers=True)
    output_dir = Path(cfg.paths.output_dir)
    lit = CrystalLitModule(
        model=OmegaConf.to_container(cfg.model, resolve=True),
        task_type=cfg.task.task_type,
        loss=cfg.task.loss,
        optimizer=OmegaConf.to_container(cfg.optimizer, resolve=True),
        scheduler=OmegaConf.to_container(cfg.scheduler, resolve=True) if cfg.scheduler else None,
        element_reference=cfg.element_reference,
        target_name=cfg.task.target,
        output_dir=str(output_dir),
    )
    data = instantiate(cfg.task.data)(graph=lit.model.graph_config())
    data.setup("fit")
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
