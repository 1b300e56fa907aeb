"""Every option of the training config groups composes; the ones that can run here instantiate."""

from __future__ import annotations

import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from matgnn.config_dir import CONFIG_DIR, group_options
from matgnn.data import CrystalDataModule
from matgnn.graphs import GraphConfig

GROUPS = ("task", "trainer", "logger", "callbacks", "paths", "optimizer", "scheduler", "experiment")


def compose_train(*overrides: str):
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose(config_name="train", overrides=["paths.output_dir=out", *overrides])


@pytest.mark.parametrize(("group", "option"), [(g, o) for g in GROUPS for o in group_options(g)])
def test_option_composes(group, option):
    cfg = compose_train(f"{group}={option}")
    # experiments are `@package _global_`: they set other groups' keys, not their own
    assert cfg.model is not None if group == "experiment" else cfg[group] is not None


@pytest.mark.parametrize("task", group_options("task"))
def test_task_builds_a_datamodule(task):
    cfg = compose_train(f"task={task}")
    data = instantiate(cfg.task.data)(graph=GraphConfig.preset("cgcnn"))
    assert isinstance(data, CrystalDataModule)
    assert cfg.task.task_type in ("regression", "classification", "dos")


def test_cpu_trainer_callbacks_and_csv_logger_instantiate(tmp_path):
    cfg = compose_train(f"paths.output_dir={tmp_path}")
    callbacks = [instantiate(c) for c in cfg.callbacks.values()]
    loggers = [instantiate(c) for c in cfg.logger.values()]
    trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers)
    assert trainer.max_epochs == cfg.trainer.max_epochs
