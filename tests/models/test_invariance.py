"""Every invariant model is unchanged by rotation, translation, permutation, a supercell and an
equivalent unit cell; extensive heads scale with the supercell. Float64, tolerance 1e-8."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from matgnn.heads import ClassificationHead, RegressionHead, VectorHead
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
def test_invariant_model(name, float64, small_structures):
    model = make_model(name)
    graph = model.graph_config()
    reference = all_outputs(model, batch_of(small_structures, graph))["y"]
    assert reference.shape == (len(small_structures),)
    assert torch.isfinite(reference).all()
    for label, structures in cell_preserving_variants(small_structures).items():
        out = all_outputs(model, batch_of(structures, graph))["y"]
        torch.testing.assert_close(out, reference, **TOL, msg=lambda m, lb=label: f"{lb}: {m}")


# Matformer and PotNet are cell-dependent by construction: see the two tests after this one.
@pytest.mark.parametrize("name", [n for n in MODEL_NAMES if n not in ("matformer", "potnet")])
def test_intensive_output_unchanged_by_supercell(name, float64, small_structures):
    model = make_model(name)
    graph = model.graph_config()
    reference = all_outputs(model, batch_of(small_structures, graph))["y"]
    for scaling in [(2, 1, 1), (1, 2, 2)]:
        out = all_outputs(model, batch_of([s * scaling for s in small_structures], graph))["y"]
        torch.testing.assert_close(out, reference, **TOL)


def test_matformer_supercell(float64, small_structures):
    """Matformer's lattice self-edges are the cell's lattice vectors (Yan et al. 2022), so a
    supercell is a different input; its neighbour part alone is supercell-invariant."""
    without = make_model(
        "matformer", ["++model.graph.lattice_edges=false", "model.backbone.lattice_edges=false"]
    )
    graph = without.graph_config()
    reference = all_outputs(without, batch_of(small_structures, graph))["y"]
    out = all_outputs(without, batch_of([s * (2, 1, 1) for s in small_structures], graph))["y"]
    torch.testing.assert_close(out, reference, **TOL)

    with_lattice = make_model("matformer")
    graph = with_lattice.graph_config()
    reference = all_outputs(with_lattice, batch_of(small_structures, graph))["y"]
    out = all_outputs(with_lattice, batch_of([s * (2, 1, 1) for s in small_structures], graph))
    assert not torch.allclose(out["y"], reference, rtol=1e-3, atol=1e-3)


def test_potnet_supercell(float64, small_structures):
    """PotNet passes a non-linear message along every atom pair of the cell (Lin et al. 2023):
    a supercell has more pairs, each carrying part of the lattice sum, so it is a different
    input. What does hold: the sums of the copies of a pair add up to the primitive-cell sum
    (tested in tests/graphs/test_potentials.py), and the output is the same for any equivalent
    cell of the same lattice (test_invariant_model)."""
    model = make_model("potnet")
    graph = model.graph_config()
    reference = all_outputs(model, batch_of(small_structures, graph))["y"]
    out = all_outputs(model, batch_of([s * (2, 1, 1) for s in small_structures], graph))["y"]
    assert not torch.allclose(out, reference, rtol=1e-3, atol=1e-3)


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
