"""The radial bases: the published formulas, and no subnormal floats (they slow the CPU's
matrix products several-fold)."""

from __future__ import annotations

import math
from functools import partial

import pytest
import torch
from torch import nn

from matgnn.nn.radial import EXPONENT_FLOOR, GaussianBasis
from tests.models.helpers import MODEL_NAMES, batch_of, make_model

#: third-party pretrained networks (CHGNet, SevenNet-0): their layers are not ours to change
PRETRAINED = ("chgnet", "sevennet")


def _subnormal(x: torch.Tensor) -> torch.Tensor:
    return (x != 0) & (x.abs() < torch.finfo(x.dtype).tiny)


def test_gaussian_basis_is_the_formula_above_the_floor_and_zero_below():
    basis = GaussianBasis(0.0, 8.0, 41, width=0.2)  # CGCNN's GaussianDistance
    d = torch.linspace(0.0, 8.0, 2001, dtype=torch.float64)  # a row's nearest centre gives O(1)
    plain = torch.exp(-(((d.unsqueeze(-1) - basis.centers.double()) / 0.2) ** 2))
    out = basis.double()(d)
    kept = plain >= math.exp(EXPONENT_FLOOR)
    assert kept.any() and (~kept).any()
    torch.testing.assert_close(out[kept], plain[kept], rtol=1e-12, atol=0)
    assert (out[~kept] == 0).all()
    # the dropped tails are below float64's resolution of each row's largest value
    assert ((plain - out).abs().max(-1).values <= 1e-20 * plain.max(-1).values).all()


def test_gaussian_basis_makes_no_subnormal_values_or_gradients():
    basis = GaussianBasis(0.0, 8.0, 41, width=0.2)
    d = torch.linspace(0.5, 8.0, 5000, requires_grad=True)
    plain = torch.exp(-(((d.detach().unsqueeze(-1) - basis.centers) / 0.2) ** 2))
    assert _subnormal(plain).any()  # what the floor is there for
    out = basis(d)
    assert not _subnormal(out).any()
    (grad,) = torch.autograd.grad(out.sum(), d)
    assert torch.isfinite(grad).all() and not _subnormal(grad).any()
    # the gradient of what is kept is the formula's: d/dd exp(-u^2) = -2 u / w exp(-u^2)
    d64 = d.detach().double().requires_grad_()
    out64 = basis.double()(d64)
    (grad64,) = torch.autograd.grad(out64.sum(), d64)
    u = (d64.detach().unsqueeze(-1) - basis.centers) / 0.2
    expected = (-2.0 * u / 0.2 * out64.detach()).sum(-1)
    torch.testing.assert_close(grad64, expected, rtol=1e-12, atol=1e-12)


def test_jarvis_width_is_the_square_root_of_the_spacing():
    basis = GaussianBasis.jarvis(0.0, 8.0, 81)
    assert math.isclose(basis.width, math.sqrt(0.1))


@pytest.mark.parametrize("model_name", [m for m in MODEL_NAMES if m not in PRETRAINED])
def test_linear_layers_see_almost_no_subnormal_inputs(model_name, mp_structures):
    """On real crystals, at most 1e-5 of what a model's ``nn.Linear`` layers get (default size,
    all layers together) is subnormal: the slowdown the basis floor removed (each subnormal
    operand costs a microcode assist in every product it enters). Without the floor CGCNN,
    Matformer and PotNet exceed the bound 19-1000x (ALIGNN's first edge layer gets subnormals
    too, but it is a small share of ALIGNN's Linear inputs). A few are natural (SiLU of a
    large negative pre-activation in a head), so the bound is not zero."""
    model = make_model(model_name)
    subnormal: dict[str, int] = {}
    total = [0]

    def count(name: str, module: nn.Module, inputs: tuple) -> None:
        subnormal[name] = subnormal.get(name, 0) + int(_subnormal(inputs[0]).sum())
        total[0] += inputs[0].numel()

    hooks = [
        m.register_forward_pre_hook(partial(count, name))
        for name, m in model.named_modules()
        if isinstance(m, nn.Linear)
    ]
    with torch.no_grad():
        model(batch_of(mp_structures[:16], model.graph_config()))
    for hook in hooks:
        hook.remove()
    assert total[0] > 0, f"{model_name}: no nn.Linear ran"
    found = {k: v for k, v in subnormal.items() if v}
    assert sum(found.values()) <= 1e-5 * total[0], f"{model_name}: subnormal inputs {found}"
