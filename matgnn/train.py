"""Train and test a model on a task: ``python -m matgnn.train model=alignn task=mp2018_eform``
(or the console script ``matgnn-train``).

Hydra composes ``matgnn/configs/train.yaml`` (installed as ``pkg://matgnn.configs``, so it runs
from any directory); this module only starts the run that :mod:`matgnn.training.run` assembles
(model from graph, backbone and the task's outputs; data; LightningModule; trainer), with an
ensemble or an uncertainty estimator from :mod:`matgnn.uncertainty.training` when
``uncertainty=`` asks.
:func:`main` returns the best value of the monitored validation metric, for Hydra sweepers.

Every run has its own folder, ``outputs/<task>/<model>/<run_name>`` (``run_name`` defaults to
the start time; each job of a ``-m`` multirun gets ``multirun/<run_name>/<job>_<task>_<model>``)
holding the resolved config (``.hydra/``), ``checkpoints/best.ckpt`` and ``last.ckpt``, logs,
``split.json``, the test predictions CSV and plots. Resume an interrupted run with
``resume=<its folder>`` (same overrides as the first run), or ``run_name=<name>
ckpt_path=last``.

From Python (a notebook): ``run(compose_config("model=cgcnn", "task=mp_sample_eform",
output_dir="runs/demo"))`` does what the command line does.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import hydra
import torch
from hydra import compose, initialize_config_dir
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig

from matgnn.config_dir import CONFIG_DIR, CONFIG_PATH
from matgnn.training.allocator import configure_allocator
from matgnn.training.run import FittedRun, fit_and_test
from matgnn.uncertainty.training import (
    add_uncertainty,
    settings_check,
    train_ensemble,
    uncertainty_settings,
)

# every run writes its test metrics here (a JSON object, metric -> value)
TEST_METRICS = "test_metrics.json"
#: the key of :func:`run`'s metrics holding the best monitored validation value
MONITORED = "best_monitored"

log = logging.getLogger(__name__)


def compose_config(
    *overrides: str, output_dir: str | Path, config_dir: str | Path = CONFIG_DIR
) -> DictConfig:
    """The config of ``python -m matgnn.train <overrides>`` with its run folder ``output_dir``,
    for :func:`run` from Python (a notebook, a script); ``config_dir``: a config folder of your
    own (a copy of ``matgnn/configs`` with your models and tasks added)."""
    with initialize_config_dir(config_dir=str(config_dir), version_base="1.3"):
        return compose(
            config_name="train", overrides=[f"paths.output_dir={output_dir}", *overrides]
        )


def device_of(cfg: DictConfig) -> str:
    accelerator = str(cfg.trainer.get("accelerator", "cpu"))
    return "cuda" if accelerator in ("gpu", "cuda", "auto") and torch.cuda.is_available() else "cpu"


def run(cfg: DictConfig) -> dict[str, float]:
    """Fit, then test the best checkpoint; returns the test metrics (with the best monitored
    validation value as ``best_monitored``) and writes them to ``<run>/test_metrics.json``.
    With ``uncertainty=<estimator>``: also calibrate on the validation split, score the test
    split (:mod:`matgnn.uncertainty.report`) and store estimator and calibration in
    ``checkpoints/best.ckpt``."""
    configure_allocator(
        cfg.get("retain_freed_memory", False), cfg.get("retained_memory_limit_gib", None)
    )
    settings = uncertainty_settings(cfg)
    output_dir = Path(cfg.paths.output_dir)
    fitted: FittedRun
    if settings and settings["estimator"] == "ensemble":
        fitted = train_ensemble(cfg, int(settings.get("size", 5)))
    else:
        fitted = fit_and_test(cfg, check=settings_check(cfg))
    metrics = dict(fitted.metrics)
    if fitted.monitored is not None:
        metrics[MONITORED] = fitted.monitored
    if settings and rank_zero_only.rank == 0:  # DDP runs this in every process
        uncertain = add_uncertainty(
            settings, fitted.checkpoints, fitted.data, output_dir, device_of(cfg)
        )
        metrics.update(uncertain)
    if rank_zero_only.rank == 0:
        output_dir.mkdir(parents=True, exist_ok=True)
        (output_dir / TEST_METRICS).write_text(json.dumps(metrics, indent=1, sort_keys=True))
    log.info("test metrics: %s; outputs in %s", metrics, output_dir)
    return metrics


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="train")
def main(cfg: DictConfig) -> float | None:
    """The command line: run, and hand the best monitored value to a sweeper."""
    return run(cfg).get(MONITORED)


if __name__ == "__main__":
    main()
