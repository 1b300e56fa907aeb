"""Frozen-backbone features computed once (matgnn.training.feature_cache): the heads see exactly
the backbone's features, stored ones are used only for the backbone that made them, and a run
with the cache gives the run without it."""

from __future__ import annotations

import logging

import pytest
import torch
from torch_geometric.data import Batch

from matgnn.data.samples import mp_sample_structures
from matgnn.graphs import build_graph
from matgnn.train import run
from matgnn.training.feature_cache import (
    FeatureCache,
    attach_backbone_features,
    backbone_fingerprint,
    graph_key,
    why_not_cached,
)
from matgnn.training.finetune import FineTuning, freeze
from tests.models.helpers import SMALL, make_model
from tests.training.test_train import train_config

BACKBONE = {"_target_": "test"}


@pytest.fixture(scope="module")
def structures():
    return mp_sample_structures(8)[1]


def graphs_of(model, structures):
    graphs = [build_graph(s, model.graph_config()) for s in structures]
    for index, graph in enumerate(graphs):
        graph.y = torch.tensor([[float(index)]])
        graph.sample_id = f"s{index}"
    return graphs


def frozen(name: str, overrides=(), seed: int = 0):
    model = make_model(name, [*SMALL[name], *overrides], seed=seed)
    freeze(model, "backbone")
    return model


@pytest.mark.parametrize("name", ["cgcnn", "e3nn"])
def test_stored_features_are_the_backbones_own(name, structures):
    model = frozen(name)
    graphs = graphs_of(model, structures)
    with torch.no_grad():
        expected = model(Batch.from_data_list(graphs))
        fingerprint = attach_backbone_features(
            model, {"train": graphs[:5], "val": graphs[5:]}, BACKBONE
        )
        batch = Batch.from_data_list(graphs)
        assert batch.backbone_fingerprint == [fingerprint] * len(graphs)
        assert ("backbone_irreps" in batch) == (model.backbone.feature_spec.irreps is not None)
        model.backbone.forward = _must_not_run  # the heads read the stored features
        got = model(batch)
    torch.testing.assert_close(got["y"], expected["y"], rtol=1e-5, atol=1e-6)


def _must_not_run(*_args, **_kwargs):
    raise AssertionError("the backbone ran although its features are stored")


def test_another_backbone_runs_itself_on_graphs_with_stored_features(structures):
    model, other = frozen("cgcnn", seed=0), frozen("cgcnn", seed=1)
    graphs = graphs_of(model, structures)
    attach_backbone_features(model, {"train": graphs}, BACKBONE)
    batch = Batch.from_data_list(graphs)
    with torch.no_grad():
        plain = other(Batch.from_data_list(graphs_of(other, structures)))["y"]
        torch.testing.assert_close(other(batch)["y"], plain)  # not model's features
        # the same model after its backbone was unfrozen: refused, not silently stale
        model.backbone.requires_grad_(True)
        with pytest.raises(RuntimeError, match="became trainable after they were computed"):
            model(batch)


def test_the_fingerprint_follows_weights_config_and_graph():
    model = frozen("cgcnn")
    backbone, graph = model.backbone, model.graph_fingerprint
    first = backbone_fingerprint(backbone, BACKBONE, graph)
    assert backbone_fingerprint(backbone, BACKBONE, graph) == first
    assert backbone_fingerprint(backbone, {"blocks": [0, 1]}, graph) != first
    assert backbone_fingerprint(backbone, BACKBONE, graph[::-1]) != first
    with torch.no_grad():
        next(backbone.parameters()).view(-1)[0] += 1e-6
    assert backbone_fingerprint(backbone, BACKBONE, graph) != first


def test_graph_keys_ignore_ids_and_targets_but_not_the_structure(structures):
    model = frozen("cgcnn")
    a, b = graphs_of(model, structures[:2])
    same = build_graph(structures[0], model.graph_config())
    same.sample_id, same.y = "another id", torch.tensor([[42.0]])
    assert graph_key(a, {"y"}) == graph_key(same, {"y"}) != graph_key(b, {"y"})
    assert graph_key(a) != graph_key(same)  # the target counts unless skipped


def test_features_are_read_back_from_disk_and_bad_parts_ignored(tmp_path, structures, caplog):
    model = frozen("cgcnn")
    graphs = graphs_of(model, structures)
    fingerprint = attach_backbone_features(model, {"train": graphs}, BACKBONE, tmp_path)
    (part,) = FeatureCache(tmp_path, fingerprint).folder.glob("part-*.pt")
    expected = [g.backbone_scalars.clone() for g in graphs]

    again = frozen("cgcnn")  # same weights, fresh graphs: nothing computed
    forward = again.backbone.forward
    again.backbone.forward = _must_not_run
    fresh = graphs_of(again, structures)
    assert attach_backbone_features(again, {"train": fresh}, BACKBONE, tmp_path) == fingerprint
    for graph, scalars in zip(fresh, expected, strict=True):
        torch.testing.assert_close(graph.backbone_scalars, scalars, rtol=0, atol=0)

    part.write_bytes(b"not a torch file")  # a damaged part: named, ignored, recomputed
    again.backbone.forward = forward
    fresh = graphs_of(again, structures)
    with caplog.at_level(logging.WARNING):
        attach_backbone_features(again, {"train": fresh}, BACKBONE, tmp_path)
    assert f"{part} ignored" in caplog.text
    torch.testing.assert_close(fresh[0].backbone_scalars, expected[0])


def test_why_features_cannot_be_cached(structures):
    model = make_model("cgcnn", SMALL["cgcnn"])
    graphs = {"train": graphs_of(model, structures)}
    assert "trainable" in why_not_cached(model.backbone, graphs)
    freeze(model, "backbone")
    assert why_not_cached(model.backbone, graphs) is None
    chgnet_like = make_model("e3nn", SMALL["e3nn"])
    freeze(chgnet_like, "backbone")
    chgnet_like.backbone.add_module("dropout", torch.nn.Dropout(0.1))
    assert "active dropout" in why_not_cached(chgnet_like.backbone, graphs)
    with pytest.raises(ValueError, match="cache_features='yes'; choose one of auto, true, false"):
        FineTuning(cache_features="yes")
    assert FineTuning.from_settings({"cache_features": True}).cache_features == "true"


def test_a_run_on_stored_features_equals_the_run_without(tmp_path):
    frozen_run = ("finetune.freeze=backbone", "trainer.max_epochs=2")
    plain = run(
        train_config(tmp_path / "plain", "cgcnn", *frozen_run, "finetune.cache_features=false")
    )
    cached_dir = tmp_path / "cached"
    cached = run(train_config(cached_dir, "cgcnn", *frozen_run, "finetune.cache_features=true"))
    assert cached.keys() == plain.keys()
    for key, value in plain.items():
        assert cached[key] == pytest.approx(value, rel=1e-5, abs=1e-7), key
    assert list((cached_dir / "cache" / "backbone_features").glob("*/part-*.pt"))
    with pytest.raises(ValueError, match=r"cache_features=true: .* backbone tensors are trainable"):
        run(train_config(tmp_path / "refused", "cgcnn", "finetune.cache_features=true"))
