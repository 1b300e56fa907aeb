"""A model refuses a graph config, or a batch, that lacks what its backbone consumes."""

from __future__ import annotations

import pytest
from hydra.utils import instantiate

from matgnn.graphs import GraphConfig
from matgnn.heads import RegressionHead
from matgnn.models import ALIGNN, CGCNN, CrystalModel, EquivariantNetwork, Matformer, PotNet
from tests.models.helpers import batch_of, compose_model_config


@pytest.mark.parametrize(
    ("backbone", "graph", "message"),
    [
        (lambda: ALIGNN(hidden_features=16), "cgcnn", "line graph"),
        (lambda: Matformer(hidden_features=16), "alignn", "lattice self-edges"),
        (lambda: PotNet(hidden_features=16), "alignn", "potential sums"),
        (lambda: EquivariantNetwork(mul=4), "cgcnn", "radius graph"),
    ],
)
def test_mismatched_graph_config_fails_early(backbone, graph, message):
    with pytest.raises(ValueError, match=message):
        CrystalModel(GraphConfig.preset(graph), backbone(), {"y": RegressionHead})


def test_batch_from_another_graph_config_is_rejected(small_structures):
    model = instantiate(compose_model_config("alignn", ["model.backbone.hidden_features=16"]))
    wrong = batch_of(small_structures[:2], GraphConfig.preset("cgcnn"))
    with pytest.raises(ValueError, match="graph_config"):
        model(wrong)


def test_heads_must_include_y():
    with pytest.raises(ValueError, match="'y'"):
        CrystalModel(GraphConfig.preset("cgcnn"), CGCNN(), {"energy": RegressionHead})


def test_cgcnn_table_rejects_unknown_elements(small_structures):
    model = CrystalModel(GraphConfig.preset("cgcnn"), CGCNN(), {"y": RegressionHead})
    batch = batch_of(small_structures[:1], model.graph_config())
    batch.atomic_numbers[0] = 105
    with pytest.raises(ValueError, match=r"Z = 1\.\.100"):
        model(batch)
