"""Every matgnn/configs/model/*.yaml composes, instantiates, and declares the graph it needs."""

from __future__ import annotations

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import OmegaConf

from matgnn.config_dir import CONFIG_DIR, graph_preset_of, group_options
from matgnn.graphs import GraphConfig
from matgnn.models import CrystalModel


@pytest.mark.parametrize("name", group_options("model"))
def test_model_config_composes_and_instantiates(name):
    """Every model option (found, never listed by hand) composes, builds, and has the graph of
    the preset its defaults name, with only the overrides its own file writes."""
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base=None):
        cfg = compose(overrides=[f"+model={name}"])
    model = instantiate(cfg.model)
    assert isinstance(model, CrystalModel) and isinstance(model, torch.nn.Module)
    graph = model.graph_config()
    assert isinstance(graph, GraphConfig)
    preset = graph_preset_of(name)
    assert preset is not None, f"model/{name}.yaml names no graph preset in its defaults"
    own = OmegaConf.load(CONFIG_DIR / "model" / f"{name}.yaml").get("graph") or {}
    overrides = {k: OmegaConf.to_container(cfg.model.graph, resolve=True)[k] for k in own}
    assert graph == GraphConfig.preset(preset, **overrides)


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
