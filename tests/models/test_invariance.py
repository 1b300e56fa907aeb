"""Every model is, by default, unchanged by rotation, translation, permutation, a supercell and
an equivalent unit cell (matgnn.testing.assert_invariant); extensive heads scale with the
supercell; the published cell-dependent semantics stay available and are shown to differ.
Float64, tolerance 1e-8."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from matgnn.graphs import GraphConfig, build_graph
from matgnn.heads import ClassificationHead, RegressionHead, VectorHead
from matgnn.testing import assert_invariant
from tests.models.helpers import (
    MODEL_NAMES,
    batch_of,
    make_model,
    other_cell,
    permuted,
    random_rotation,
    rotated,
    translated,
)

TOL = {"rtol": 1e-8, "atol": 1e-8}
SHIFT = np.array([0.37, -1.21, 2.93])


def cell_preserving_variants(structures):
    """Descriptions of the same crystals whose lattice (and so every graph) is the same."""
    return {
        "rotation": [rotated(s, random_rotation(i)) for i, s in enumerate(structures)],
        "translation": [translated(s, SHIFT) for s in structures],
        "permutation": [permuted(s, i) for i, s in enumerate(structures)],
        "other unit cell": [other_cell(s) for s in structures],
    }


def all_outputs(model, batch) -> dict[str, torch.Tensor]:
    with torch.no_grad():
        return model(batch)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_every_model_is_invariant_by_default(name, small_structures):
    """matgnn.testing.assert_invariant (float64): rotation, translation, permutation, another
    unit cell and the supercells 2x1x1 and 1x2x2 leave every default model unchanged."""
    model = make_model(name)
    for structure in small_structures:
        changes = assert_invariant(model, structure, rtol=1e-8, atol=1e-8)
        assert set(changes) >= {"rotation", "supercell 2x1x1", "other unit cell"}


def test_alignn_with_layer_norm_is_invariant(small_structures):
    """ALIGNN with upstream ``alignn_atomwise``'s LayerNorm instead of BatchNorm."""
    model = make_model("alignn", ["++model.backbone.norm=layer"])
    assert any(isinstance(m, torch.nn.LayerNorm) for m in model.modules())
    assert not any(isinstance(m, torch.nn.BatchNorm1d) for m in model.backbone.modules())
    for structure in small_structures:
        assert_invariant(model, structure, rtol=1e-8, atol=1e-8)


def test_assert_invariant_fails_on_a_cell_dependent_model(small_structures):
    """The helper can fail: Matformer with the published cell-as-given lattice edges (a
    supercell is another lattice) and PotNet over the given cell's pairs."""
    matformer = make_model(
        "matformer", ["++model.graph.cell=as_given", "++model.graph.lattice_edge_basis=cell"]
    )
    potnet = make_model("potnet", ["++model.graph.cell=as_given"])
    for model in (matformer, potnet):
        with pytest.raises(AssertionError, match="supercell 2x1x1"):
            assert_invariant(model, small_structures[0], rtol=1e-6, atol=1e-6)


def test_cgcnn_default_graph_shares_tied_slots_the_published_cut_does_not(mp_structures):
    """The default CGCNN graph keeps every neighbour tied with the 12th and shares the slots
    left among them (edge_weight), so each atom has exactly 12 neighbours' worth of weight and
    the weighted graph is the same after a rotation; CGCNN's own cut (keep_ties: false) keeps
    exactly 12 edges, choosing among ties by rounding."""
    published = GraphConfig.preset("cgcnn", keep_ties=False, tie_weights=False)
    default = GraphConfig.preset("cgcnn")
    rotation = random_rotation(3)
    with_ties = 0
    for structure in mp_structures[:60]:
        graph = build_graph(structure, default)
        turned = build_graph(rotated(structure, rotation), default)
        assert graph.edge_index.size(1) == turned.edge_index.size(1)
        weight = np.bincount(
            graph.edge_index[1], weights=graph.edge_weight, minlength=len(structure)
        )
        np.testing.assert_allclose(weight, 12.0, rtol=1e-6)  # float32 weights
        counts = np.bincount(graph.edge_index[1], minlength=graph.num_nodes)
        with_ties += int((counts > 12).any())
        exact = np.bincount(build_graph(structure, published).edge_index[1])
        assert (exact == 12).all()
    assert with_ties > 0, "no crystal with ties at the 12th neighbour among the first 60"


