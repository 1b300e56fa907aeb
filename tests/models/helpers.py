"""Shared helpers for the model tests: compose model configs, build batches; the cell
transforms are the public ones of :mod:`matgnn.testing`."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from pymatgen.core import Structure
from torch_geometric.data import Batch

from matgnn.config_dir import CONFIG_DIR, group_options
from matgnn.graphs import GraphConfig, build_graph
from matgnn.models import CrystalModel
from matgnn.testing import other_cell, permuted, random_rotation, rotated, translated

#: models of site-occupancy descriptors (they need structures with prototype site labels and
#: have their own tests, tests/models/test_site_descriptor_net.py)
DESCRIPTOR_MODELS = ("ye2018_net",)
#: every graph model config: a model added as matgnn/configs/model/<name>.yaml is tested as it is
MODEL_NAMES = tuple(n for n in group_options("model") if n not in DESCRIPTOR_MODELS)

# Optional narrowing of the default models for the optimisation and training smoke tests (a few
# seconds each); a model that is not listed runs at its default size.
SMALL = {
    "cgcnn": ["model.backbone.hidden_features=32"],
    "alignn": [
        "model.backbone.hidden_features=64",
        "model.backbone.alignn_layers=2",
        "model.backbone.gcn_layers=2",
    ],
    "matformer": ["model.backbone.hidden_features=64", "model.backbone.num_layers=2"],
    "potnet": ["model.backbone.hidden_features=64", "model.heads.y.hidden=[64]"],
    "e3nn": ["model.backbone.mul=8", "model.backbone.irreps_out=32x0e"],
    "chgnet": [],  # pretrained: its size is CHGNet 0.3.0's
    "sevennet": [],  # and SevenNet-0's
}


def compose_model_config(name: str, overrides: Sequence[str] = ()):
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base=None):
        return compose(overrides=[f"+model={name}", *overrides]).model


def make_model(name: str, overrides: Sequence[str] = (), seed: int = 0) -> CrystalModel:
    torch.manual_seed(seed)
    model = instantiate(compose_model_config(name, overrides))
    return model.eval()


def batch_of(structures: Sequence[Structure], graph: GraphConfig) -> Batch:
    return Batch.from_data_list([build_graph(s, graph) for s in structures])


__all__ = [
    "DESCRIPTOR_MODELS",
    "MODEL_NAMES",
    "SMALL",
    "batch_of",
    "compose_model_config",
    "make_model",
    "other_cell",
    "permuted",
    "random_rotation",
    "rotated",
    "translated",
]
