"""The radial bases: the published formulas, and no subnormal floats (matrix products on
some x86 CPUs slow down several-fold on them)."""

from __future__ import annotations

import math

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from matgnn.nn.radial import EXPONENT_FLOOR, GaussianBasis
from tests.models.helpers import MODEL_NAMES, batch_of, make_model

#: third-party pretrained networks (CHGNet, SevenNet-0): their layers are not ours to change
PRETRAINED = ("chgnet", "sevennet")
#: the largest share of multiplications with a subnormal operand in a training step; e3nn's
#: tensor products of small features give 2.1e-5 (measured; not from a radial basis)
SUBNORMAL_SHARE = {"e3nn": 5e-5}


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


class _SubnormalProducts(TorchDispatchMode):
    """Counts the multiplications of every matrix product (``mm``, ``addmm``, ``bmm``) and
    those with a subnormal operand: a subnormal element of ``a [M, K]`` enters ``N``
    multiplications of ``a @ b``, one of ``b [K, N]`` enters ``M``."""

    PRODUCTS = (torch.ops.aten.mm.default, torch.ops.aten.addmm.default, torch.ops.aten.bmm.default)

    def __init__(self) -> None:
        super().__init__()
        self.multiplications = 0
        self.subnormal: dict[str, int] = {}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func in self.PRODUCTS:
            a, b = args[-2:]
            m, k, n = a.shape[-2], a.shape[-1], b.shape[-1]
            self.multiplications += a.numel() // (m * k) * m * k * n
            hit = int(_subnormal(a).sum()) * n + int(_subnormal(b).sum()) * m
            if hit:
                key = f"{func.__name__}{tuple(a.shape)}@{tuple(b.shape)}"
                self.subnormal[key] = self.subnormal.get(key, 0) + hit
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("model_name", [m for m in MODEL_NAMES if m not in PRETRAINED])
def test_matrix_products_see_almost_no_subnormal_operands(model_name, mp_structures):
    """A training step (forward and backward) of each model at its default size on 16 real MP
    crystals: at most 1e-5 of the multiplications in its matrix products (``mm``, ``addmm``,
    ``bmm``: every Linear, custom autograd functions included) have a subnormal operand, each
    of which costs a microcode assist on some x86 CPUs. With the basis floor CGCNN, ALIGNN,
    Matformer and PotNet have none; without it 6.7e-3, 5.5e-5, 1.1e-4 and 1.3e-4."""
    model = make_model(model_name).train()
    batch = batch_of(mp_structures[:16], model.graph_config())
    with _SubnormalProducts() as seen:
        out = model(batch)
        sum(v.float().square().mean() for v in out.values()).backward()
    assert seen.multiplications > 0, f"{model_name}: no matrix product ran"
    share = sum(seen.subnormal.values()) / seen.multiplications
    bound = SUBNORMAL_SHARE.get(model_name, 1e-5)
    assert share <= bound, f"{model_name}: {share:.2e} of the multiplications, {seen.subnormal}"
