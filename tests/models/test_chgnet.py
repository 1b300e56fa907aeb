"""The CHGNet backbone (``model=chgnet``): the installed chgnet package's pretrained network
behind matgnn's Backbone interface. Its block features are chgnet's own, bad input is refused
by name, and a fine-tuned model round-trips through a matgnn checkpoint. (The generic model
tests run it too: invariance, batching, gradients, training, bf16, fine-tuning freezes.)"""

from __future__ import annotations

import contextlib
import io

import pytest
import torch
from chgnet.model import CHGNet
from pymatgen.core import Lattice, Structure
from torch_geometric.data import Batch

from matgnn.checkpoints.files import load_model, stamp
from matgnn.data.samples import mp_sample_structures
from matgnn.graphs import GraphConfig, build_graph
from matgnn.models import CHGNetBackbone, CrystalModel
from matgnn.training.run import model_config, task_outputs
from tests.configs.test_train_configs import compose_train
from tests.models.helpers import batch_of, make_model


@pytest.fixture(scope="module")
def reference() -> CHGNet:
    with contextlib.redirect_stdout(io.StringIO()):
        return CHGNet.load(model_name="0.3.0", verbose=False).eval()


def test_block_features_are_chgnets_own(reference):
    """Every block's atom features equal those of chgnet's own forward pass on its own graphs
    (CrystalGraphConverter), on 40 shipped MP crystals in one batch."""
    _, structures = mp_sample_structures(40)
    model = make_model("chgnet")
    captured: dict[int, torch.Tensor] = {}
    hooks = [
        layer.register_forward_hook(lambda _m, _a, out, k=k: captured.__setitem__(k, out))
        for k, layer in enumerate(reference.atom_conv_layers)
    ]
    with torch.no_grad():
        reference([reference.graph_converter(s) for s in structures], task="e")
        ours = model.backbone(batch_of(structures, model.graph_config())).scalars
    for hook in hooks:
        hook.remove()
    expected = torch.cat([captured[k] for k in range(4)], dim=1)
    assert ours.shape == expected.shape == (sum(len(s) for s in structures), 256)
    torch.testing.assert_close(ours, expected, rtol=1e-5, atol=1e-5)


def test_chosen_blocks_and_their_width():
    backbone = CHGNetBackbone(blocks=[1, 3])
    assert backbone.feature_spec.scalar_features == 128
    with pytest.raises(ValueError, match="from 0 to 3"):
        CHGNetBackbone(blocks=[4])
    with pytest.raises(ValueError, match="distinct"):
        CHGNetBackbone(blocks=[1, 1])
    # the last angle update feeds nothing in CHGNet: it is not kept
    layers = backbone.message_passing_layers()
    assert [len(layer) for layer in layers] == [3, 3, 2, 1]
    # blocks after the last one read are not kept, so every parameter gets a gradient (DDP
    # refuses parameters without one)
    early = CHGNetBackbone(blocks=[0, 1])
    assert [len(layer) for layer in early.message_passing_layers()] == [2, 1]
    _, structures = mp_sample_structures(4)
    batch = batch_of(structures, GraphConfig.preset("chgnet"))
    early(batch).scalars.square().sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in early.parameters())


