"""Every model predicts on the test device (``$MATGNN_TEST_DEVICE``, e.g. ``cuda:0`` from
``benchmarks/gpu_check.sh``) what it predicts on the CPU, in float64. The other
device-sensitive tests (fused kernels, autocast, gradients) take the same ``device`` fixture;
this one compares two devices, so on a CPU-only run it has nothing to compare and says so."""

from __future__ import annotations

import pytest
import torch

from tests.models.helpers import MODEL_NAMES, batch_of, make_model


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_predictions_on_the_test_device_equal_cpu_ones(name, float64, small_structures, device):
    if device.type == "cpu":
        pytest.skip("MATGNN_TEST_DEVICE is the CPU: no second device to compare with")
    model = make_model(name).eval()
    batch = batch_of(small_structures, model.graph_config())
    with torch.no_grad():
        on_cpu = model(batch)["y"]
        on_device = model.to(device)(batch.to(device))["y"]
    assert on_device.device.type == device.type
    torch.testing.assert_close(on_device.cpu(), on_cpu, rtol=1e-8, atol=1e-8)
