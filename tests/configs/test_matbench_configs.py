"""matgnn/configs/matbench.yaml composes with every model and every Matbench task; every model has
the info.json fields of a submission."""

from __future__ import annotations

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from omegaconf import OmegaConf

from matgnn.config_dir import CONFIG_DIR, group_options
from matgnn.matbench.runner import info, matbench_task_name
from matgnn.training.run import model_config
from tests.models.helpers import MODEL_NAMES

MATBENCH_TASKS = [t for t in group_options("task") if t.startswith("matbench_")]


def compose_matbench(*overrides: str):
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(config_name="matbench", overrides=list(overrides), return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    return cfg


def test_every_graph_model_has_a_submission_config():
    # descriptor models read prototype site labels, which Matbench structures do not carry
    assert group_options("submission") == sorted(MODEL_NAMES)


@pytest.mark.parametrize("model", MODEL_NAMES)
def test_matbench_config_composes_with_every_model(tmp_path, model):
    cfg = compose_matbench(f"model={model}", f"submission_root={tmp_path}")
    assert cfg.submission_dir == f"{tmp_path}/matbench_v0.1_matgnn_{model}"
    fields = info(cfg)
    assert fields["algorithm"].startswith("matgnn ")
    assert "@" in fields["bibtex_refs"] and len(fields["algorithm_long"]) > 100
    assert model_config(cfg)["heads"]  # the trainer groups are the training ones
    OmegaConf.to_container(cfg, resolve=True)


@pytest.mark.parametrize("task", MATBENCH_TASKS)
def test_every_matbench_task_config_names_a_structure_task(task):
    cfg = compose_matbench(f"task={task}")
    assert matbench_task_name(cfg.task.matbench_task) == task
    assert cfg.task.data.source._target_ == "matgnn.data.sources.matbench.matbench"
    assert cfg.task.data.split.kind == "source" and 0 < cfg.task.data.split.val < 1
