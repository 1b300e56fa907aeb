"""Frozen-backbone features computed once (matgnn.training.feature_cache): the heads see exactly
the backbone's features, stored ones are used only for the backbone that made them, and a run
with the cache gives the run without it."""

from __future__ import annotations

import logging

import pytest
import torch
from omegaconf import OmegaConf
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


def test_another_backbones_fields_do_not_stay_on_the_graphs(structures):
    """Graphs reused in one process: features of an equivariant backbone attached first, then a
    scalar one's; the irreps of the first do not stay under the second's fingerprint."""
    cgcnn, e3nn = frozen("cgcnn"), frozen("e3nn")
    graphs = graphs_of(cgcnn, structures)
    for graph, other in zip(graphs, graphs_of(e3nn, structures), strict=True):
        graph.backbone_irreps = torch.zeros(other.num_nodes, 3)
    attach_backbone_features(cgcnn, {"train": graphs}, BACKBONE)
    assert not any("backbone_irreps" in g for g in graphs)


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
    same.name = "mp-another"  # the graph cache names each graph by its id
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
    # e3nn's own Dropout (not a torch dropout class) samples the features too
    e3nn = make_model("e3nn", [*SMALL["e3nn"], "+model.backbone.dropout=0.2"])
    freeze(e3nn, "backbone")
    assert "active dropout" in why_not_cached(e3nn.backbone, graphs)
    torch_dropout = make_model("e3nn", SMALL["e3nn"])
    freeze(torch_dropout, "backbone")
    assert why_not_cached(torch_dropout.backbone, graphs) is None
    torch_dropout.backbone.add_module("dropout", torch.nn.Dropout(0.1))
    assert "active dropout" in why_not_cached(torch_dropout.backbone, graphs)
    with pytest.raises(ValueError, match="cache_features='yes'; choose one of auto, true, false"):
        FineTuning(cache_features="yes")
    assert FineTuning.from_settings({"cache_features": True}).cache_features == "true"


def test_a_run_on_stored_features_equals_the_run_without(tmp_path, monkeypatch):
    """The same frozen run with and without the cache: the same metrics, and with the cache the
    backbone runs only to compute the features (never in training, validation or test)."""
    from matgnn.models.cgcnn import CGCNN
    from matgnn.training import feature_cache

    frozen_run = ("finetune.freeze=backbone", "trainer.max_epochs=2")
    plain = run(
        train_config(tmp_path / "plain", "cgcnn", *frozen_run, "finetune.cache_features=false")
    )
    calls = {"computing": 0, "other": 0}
    computing = [False]
    forward, compute = CGCNN.forward, feature_cache.compute_features

    def counted_forward(self, batch):
        calls["computing" if computing[0] else "other"] += 1
        return forward(self, batch)

    def flagged_compute(*args, **kwargs):
        computing[0] = True
        try:
            return compute(*args, **kwargs)
        finally:
            computing[0] = False

    monkeypatch.setattr(CGCNN, "forward", counted_forward)
    monkeypatch.setattr(feature_cache, "compute_features", flagged_compute)
    cached_dir = tmp_path / "cached"
    cached = run(train_config(cached_dir, "cgcnn", *frozen_run, "finetune.cache_features=true"))
    assert calls["computing"] > 0 and calls["other"] == 0, calls
    assert cached.keys() == plain.keys()
    for key, value in plain.items():
        assert cached[key] == pytest.approx(value, rel=1e-5, abs=1e-7), key
    assert list((cached_dir / "cache" / "backbone_features").glob("*/part-*.pt"))
    with pytest.raises(ValueError, match=r"cache_features=true: .* backbone tensors are trainable"):
        run(train_config(tmp_path / "refused", "cgcnn", "finetune.cache_features=true"))


def test_features_are_computed_again_when_a_checkpoint_changed_the_backbone(structures):
    """A resumed run: the features were computed from the backbone before the trainer loaded
    the checkpoint's weights; when fitting starts they are computed again from the loaded ones."""
    from matgnn.models import assembly
    from matgnn.outputs import ScalarOutput
    from matgnn.training.lit_module import CrystalLitModule
    from tests.models.helpers import compose_model_config

    config = assembly.assemble(
        assembly.from_hydra(
            OmegaConf.to_container(compose_model_config("cgcnn", SMALL["cgcnn"]), resolve=True)
        ),
        [ScalarOutput("y", target="y")],
        {},
    )
    module = CrystalLitModule(model=config, finetuning=FineTuning(freeze="backbone"))
    graphs = graphs_of(module.model, structures)
    for graph in graphs:
        graph[module.outputs[0].key] = graph.y.reshape(-1)
    module.prepare({"train": graphs[:6], "val": graphs[6:7], "test": graphs[7:]})
    before = module.model.cached_features_fingerprint
    assert before is not None and all(g.backbone_fingerprint == before for g in graphs)
    with torch.no_grad():  # what loading a checkpoint does to the weights
        for parameter in module.model.backbone.parameters():
            parameter.add_(0.01)
    module.on_fit_start()
    after = module.model.cached_features_fingerprint
    assert after != before and all(g.backbone_fingerprint == after for g in graphs)
    module.model.eval()
    with torch.no_grad():
        stored = module.model(Batch.from_data_list(graphs))["y"]
        for g in graphs:
            del g.backbone_fingerprint
        fresh = module.model(Batch.from_data_list(graphs))["y"]
    torch.testing.assert_close(stored, fresh, rtol=1e-5, atol=1e-6)
