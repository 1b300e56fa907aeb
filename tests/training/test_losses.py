"""Spectral losses against values worked out by hand."""

from __future__ import annotations

import pytest
import torch

from matgnn.outputs.losses import SPECTRUM_LOSSES, cosine_loss, earth_movers_distance


def delta(position: int, bins: int = 51, height: float = 1.0) -> torch.Tensor:
    spectrum = torch.zeros(1, bins, dtype=torch.float64)
    spectrum[0, position] = height
    return spectrum


@pytest.mark.parametrize("shift", [0, 1, 7, 30])
def test_emd_of_a_shifted_peak_is_the_shift_in_bins(shift):
    assert float(earth_movers_distance(delta(10 + shift), delta(10))) == pytest.approx(shift)


def test_emd_ignores_scale_and_is_symmetric():
    a = torch.rand(4, 51, dtype=torch.float64)
    b = torch.rand(4, 51, dtype=torch.float64)
    assert float(earth_movers_distance(3.0 * a, a)) == pytest.approx(0.0, abs=1e-12)
    assert float(earth_movers_distance(a, b)) == pytest.approx(float(earth_movers_distance(b, a)))


def test_emd_tells_near_from_far_where_mse_cannot():
    target = delta(10)
    near, far = delta(11), delta(40)
    mse = SPECTRUM_LOSSES["mse"]
    assert float(mse(near, target)) == pytest.approx(float(mse(far, target)))
    assert float(earth_movers_distance(near, target)) < float(earth_movers_distance(far, target))


def test_cosine_loss_values_and_gradient():
    a = torch.tensor([[1.0, 0.0, 0.0]], requires_grad=True)
    assert float(cosine_loss(a, torch.tensor([[2.0, 0.0, 0.0]]))) == pytest.approx(0.0, abs=1e-7)
    loss = cosine_loss(a, torch.tensor([[0.0, 1.0, 0.0]]))
    assert float(loss) == pytest.approx(1.0)
    loss.backward()
    assert torch.isfinite(a.grad).all()
