"""bf16 autocast: the backbone in bfloat16, geometry and heads in float32, for every model, on
the test device (``device``: the CPU, or ``$MATGNN_TEST_DEVICE``)."""

from __future__ import annotations

import pytest
import torch

from matgnn.models.interfaces import Backbone
from tests.models.helpers import MODEL_NAMES, SMALL, batch_of, make_model

#: every default model, and ALIGNN with LayerNorm (its fused edge gating with the other norm)
CASES = [(name, SMALL.get(name, [])) for name in MODEL_NAMES]
CASES.append(("alignn", [*SMALL.get("alignn", []), "++model.backbone.norm=layer"]))


@pytest.mark.parametrize(("name", "overrides"), CASES, ids=[*MODEL_NAMES, "alignn-layer-norm"])
def test_bf16_autocast_keeps_geometry_and_outputs_in_float32(
    name, overrides, small_structures, device
):
    model = make_model(name, overrides).to(device)
    batch = batch_of(small_structures[:4], model.graph_config()).to(device)
    with torch.no_grad():
        reference = model(batch)["y"]
    dtypes = set()

    def record(module, args, out):
        if isinstance(out, torch.Tensor):
            dtypes.add(out.dtype)

    hooks = [m.register_forward_hook(record) for m in model.backbone.modules()]
    with torch.autocast(device.type, dtype=torch.bfloat16), torch.no_grad():
        edge_vec = Backbone.edge_vectors(batch)
        out = model(batch)["y"]
    for hook in hooks:
        hook.remove()
    assert edge_vec.dtype == torch.float32
    assert out.dtype == torch.float32
    # the network did run in bf16 (else this test would compare float32 with itself), unless
    # it declares that it runs in full precision whatever the context ...
    assert (torch.bfloat16 in dtypes) == model.backbone.follows_autocast
    # ... and bf16 rounding moves an untrained model's output by a few percent at most.
    scale = reference.abs().max().clamp_min(1.0)
    assert (out - reference).abs().max() / scale < 0.1


def test_bf16_edge_vectors_equal_float32_ones(small_structures, device):
    model = make_model("alignn", SMALL["alignn"])
    batch = batch_of(small_structures[:2], model.graph_config()).to(device)
    exact = Backbone.edge_vectors(batch)
    with torch.autocast(device.type, dtype=torch.bfloat16):
        mixed = Backbone.edge_vectors(batch)
    torch.testing.assert_close(mixed, exact, rtol=0, atol=0)
