"""The weights digest: the same weights give the same digest wherever they sit; any change of
a value, dtype, shape or name gives another."""

from __future__ import annotations

import hashlib

import torch
from torch import nn

from matgnn.checkpoints.digest import state_digest, update_with_tensor


def _network(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 1))


def test_the_same_weights_give_the_same_digest_in_any_instance_or_as_a_state_dict():
    first, second = _network(), _network(seed=1)
    second.load_state_dict(first.state_dict())
    assert state_digest(first) == state_digest(second) == state_digest(first.state_dict())
    # the order a state dict lists its tensors in does not matter, their names do
    reordered = dict(reversed(list(first.state_dict().items())))
    assert state_digest(reordered) == state_digest(first)
    assert len(state_digest(first)) == 64


def test_a_changed_value_dtype_shape_or_name_changes_the_digest():
    network = _network()
    reference = state_digest(network)
    state = network.state_dict()
    nudged = {**state, "0.weight": state["0.weight"].clone()}
    nudged["0.weight"][0, 0] = torch.nextafter(nudged["0.weight"][0, 0], torch.tensor(1.0))
    assert state_digest(nudged) != reference
    assert state_digest({**state, "0.weight": state["0.weight"].double()}) != reference
    assert state_digest({**state, "0.weight": state["0.weight"].reshape(-1)}) != reference
    renamed = {("first." + k if k.startswith("0.") else k): v for k, v in state.items()}
    assert state_digest(renamed) != reference
    # the buffers count too: a BatchNorm that has seen data is other weights
    network.train()(torch.randn(8, 3))
    assert state_digest(network) != reference


def test_a_tensor_feeds_its_dtype_shape_and_bytes():
    """The byte format, spelled out: ``dtype``, ``shape`` as text, then the raw bytes."""
    tensor = torch.arange(6, dtype=torch.float32).reshape(2, 3)
    h = hashlib.sha256()
    update_with_tensor(h, tensor.t())  # not contiguous: hashed as its row-major copy
    expected = hashlib.sha256(b"torch.float32(3, 2)" + tensor.t().contiguous().numpy().tobytes())
    assert h.hexdigest() == expected.hexdigest()


def test_the_state_digest_is_pinned():
    """The feature cache's fingerprints and the benchmark records' weight digests depend on this
    byte format (names sorted, each name then its tensor); changing it invalidates every cached
    feature file and stored digest, so it fails here first."""
    state = {
        "b.weight": torch.arange(6, dtype=torch.float32).reshape(2, 3),
        "a.count": torch.tensor([7], dtype=torch.int64),
    }
    assert state_digest(state) == "6f447b7c42433d412be8085ccaf0619d8c2c329790375ad57825faf2a418e651"
