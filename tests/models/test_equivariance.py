"""Tensor heads rotate as R T R^T; they refuse invariant backbones."""

from __future__ import annotations

import pytest
import torch

from matgnn.heads import TensorHead
from tests.models.helpers import batch_of, make_model, random_rotation, rotated, translated


@pytest.mark.parametrize("formula", ["ij=ji", "ij"])
def test_tensor_head_is_equivariant(formula, float64, small_structures):
    # 1e channels too, so the general tensor has an antisymmetric part to show.
    model = make_model("e3nn", ["model.backbone.irreps_out='64x0e + 8x1e + 16x2e'"])
    model.heads["tensor"] = TensorHead(model.backbone.feature_spec, formula=formula).eval()
    graph = model.graph_config()
    with torch.no_grad():
        tensor = model(batch_of(small_structures, graph))["tensor"]
    assert tensor.shape == (5, 3, 3)
    assert tensor.abs().max() > 1e-6
    if formula == "ij=ji":
        torch.testing.assert_close(tensor, tensor.transpose(1, 2))
    else:
        assert not torch.allclose(tensor, tensor.transpose(1, 2), atol=1e-6)
    for seed in range(3):
        rotation = random_rotation(seed)
        structures = [translated(rotated(s, rotation), [0.1, 0.2, -0.3]) for s in small_structures]
        with torch.no_grad():
            out = model(batch_of(structures, graph))["tensor"]
        r = torch.as_tensor(rotation)
        torch.testing.assert_close(out, r @ tensor @ r.T, rtol=1e-8, atol=1e-8)


def test_tensor_head_fit_keeps_equivariance(float64, small_structures):
    model = make_model("e3nn")
    head = TensorHead(model.backbone.feature_spec)
    targets = torch.randn(10, 3, 3, generator=torch.Generator().manual_seed(0))
    targets = targets + targets.transpose(1, 2) + 5 * torch.eye(3)
    head.fit(targets)
    mean_trace = torch.diagonal(targets, dim1=1, dim2=2).mean()
    torch.testing.assert_close(head.isotropic_mean, mean_trace * torch.eye(3))
    model.heads["tensor"] = head.eval()
    graph = model.graph_config()
    rotation = random_rotation(7)
    with torch.no_grad():
        tensor = model(batch_of(small_structures, graph))["tensor"]
        out = model(batch_of([rotated(s, rotation) for s in small_structures], graph))["tensor"]
    r = torch.as_tensor(rotation)
    torch.testing.assert_close(out, r @ tensor @ r.T, rtol=1e-8, atol=1e-8)


@pytest.mark.parametrize("name", ["cgcnn", "alignn"])
def test_tensor_head_needs_equivariant_backbone(name):
    model = make_model(name)
    with pytest.raises(ValueError, match="equivariant backbone"):
        TensorHead(model.backbone.feature_spec)
