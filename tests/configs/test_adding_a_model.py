"""Adding a model is one layer file, one model file and one yaml, and nothing else.

A toy model is added outside the package: a layer file and a model file on ``sys.path``, and a
yaml in a temporary copy of the config folder. Without any other edit it is listed (config
group, docs model table), composed, trained one step by ``matgnn.train``, saved and loaded
back through the registry, invariance-checked, and composes for Matbench (no submission config
needed)."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir

from matgnn.checkpoints.files import load_model
from matgnn.config_dir import CONFIG_DIR, group_options
from matgnn.data.samples import mp_sample_structures
from matgnn.testing import assert_invariant
from matgnn.train import compose_config, run

LAYER = '''
"""ToyConv (a test's toy, no paper): h_i' = h_i + SiLU(W mean_j (h_j * F(e_ij))).

Args:
    features: atom feature width.
    num_basis: width of the edge expansion.

Shapes:
    x ``[N, features]``, edge_index ``[2, E]``, edge_attr ``[E, num_basis]`` -> ``[N, features]``.
"""

import torch
from torch import nn
from torch_geometric.utils import scatter


class ToyConv(nn.Module):
    def __init__(self, features: int, num_basis: int) -> None:
        super().__init__()
        self.filter = nn.Linear(num_basis, features)
        self.update = nn.Linear(features, features)

    def forward(self, x, edge_index, edge_attr):
        source, target = edge_index
        messages = x[source] * self.filter(edge_attr)
        pooled = scatter(messages, target, 0, dim_size=x.size(0), reduce="mean")
        return x + torch.nn.functional.silu(self.update(pooled))
'''

MODEL = '''
"""ToyGNN: element embedding, Gaussian distances, ToyConv layers."""

from torch import nn

from matgnn.checkpoints.registry import register
from matgnn.models.interfaces import Backbone, FeatureSpec, GraphRequirements
from matgnn.nn.radial import GaussianBasis
from toy_layer import ToyConv


@register("toy_gnn")
class ToyGNN(Backbone):
    def __init__(self, hidden_features: int = 16, num_layers: int = 2) -> None:
        super().__init__()
        self.requirements = GraphRequirements()
        self.feature_spec = FeatureSpec(scalar_features=hidden_features)
        self.embedding = nn.Embedding(119, hidden_features)
        self.basis = GaussianBasis(0.0, 8.0, 16, width=0.5)
        self.layers = nn.ModuleList(ToyConv(hidden_features, 16) for _ in range(num_layers))

    def message_passing_layers(self):
        return list(self.layers)

    def forward(self, batch):
        edge_attr = self.basis(self.edge_vectors(batch).norm(dim=-1))
        x = self.embedding(batch.atomic_numbers)
        for layer in self.layers:
            x = layer(x, batch.edge_index, edge_attr)
        return self.node_features(batch, x)
'''

YAML = """\
# Toy GNN (a test's model): 2 mean-aggregation layers of 16 features on the CGCNN graph.
defaults:
  - /graph@graph: cgcnn
  - _self_
_target_: matgnn.models.CrystalModel
backbone:
  _target_: toy_model.ToyGNN
  hidden_features: 16
heads:
  y:
    _target_: matgnn.heads.RegressionHead
    _partial_: true
    num_targets: 1
    hidden: [16]
"""


@pytest.fixture
def toy(tmp_path, monkeypatch) -> Path:
    """The three files of a new model; returns the config folder that holds its yaml."""
    code = tmp_path / "code"
    code.mkdir()
    (code / "toy_layer.py").write_text(textwrap.dedent(LAYER))
    (code / "toy_model.py").write_text(textwrap.dedent(MODEL))
    monkeypatch.syspath_prepend(str(code))
    configs = tmp_path / "configs"
    shutil.copytree(CONFIG_DIR, configs, ignore=shutil.ignore_patterns("__pycache__"))
    (configs / "model" / "toy_gnn.yaml").write_text(YAML)
    return configs


def test_a_model_added_as_three_files_is_listed_trained_saved_and_invariant(toy, tmp_path):
    from benchmarks.catalog import model_table

    assert "toy_gnn" in group_options("model", toy)
    assert "toy_gnn" not in group_options("model")  # nothing was added to the package
    assert "| `toy_gnn` | `cgcnn` | Toy GNN (a test's model)" in model_table(toy)

    run_dir = tmp_path / "run"
    cfg = compose_config(
        "model=toy_gnn",
        "task=mp_sample_eform",
        "task.data.source.limit=40",
        "trainer.max_epochs=1",
        "+trainer.limit_train_batches=1",
        "logger=csv",
        output_dir=run_dir,
        config_dir=toy,
    )
    metrics = run(cfg)
    assert np.isfinite(metrics["test_formation_energy_per_atom_mae"])

    model = load_model(run_dir / "checkpoints" / "best.ckpt")
    assert type(model.backbone).registry_name == "toy_gnn"
    ids, structures = mp_sample_structures(3)
    assert np.isfinite(model.predict(structures, ids)["formation_energy_per_atom"]).all()
    assert_invariant(model, structures[0])

    with initialize_config_dir(config_dir=str(toy), version_base="1.3"):
        matbench = compose(
            config_name="matbench", overrides=["model=toy_gnn", "task=matbench_phonons"]
        )
    assert matbench.model.backbone._target_ == "toy_model.ToyGNN"
