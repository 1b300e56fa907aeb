"""A model refuses a graph config that lacks what its backbone consumes, and any batch built
with another graph config than its own; outputs and heads match one to one."""

from __future__ import annotations

import dataclasses
from functools import partial

import pytest
from hydra.utils import instantiate

from matgnn.config_dir import group_options
from matgnn.graphs import GraphConfig
from matgnn.heads import RegressionHead
from matgnn.models import ALIGNN, CGCNN, CrystalModel, EquivariantNetwork, Matformer, PotNet
from matgnn.outputs import ScalarOutput
from tests.models.helpers import MODEL_NAMES, SMALL, batch_of, compose_model_config


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


@pytest.mark.parametrize("model_name", MODEL_NAMES)
def test_batch_from_any_other_graph_config_is_rejected(model_name, small_structures):
    """Every other preset (a k-NN batch into e3nn, an ALIGNN graph into CGCNN, ...) and the
    model's own graph with another cutoff are refused in words; its own graph is accepted."""
    model = instantiate(compose_model_config(model_name, SMALL.get(model_name, [])))
    own = model.graph_config()
    model(batch_of(small_structures[:1], own))
    others = [GraphConfig.preset(g) for g in group_options("graph")]
    others = [g for g in others if not g.site_descriptors]  # those need labelled prototypes
    others.append(dataclasses.replace(own, cutoff=own.cutoff + 0.5, max_cutoff=own.max_cutoff + 1))
    for other in others:
        if other == own:
            continue
        batch = batch_of(small_structures[:1], other)
        with pytest.raises(ValueError, match="built with graph config") as error:
            model(batch)
        changed = next(iter(own.differences(other)))
        assert changed in str(error.value)


def test_graph_without_fingerprint_is_rejected(small_structures):
    model = CrystalModel(GraphConfig.preset("cgcnn"), CGCNN(), {"y": RegressionHead})
    graph = batch_of(small_structures[:1], model.graph_config())
    del graph.graph_fingerprint
    with pytest.raises(ValueError, match="no graph_fingerprint"):
        model(graph)


def test_outputs_and_heads_must_match():
    with pytest.raises(ValueError, match="must match"):
        CrystalModel(
            GraphConfig.preset("cgcnn"),
            CGCNN(),
            {"energy": RegressionHead},
            outputs=[ScalarOutput("gap")],
        )
    model = CrystalModel(GraphConfig.preset("cgcnn"), CGCNN(), {"energy": RegressionHead})
    assert [o.name for o in model.outputs] == ["energy"]


def test_primitive_cell_graph_refuses_extensive_and_per_atom_outputs():
    graph = GraphConfig.preset("cgcnn", cell="primitive")
    with pytest.raises(ValueError, match="primitive cell"):
        CrystalModel(graph, CGCNN(), {"energy": partial(RegressionHead, readout="sum")})


def test_cgcnn_table_rejects_unknown_elements(small_structures):
    model = CrystalModel(GraphConfig.preset("cgcnn"), CGCNN(), {"y": RegressionHead})
    batch = batch_of(small_structures[:1], model.graph_config())
    batch.atomic_numbers[0] = 105
    with pytest.raises(ValueError, match=r"Z = 1\.\.100"):
        model(batch)
