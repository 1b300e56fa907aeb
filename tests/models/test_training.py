"""Batched == per-structure, gradients reach every parameter, a few steps reduce the loss on
real data, and outputs are differentiable in positions and lattice."""

from __future__ import annotations

import pytest
import torch
from torch_geometric.data import Batch

from matgnn.data.samples import mp_sample_frame, mp_sample_structures
from matgnn.graphs import build_graph
from matgnn.heads import TensorHead
from matgnn.heads.normalizer import composition_counts
from tests.models.helpers import MODEL_NAMES, SMALL, batch_of, make_model


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_batched_equals_single(name, float64, small_structures):
    model = make_model(name)
    graph = model.graph_config()
    graphs = [build_graph(s, graph) for s in small_structures]
    with torch.no_grad():
        batched = model(Batch.from_data_list(graphs))["y"]
        single = torch.cat([model(Batch.from_data_list([g]))["y"] for g in graphs])
        unbatched = torch.stack([model(g)["y"].squeeze() for g in graphs])
    torch.testing.assert_close(batched, single, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(unbatched, single, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_gradients_reach_every_parameter(name, small_structures, device):
    model = make_model(name).train()
    if name == "e3nn":  # the 2e channels feed only a tensor head
        model.heads["tensor"] = TensorHead(model.backbone.feature_spec)
    model = model.to(device)
    out = model(batch_of(small_structures, model.graph_config()).to(device))
    assert all(value.device.type == device.type for value in out.values())
    loss = sum((value**2).sum() for value in out.values())
    loss.backward()
    # every trainable parameter (SevenNet keeps constants as parameters without gradient)
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    unreached = [n for n, p in trainable if p.grad is None or not bool(p.grad.abs().sum() > 0)]
    assert not unreached, f"no gradient reaches {unreached}"
    assert all(torch.isfinite(p.grad).all() for _, p in trainable)


def _formation_energy_data(count: int):
    frame = mp_sample_frame()
    ids, structures = mp_sample_structures(count)
    target = frame.set_index("mp_id").loc[ids, "formation_energy_per_atom"].to_numpy()
    return structures, torch.tensor(target, dtype=torch.get_default_dtype())


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_a_few_steps_reduce_the_loss(name):
    structures, target = _formation_energy_data(24)
    model = make_model(name, SMALL[name])
    graph = model.graph_config()
    graphs = [build_graph(s, graph) for s in structures]
    counts = composition_counts(graphs).to(target.dtype)
    model.heads["y"].normalizer.fit(target, counts)
    batch = Batch.from_data_list(graphs)

    def loss_now() -> float:
        model.eval()
        with torch.no_grad():
            return float(torch.nn.functional.mse_loss(model(batch)["y"], target))

    before = loss_now()
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3)
    for _ in range(40):
        model.train()
        optimizer.zero_grad()
        torch.nn.functional.mse_loss(model(batch)["y"], target).backward()
        optimizer.step()
    after = loss_now()
    assert after < 0.5 * before, f"{name}: MSE {before:.4f} -> {after:.4f}"


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_output_is_differentiable_in_positions_and_lattice(name, float64, small_structures):
    model = make_model(name)
    batch = batch_of(small_structures[:2], model.graph_config())
    batch.frac_coords.requires_grad_(True)
    batch.lattice.requires_grad_(True)
    energy = model(batch)["y"].sum()
    d_frac, d_lattice = torch.autograd.grad(energy, [batch.frac_coords, batch.lattice])
    assert torch.isfinite(d_frac).all() and torch.isfinite(d_lattice).all()
    assert d_lattice.abs().sum() > 0