def test_an_element_beyond_pu_and_an_isolated_atom_are_refused_by_name():
    graph = GraphConfig.preset("chgnet")
    americium = Structure(Lattice.cubic(3.5), ["Am", "O"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    with pytest.raises(ValueError, match=r"AmO: CHGNet knows the elements H to Pu.*Am \(Z=95\)"):
        build_graph(americium, graph)
    polonium = Structure(Lattice.cubic(3.4), ["Po", "O"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    with pytest.raises(ValueError, match=r"PoO: CHGNet 0.3.0's training set \(MPtrj\) holds no Po"):
        build_graph(polonium, graph)
    # nearest neighbours 6.9 Å apart: within the graph's own 8 Å, beyond CHGNet's 6 Å
    lonely = Structure(Lattice.cubic(8.0), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    wider = GraphConfig(mode="radius", cutoff=8.0, foundation_graph="chgnet")
    with pytest.raises(ValueError, match=r"lonely: an atom has no neighbour within 6 Å"):
        build_graph(lonely, wider, name="lonely")
    # with CHGNet's own cutoff the graph builder refuses it first, as for every model
    with pytest.raises(ValueError, match=r"lonely: atom 0 \(Z=11\) has no neighbour within 6 Å"):
        build_graph(lonely, graph, name="lonely")


def test_a_graph_without_chgnets_is_refused_in_words():
    with pytest.raises(ValueError, match="the chgnet graph"):
        CrystalModel(GraphConfig.preset("cgcnn"), CHGNetBackbone(), {})


def test_a_fine_tuned_model_round_trips_through_a_checkpoint(tmp_path):
    """Two training steps move the weights off the pretrained ones; the checkpoint holds the
    fine-tuned weights (what load_model gives back, not the wheel's) and loads by name."""
    from matgnn.checkpoints.safe_config import build

    cfg = compose_train("model=chgnet")
    config = model_config(cfg, task_outputs(cfg))
    model = build(config, "model", root="crystal_model").train()
    (output,) = (o.name for o in model.outputs)
    _, structures = mp_sample_structures(8)
    batch = batch_of(structures, model.graph_config())
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(2):
        optimizer.zero_grad()
        model(batch)[output].pow(2).mean().backward()
        optimizer.step()
    model.eval()
    path = tmp_path / "model.ckpt"
    state = {f"model.{k}": v for k, v in model.state_dict().items()}
    torch.save(stamp({"hyper_parameters": {"model": config}, "state_dict": state}), path)
    loaded = load_model(path)
    assert config["backbone"]["@class"] == "chgnet"
    assert config["backbone"]["chgnet_version"] == "0.4.2"  # the release, kept with the weights
    with torch.no_grad():
        torch.testing.assert_close(loaded(batch)[output], model(batch)[output])
        tuned = loaded.backbone(batch).scalars
        pretrained = CHGNetBackbone().eval()(batch).scalars
    assert (tuned - pretrained).abs().max() > 1e-3  # the fine-tuned weights, not the wheel's


def test_frozen_features_are_computed_once_and_equal_the_backbones(tmp_path):
    """finetune.freeze=backbone: the stored block features (matgnn.training.feature_cache) give
    the model's own predictions; choosing other blocks (the same weights: blocks after the last
    one read are dropped either way) gives another fingerprint."""
    from matgnn.training.feature_cache import attach_backbone_features, backbone_fingerprint
    from matgnn.training.finetune import freeze

    _, structures = mp_sample_structures(6)
    model = make_model("chgnet")
    freeze(model, "backbone")
    graphs = [build_graph(s, model.graph_config()) for s in structures]
    with torch.no_grad():
        expected = model(batch_of(structures, model.graph_config()))["y"]
        config = {"pretrained": "0.3.0", "blocks": None}
        attach_backbone_features(model, {"train": graphs}, config, tmp_path)
        model.backbone.forward = _must_not_run  # the heads read the stored features
        got = model(Batch.from_data_list(graphs))["y"]
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
    # a run's fingerprint reads the backbone config the run records: blocks [1, 3] keep the
    # same weights as all four (blocks after the last one read are dropped either way)
    from matgnn.training.lit_module import CrystalLitModule

    runs = [
        CrystalLitModule(model=model_config(compose_train("model=chgnet", *extra)))
        for extra in ((), ("model.backbone.blocks=[1,3]",))
    ]
    states = [r.model.backbone.state_dict() for r in runs]
    assert states[0].keys() == states[1].keys()
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])
    prints = {
        backbone_fingerprint(r.model.backbone, r.hparams["model"]["backbone"], "g") for r in runs
    }
    assert len(prints) == 2


def _must_not_run(*_args, **_kwargs):
    raise AssertionError("the backbone ran although its features are stored")
