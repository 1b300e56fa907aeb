"""Every configs/model/*.yaml composes, instantiates, and declares the graph it needs."""

from __future__ import annotations

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import OmegaConf

from matgnn.config_dir import CONFIG_DIR, group_options
from matgnn.graphs import GraphConfig
from matgnn.models import CrystalModel

PAPER_GRAPH = {"cgcnn": "cgcnn", "alignn": "alignn", "matformer": "matformer", "potnet": "potnet"}


def test_every_model_option_is_tested():
    assert set(group_options("model")) == {
        "cgcnn", "alignn", "matformer", "potnet", "e3nn", "ye2018_net"
    }  # fmt: skip


@pytest.mark.parametrize("name", group_options("model"))
def test_model_config_composes_and_instantiates(name):
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base=None):
        cfg = compose(overrides=[f"+model={name}"])
    model = instantiate(cfg.model)
    assert isinstance(model, CrystalModel)
    graph = model.graph_config()
    assert isinstance(graph, GraphConfig)
    if name in PAPER_GRAPH:
        assert graph == GraphConfig.preset(PAPER_GRAPH[name])
    elif name == "ye2018_net":
        assert graph == GraphConfig.preset("ye2018_perovskite")
    else:
        assert graph == GraphConfig.preset("e3nn", cutoff=model.backbone.r_max)


@pytest.mark.parametrize("name", group_options("model"))
def test_model_config_instantiates_from_the_file_alone(name):
    model = instantiate(OmegaConf.load(CONFIG_DIR / "model" / f"{name}.yaml"))
    assert isinstance(model, CrystalModel)
    assert isinstance(model, torch.nn.Module)


def test_e3nn_graph_radius_follows_r_max():
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base=None):
        cfg = compose(overrides=["+model=e3nn", "model.backbone.r_max=4.0"])
    model = instantiate(cfg.model)
    assert model.graph_config().cutoff == 4.0
    assert model.graph_config().mode == "radius"


def test_graph_fields_can_be_overridden_from_the_model():
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base=None):
        cfg = compose(overrides=["+model=cgcnn", "++model.graph.max_neighbors=8"])
    assert instantiate(cfg.model).graph_config().max_neighbors == 8