def test_cgcnn_without_ties_is_the_published_cgcnn(float64, small_structures):
    """Where no neighbour ties with the 12th (random triclinic cells), the tie-weighted default
    graph is CGCNN's own graph with unit weights: the same model gives the same output."""
    model = make_model("cgcnn")
    published = GraphConfig.preset("cgcnn", keep_ties=False, tie_weights=False)
    for structure in small_structures[3:]:
        graph = build_graph(structure, model.graph_config())
        assert bool((graph.edge_weight == 1).all())
        own = all_outputs(model, batch_of([structure], model.graph_config()))["y"]
        batch = batch_of([structure], published)
        batch.graph_fingerprint = [model.graph_fingerprint]  # same edges: let it through
        torch.testing.assert_close(all_outputs(model, batch)["y"], own, rtol=1e-12, atol=1e-12)


def test_extensive_head_scales_with_supercell(float64, small_structures):
    model = make_model("cgcnn", ["model.heads.y.readout=sum", "model.heads.y.hidden=[32]"])
    model.heads["y"].normalizer.mean.fill_(0.3)
    model.heads["y"].normalizer.element_reference[8] = -1.5
    graph = model.graph_config()
    reference = all_outputs(model, batch_of(small_structures, graph))["y"]
    doubled = all_outputs(model, batch_of([s * (2, 1, 1) for s in small_structures], graph))["y"]
    torch.testing.assert_close(doubled, 2 * reference, **TOL)
    for label, structures in cell_preserving_variants(small_structures).items():
        out = all_outputs(model, batch_of(structures, graph))["y"]
        torch.testing.assert_close(out, reference, **TOL, msg=lambda m, lb=label: f"{lb}: {m}")


@pytest.mark.parametrize("name", ["cgcnn", "e3nn"])
def test_classification_and_dos_heads_invariant(name, float64, small_structures):
    model = make_model(name)
    spec = model.backbone.feature_spec
    model.heads["label"] = ClassificationHead(spec, num_classes=3).eval()
    model.heads["dos"] = VectorHead(spec, num_bins=51).eval()
    graph = model.graph_config()
    reference = all_outputs(model, batch_of(small_structures, graph))
    assert reference["label"].shape == (5, 3)
    dos = reference["dos"]
    assert dos.shape == (5, 51)
    assert (dos >= 0).all()
    torch.testing.assert_close(dos.amax(dim=-1), torch.ones(5))
    variants = cell_preserving_variants(small_structures)
    variants["supercell"] = [s * (1, 2, 1) for s in small_structures]
    for label, structures in variants.items():
        out = all_outputs(model, batch_of(structures, graph))
        for key in ("label", "dos"):
            torch.testing.assert_close(
                out[key], reference[key], **TOL, msg=lambda m, lb=label, k=key: f"{k} {lb}: {m}"
            )


def test_dos_head_relu_and_sum_normalisation(float64, small_structures):
    model = make_model("e3nn")
    spec = model.backbone.feature_spec
    model.heads["dos"] = VectorHead(spec, num_bins=51, activation="ReLU", normalize="sum").eval()
    dos = all_outputs(model, batch_of(small_structures, model.graph_config()))["dos"]
    assert (dos >= 0).all()
    torch.testing.assert_close(dos.sum(dim=-1), torch.ones(5))


def test_multi_target_head(float64, small_structures):
    model = make_model("cgcnn")
    model.heads["y"] = RegressionHead(model.backbone.feature_spec, num_targets=3).eval()
    out = all_outputs(model, batch_of(small_structures, model.graph_config()))["y"]
    assert out.shape == (5, 3)
