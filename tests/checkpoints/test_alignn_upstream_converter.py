"""The ALIGNN weight converter (matgnn <-> upstream ``alignn.models.alignn.ALIGNN``, its
LayerNorm twin ``alignn_atomwise`` and that one's pure-PyTorch rewrite ``alignn_atomwise_pure``)
maps every weight once, both ways. The agreement of the two
networks with the same weights is measured against upstream itself by
``benchmarks/fidelity/alignn_upstream.py`` (upstream needs DGL, which is not part of matgnn's
install); its stored result is checked here."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from matgnn.checkpoints.converters.alignn_upstream import (
    ConversionError,
    backbone_config,
    from_matgnn,
    model_config,
    to_matgnn,
)
from matgnn.checkpoints.safe_config import CLASS
from matgnn.models.assembly import build
from matgnn.outputs import ScalarOutput

REPO = Path(__file__).resolve().parents[2]
HEAD = "formation_energy_per_atom"
SMALL = {"alignn_layers": 2, "gcn_layers": 2, "hidden_features": 32, "embedding_features": 16,
         "edge_input_features": 80, "triplet_input_features": 40}  # fmt: skip


ATOMWISE = {**SMALL, "name": "alignn_atomwise", "atom_input_features": 92,
            "calculate_gradient": False}  # fmt: skip
PURE = {**ATOMWISE, "name": "alignn_atomwise_pure"}
PUBLISHED = {"alignn_layers": 4, "gcn_layers": 4, "hidden_features": 256,
             "embedding_features": 64}  # fmt: skip
RECORD = REPO / "benchmarks/fidelity/results/alignn_upstream.json"


def small_config(settings=SMALL):
    return model_config(settings, ScalarOutput(HEAD, target=HEAD).to_config())


def small_model(settings=SMALL):
    torch.manual_seed(0)
    return build(small_config(settings))


def test_matgnn_to_upstream_and_back_is_the_identity():
    model = small_model()
    state = model.state_dict()
    upstream = from_matgnn(state, small_config())
    # upstream's names, its two unused BatchNorms included, and no matgnn name left over
    assert "alignn_layers.1.edge_update.bn_edges.running_var" in upstream
    assert "gcn_layers.1.bn_edges.weight" in upstream
    assert "atom_embedding.layer.1.running_mean" in upstream and "fc.weight" in upstream
    assert "gcn_layers.0.src_update.weight" in upstream
    assert not any(k.startswith(("backbone.", "heads.")) or "self_update" in k for k in upstream)
    back = to_matgnn(upstream, HEAD)
    not_upstream = ("backbone.atom_input.", f"heads.{HEAD}.normalizer.")
    expected = {k: v for k, v in state.items() if not k.startswith(not_upstream)}
    assert back.keys() == expected.keys()
    assert all(torch.equal(back[k], expected[k]) for k in expected)
    # the neighbour term: upstream's dst_update is gathered from the sender
    assert torch.equal(
        upstream["alignn_layers.0.node_update.dst_update.weight"],
        state["backbone.alignn_layers.0.node_update.neighbor_update.weight"],
    )


def test_a_fitted_normaliser_or_an_unsupported_option_is_refused():
    model = small_model()
    state = model.state_dict()
    state[f"heads.{HEAD}.normalizer.std"] = torch.tensor([2.0])
    with pytest.raises(ConversionError, match="normaliser"):
        from_matgnn(state, small_config())
    config = small_config()
    config["heads"][HEAD] = {**config["heads"][HEAD], "readout": "sum"}
    with pytest.raises(ConversionError, match="not one mean-pooled Linear"):
        from_matgnn(small_model().state_dict(), config)
    config = small_config()
    config["backbone"] = {**config["backbone"], "atom_features": "learned"}
    with pytest.raises(ConversionError, match="atom_features"):
        from_matgnn(small_model().state_dict(), config)
    assert config["backbone"][CLASS] == "alignn"
    with pytest.raises(ConversionError, match="link"):
        backbone_config({**SMALL, "link": "log"})


def test_alignn_atomwise_converts_to_layer_norm_and_back():
    """``alignn_atomwise``: the same names with LayerNorm (no running statistics); its two
    unused norms filled with fresh LayerNorm values; options that change its crystal output
    refused."""
    config = small_config(ATOMWISE)
    assert config["backbone"]["norm"] == "layer" and small_config()["backbone"]["norm"] == "batch"
    model = small_model(ATOMWISE)
    assert not any(isinstance(m, torch.nn.BatchNorm1d) for m in model.backbone.modules())
    state = model.state_dict()
    upstream = from_matgnn(state, config)
    assert "gcn_layers.1.bn_edges.weight" in upstream and "fc.weight" in upstream
    assert torch.equal(upstream["gcn_layers.1.bn_edges.weight"], torch.ones(32))
    assert not any("running_" in k or "num_batches" in k for k in upstream)
    back = to_matgnn(upstream, HEAD)
    not_upstream = ("backbone.atom_input.", f"heads.{HEAD}.normalizer.")
    expected = {k: v for k, v in state.items() if not k.startswith(not_upstream)}
    assert back.keys() == expected.keys()
    assert all(torch.equal(back[k], expected[k]) for k in expected)
    refused = [("use_cutoff_function", True), ("atomwise_output_features", 3),
               ("additional_output_features", 2), ("energy_mult_natoms", False)]  # fmt: skip
    for option, value in refused:
        with pytest.raises(ConversionError, match=option):
            backbone_config({**ATOMWISE, option: value})
    # without its penalty, energy_mult_natoms=False leaves the crystal output alone
    backbone_config({**ATOMWISE, "energy_mult_natoms": False, "use_penalty": False})
    with pytest.raises(ConversionError, match="no matgnn counterpart"):
        backbone_config({**SMALL, "name": "ealignn_atomwise"})
    # upstream's own defaults fill what a config leaves out: alignn_atomwise's are 2 + 2
    # layers, 64 hidden and one atom input feature (refused: matgnn reads the CGCNN table)
    with pytest.raises(ConversionError, match="atom_input_features"):
        backbone_config({"name": "alignn_atomwise"})
    defaults = backbone_config({"name": "alignn_atomwise", "atom_input_features": 92})
    assert (defaults["alignn_layers"], defaults["hidden_features"]) == (2, 64)
    assert backbone_config({"name": "alignn"})["hidden_features"] == 256


def test_alignn_atomwise_pure_converts_as_alignn_atomwise_with_its_species_table():
    """``alignn_atomwise_pure`` (no DGL): ``alignn_atomwise``'s names plus a ``_species_table``
    buffer (zeros, dropped on the way in); its attention layers and a ZBL term in its crystal
    output refused; its penalty never touches that output."""
    config = small_config(PURE)
    assert config["backbone"] == small_config(ATOMWISE)["backbone"]
    state = small_model(PURE).state_dict()
    upstream = from_matgnn(state, config, "alignn_atomwise_pure")
    atomwise = from_matgnn(state, config)  # a LayerNorm model: alignn_atomwise by default
    assert upstream.keys() - atomwise.keys() == {"_species_table"}
    assert torch.equal(upstream["_species_table"], torch.zeros(120, 92))
    back = to_matgnn(upstream, HEAD)
    assert back.keys() == to_matgnn(atomwise, HEAD).keys()
    assert all(torch.equal(back[k], state[k]) for k in back)
    with pytest.raises(ConversionError, match="norms differ"):
        from_matgnn(small_model().state_dict(), small_config(), "alignn_atomwise_pure")
    with pytest.raises(ConversionError, match="unknown upstream network 'alignn_pure'"):
        from_matgnn(state, config, "alignn_pure")
    for conv in ("n_alignn", "t_alignn"):
        with pytest.raises(ConversionError, match="conv_type"):
            backbone_config({**PURE, "conv_type": conv})
    # ZBL: on by default whenever gradients are (upstream's default config), added to `out`
    with pytest.raises(ConversionError, match="ZBL"):
        backbone_config({**PURE, "calculate_gradient": True})
    with pytest.raises(ConversionError, match="ZBL"):
        backbone_config({"name": "alignn_atomwise_pure", "atom_input_features": 92})
    backbone_config({**PURE, "calculate_gradient": True, "use_zbl": False})
    backbone_config({**PURE, "use_zbl": True})  # no gradients: upstream adds no ZBL
    backbone_config({**PURE, "calculate_gradient": True, "gradwise_weight": 0.0})
    # its penalty goes to a copy of `out` (alignn_atomwise's in place: refused there)
    backbone_config({**PURE, "energy_mult_natoms": False, "use_penalty": True})


@pytest.mark.parametrize(
    ("network", "settings"),
    [("alignn", SMALL), ("alignn_atomwise", ATOMWISE), ("alignn_atomwise_pure", PURE)],
)
def test_the_published_widths_convert_to_upstreams_exact_names_and_shapes(network, settings):
    """Against upstream's own state dict (names and shapes stored by the benchmark run)."""
    record = json.loads(RECORD.read_text())
    config = small_config({**settings, **PUBLISHED})
    state = build(config).state_dict()
    converted = {k: list(v.shape) for k, v in from_matgnn(state, config, network).items()}
    assert converted == record["networks"][network]["upstream_state_shapes"]


@pytest.mark.parametrize("network", ["alignn", "alignn_atomwise", "alignn_atomwise_pure"])
def test_the_stored_agreement_with_upstream_is_within_float32_rounding(network):
    """benchmarks/fidelity/alignn_upstream.py's stored run: the same weights on the same graph
    give the same predictions and gradients in both implementations, for every network."""
    record = json.loads(RECORD.read_text())["networks"][network]
    assert record["parameters_upstream"] - record["parameters_matgnn"] == 4 * 256
    assert len(record["cases"]) == 2
    for name, case in record["cases"].items():
        scale = max(1.0, case["eval_max_abs_prediction"])
        assert case["eval_max_abs_difference"] < 1e-5 * scale, name
        assert case["train_max_abs_difference"] < 1e-5 * scale, name
        assert case["gradient_max_difference_over_largest_gradient"] < 1e-5, name
        # per tensor (floored at 1e-3 of the largest gradient): measured at most 7.1e-5, for
        # biases right before a train-mode BatchNorm, whose exact gradient is zero
        assert case["gradient_max_relative_difference"] < 1e-3, name
