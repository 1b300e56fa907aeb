"""The fused edge-gated convolution and the recomputed MLP against the plain autograd
formulas they replace, on the test device (``device``: the CPU, or ``$MATGNN_TEST_DEVICE``)."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch_geometric.utils import scatter

from matgnn.nn.edge_gating import edge_gating
from matgnn.nn.layers import EdgeGatedGraphConv
from matgnn.nn.mlp import mlp
from matgnn.nn.norm_silu import norm_arguments
from matgnn.nn.recomputed_mlp import RecomputedMLP


def reference_forward(layer: EdgeGatedGraphConv, x, edge_index, edge_attr):
    """The layer's update rule written with one autograd op per term (the code before fusion)."""
    src, dst = edge_index
    m = (
        layer.src_gate(x).index_select(0, src)
        + layer.dst_gate(x).index_select(0, dst)
        + layer.edge_gate(edge_attr)
    )
    gate = torch.sigmoid(m)
    weighted = scatter(
        gate * layer.neighbor_update(x).index_select(0, src), dst, 0, dim_size=x.size(0)
    )
    norm = scatter(gate, dst, 0, dim_size=x.size(0))
    h = layer.self_update(x) + weighted / (norm + 1e-6)
    h = F.silu(layer.bn_nodes(h))
    if layer.residual:
        h = x + h
    if layer.bn_edges is None:
        return h, None
    e = F.silu(layer.bn_edges(m))
    return h, edge_attr + e if layer.residual else e


def assert_same_gradients(loss, ref_loss, inputs, ref_inputs, layer, reference):
    """Backpropagate both losses; the inputs' and the parameters' gradients agree."""
    loss.backward()
    ref_loss.backward()
    for a, b in zip(inputs, ref_inputs, strict=True):
        torch.testing.assert_close(a.grad, b.grad)
    ref_params = dict(reference.named_parameters())
    for name, p in layer.named_parameters():
        torch.testing.assert_close(p.grad, ref_params[name].grad, msg=name)


def graph(num_nodes=9, num_edges=40, features=6, seed=0):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(num_nodes, features, generator=generator, dtype=torch.float64)
    edge_index = torch.randint(0, num_nodes, (2, num_edges), generator=generator)
    edge_attr = torch.randn(num_edges, features, generator=generator, dtype=torch.float64)
    return x, edge_index, edge_attr


def layer_pair(features, residual, update_edges, train):
    torch.manual_seed(1)
    layer = EdgeGatedGraphConv(
        features, features if residual else features + 2, residual, update_edges
    ).double()
    # Non-trivial batch-norm parameters and running statistics.
    for bn in (layer.bn_nodes, layer.bn_edges):
        if bn is not None:
            nn.init.normal_(bn.weight, 1.0, 0.3)
            nn.init.normal_(bn.bias, 0.0, 0.3)
            bn.running_mean.normal_(0, 0.5)
            bn.running_var.uniform_(0.5, 2.0)
    layer.train(train)
    return layer, copy.deepcopy(layer)


@pytest.mark.parametrize(("residual", "update_edges"), [(True, True), (True, False), (False, True)])
def test_layer_norm_layer_matches_reference_values_and_gradients(residual, update_edges, device):
    """``norm="layer"`` (upstream's ``alignn_atomwise``): LayerNorm where the published layer
    has BatchNorm, the same update rule otherwise, through the same fused edge gating."""
    x, edge_index, edge_attr = (t.to(device) for t in graph(300, 5000, 6))
    torch.manual_seed(1)
    out = 6 if residual else 8
    layer = EdgeGatedGraphConv(6, out, residual, update_edges, norm="layer").double().to(device)
    norms = [n for n in (layer.bn_nodes, layer.bn_edges) if n is not None]
    assert all(isinstance(n, nn.LayerNorm) for n in norms) and len(norms) == 1 + update_edges
    for norm in norms:
        nn.init.normal_(norm.weight, 1.0, 0.3)
        nn.init.normal_(norm.bias, 0.0, 0.3)
    reference = copy.deepcopy(layer)
    inputs = [t.clone().requires_grad_() for t in (x, edge_attr)]
    ref_inputs = [t.clone().requires_grad_() for t in (x, edge_attr)]
    h, e = layer(inputs[0], edge_index, inputs[1])
    h_ref, e_ref = reference_forward(reference, ref_inputs[0], edge_index, ref_inputs[1])
    torch.testing.assert_close(h, h_ref)
    assert (e is None) == (e_ref is None) == (not update_edges)
    loss, ref_loss = h.sin().sum(), h_ref.sin().sum()
    if update_edges:
        torch.testing.assert_close(e, e_ref)
        loss, ref_loss = loss + e.cos().sum(), ref_loss + e_ref.cos().sum()
    assert_same_gradients(loss, ref_loss, inputs, ref_inputs, layer, reference)


def test_an_unknown_norm_or_a_recomputed_mlp_without_norm_is_refused():
    with pytest.raises(ValueError, match="norm must be 'batch' or 'layer'"):
        EdgeGatedGraphConv(4, 4, norm="group")
    with pytest.raises(ValueError, match="norm must be one of"):
        mlp([4, 3], norm="instance")
    with pytest.raises(ValueError, match="norm='batch' or norm='layer'"):
        mlp([4, 3], activate_last=True, recompute=True)
    assert isinstance(mlp([4, 3], norm="layer", activate_last=True)[1], nn.LayerNorm)
    with pytest.raises(ValueError, match="last dimension only"):
        norm_arguments(nn.LayerNorm([3, 4]))


@pytest.mark.parametrize("train", [True, False])
@pytest.mark.parametrize(("residual", "update_edges"), [(True, True), (True, False), (False, True)])
def test_fused_layer_matches_reference_values_and_gradients(train, residual, update_edges, device):
    # a graph large enough for many thread blocks per scatter on a GPU
    x, edge_index, edge_attr = (t.to(device) for t in graph(300, 5000, 6))
    fused, reference = (layer.to(device) for layer in layer_pair(6, residual, update_edges, train))
    inputs = [t.clone().requires_grad_() for t in (x, edge_attr)]
    ref_inputs = [t.clone().requires_grad_() for t in (x, edge_attr)]
    h, e = fused(inputs[0], edge_index, inputs[1])
    h_ref, e_ref = reference_forward(reference, ref_inputs[0], edge_index, ref_inputs[1])
    assert h.device.type == device.type
    torch.testing.assert_close(h, h_ref)
    if update_edges:
        torch.testing.assert_close(e, e_ref)
        loss, ref_loss = (h.sin().sum() + e.cos().sum()), (h_ref.sin().sum() + e_ref.cos().sum())
    else:
        assert e is None and e_ref is None
        loss, ref_loss = h.sin().sum(), h_ref.sin().sum()
    assert_same_gradients(loss, ref_loss, inputs, ref_inputs, fused, reference)
    ref_buffers = dict(reference.named_buffers())
    for name, b in fused.named_buffers():
        torch.testing.assert_close(b, ref_buffers[name], msg=name)
    if device.type != "cpu":  # on another device: the same values as the fused layer on the CPU
        on_cpu, _ = layer_pair(6, residual, update_edges, train)
        cpu_inputs = [t.detach().cpu().requires_grad_() for t in (x, edge_attr)]
        h_cpu, e_cpu = on_cpu(cpu_inputs[0], edge_index.cpu(), cpu_inputs[1])
        torch.testing.assert_close(h.cpu(), h_cpu)
        (h_cpu.sin().sum() + (e_cpu.cos().sum() if update_edges else 0)).backward()
        for a, c in zip(inputs, cpu_inputs, strict=True):
            torch.testing.assert_close(a.grad.cpu(), c.grad)
        cpu_params, cpu_buffers = dict(on_cpu.named_parameters()), dict(on_cpu.named_buffers())
        for name, p in fused.named_parameters():
            torch.testing.assert_close(p.grad.cpu(), cpu_params[name].grad, msg=name)
        for name, b in fused.named_buffers():
            torch.testing.assert_close(b.cpu(), cpu_buffers[name], msg=name)


@pytest.mark.parametrize(
    ("norm", "train"),
    [("batch", True), ("batch", False), ("layer", True), ("layer_no_bias", True),
     ("layer_no_affine", True)],
)  # fmt: skip
def test_edge_gating_gradcheck(norm, train):
    _, edge_index, edge_attr = graph(num_nodes=5, num_edges=14, features=3, seed=2)
    if norm == "batch":
        bn = nn.BatchNorm1d(3).double().train(train)
        bn.running_var.fill_(1.5)
    else:  # non-trivial affine parameters, where there are any: their gradients are checked too
        bn = nn.LayerNorm(
            3, elementwise_affine=norm != "layer_no_affine", bias=norm == "layer"
        ).double()
        if bn.weight is not None:
            nn.init.normal_(bn.weight, 1.0, 0.3)
        if bn.bias is not None:
            nn.init.normal_(bn.bias, 0.0, 0.3)
    generator = torch.Generator().manual_seed(3)
    tensors = [
        torch.randn(5, 3, generator=generator, dtype=torch.float64, requires_grad=True),
        torch.randn(5, 3, generator=generator, dtype=torch.float64, requires_grad=True),
        edge_attr.clone().requires_grad_(),
        torch.randn(3, 3, generator=generator, dtype=torch.float64, requires_grad=True),
        torch.randn(5, 3, generator=generator, dtype=torch.float64, requires_grad=True),
    ]

    def function(*args):
        return edge_gating(*args, edge_index, bn, residual=True)

    assert torch.autograd.gradcheck(function, tensors)


@pytest.mark.parametrize("norm", ["batch", "layer"])
def test_bf16_autocast_follows_float32(norm, device):
    x, edge_index, edge_attr = graph(num_nodes=30, num_edges=300, features=16, seed=4)
    if norm == "batch":
        fused, _ = layer_pair(16, True, True, True)
    else:
        torch.manual_seed(1)
        fused = EdgeGatedGraphConv(16, 16, norm="layer")
    fused.float().to(device)
    x, edge_attr = x.float().to(device).requires_grad_(), edge_attr.float().to(device)
    edge_index = edge_index.to(device)
    h32, e32 = fused(x, edge_index, edge_attr)
    with torch.autocast(device.type, dtype=torch.bfloat16):
        h16, e16 = fused(x, edge_index, edge_attr)
    assert e16.dtype == torch.bfloat16
    torch.testing.assert_close(h16.float(), h32, rtol=0.05, atol=0.05)
    torch.testing.assert_close(e16.float(), e32, rtol=0.05, atol=0.05)
    (h32.sum() + e32.sum()).backward()
    grads32 = {n: p.grad.clone() for n, p in fused.named_parameters()}
    fused.zero_grad()
    (h16.float().sum() + e16.float().sum()).backward()
    assert all(p.grad.dtype == torch.float32 for p in fused.parameters())
    # bf16 keeps 8 bits of mantissa; each tensor's scale is floored at 1% of the largest
    # gradient: a bias right before a train-mode BatchNorm has a gradient that cancels (exactly
    # zero for the node update's), rounding noise only
    largest = max(g.abs().max() for g in grads32.values())
    for name, p in fused.named_parameters():
        scale = grads32[name].abs().max().clamp(min=0.01 * largest)
        torch.testing.assert_close(
            p.grad / scale, grads32[name] / scale, rtol=0, atol=0.1, msg=name
        )


def test_second_derivative_is_refused_clearly():
    x, edge_index, edge_attr = graph()
    layer, _ = layer_pair(6, True, True, True)
    x.requires_grad_()
    h, _ = layer(x, edge_index, edge_attr)
    (grad,) = torch.autograd.grad(h.sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match=r"once_differentiable|twice"):
        grad.sum().backward()


@pytest.mark.parametrize(("norm", "train"), [("batch", True), ("batch", False), ("layer", True)])
def test_recomputed_mlp_matches_sequential(norm, train, device):
    torch.manual_seed(5)
    plain = mlp([7, 5, 9], norm=norm, activate_last=True).double()
    for module in plain:
        if isinstance(module, nn.BatchNorm1d | nn.LayerNorm):
            nn.init.normal_(module.weight, 1.0, 0.3)
            nn.init.normal_(module.bias, 0.0, 0.3)
        if isinstance(module, nn.BatchNorm1d):
            module.running_var.uniform_(0.5, 2.0)
    recomputed = mlp([7, 5, 9], norm=norm, activate_last=True, recompute=True).double()
    assert isinstance(recomputed, RecomputedMLP)
    recomputed.load_state_dict(plain.state_dict())
    plain, recomputed = plain.to(device).train(train), recomputed.to(device).train(train)
    x = torch.randn(300, 7, dtype=torch.float64).to(device)
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    ya, yb = plain(xa), recomputed(xb)
    torch.testing.assert_close(yb, ya)
    ya.tanh().sum().backward()
    yb.tanh().sum().backward()
    torch.testing.assert_close(xb.grad, xa.grad)
    grads = {n: p.grad for n, p in plain.named_parameters()}
    for name, p in recomputed.named_parameters():
        torch.testing.assert_close(p.grad, grads[name], msg=name)
    buffers = dict(plain.named_buffers())
    for name, b in recomputed.named_buffers():
        torch.testing.assert_close(b, buffers[name], msg=name)


@pytest.mark.parametrize("norm", ["batch", "layer"])
def test_recomputed_mlp_gradcheck_and_autocast(norm, device):
    torch.manual_seed(6)
    block = mlp([4, 3], norm=norm, activate_last=True, recompute=True).double().to(device)
    if norm == "layer":
        nn.init.normal_(block[1].weight, 1.0, 0.3)
        nn.init.normal_(block[1].bias, 0.0, 0.3)
    x = torch.randn(12, 4, dtype=torch.float64).to(device).requires_grad_()
    assert torch.autograd.gradcheck(block, (x,))
    block.float()
    with torch.autocast(device.type, dtype=torch.bfloat16):
        y = block(x.detach().float())
    assert y.dtype == torch.bfloat16
    y.float().sum().backward()
    assert all(p.grad.dtype == torch.float32 for p in block.parameters())


def test_two_forward_passes_then_one_backward():
    """The running statistics are updated at every training forward; the backward of an
    earlier pass uses the batch statistics it saved (gradients equal one pass at a time)."""
    x, edge_index, edge_attr = graph()
    layer, _ = layer_pair(6, True, True, True)
    embed = mlp([6, 6], norm="batch", activate_last=True, recompute=True).double()
    first = layer(embed(x), edge_index, edge_attr)
    second = layer(embed(x * 2), edge_index, edge_attr)
    (first[0].sum() + first[1].sum() + second[0].sum() + second[1].sum()).backward()
    together = [p.grad.clone() for p in layer.parameters()]
    layer.zero_grad()
    embed.zero_grad()
    for scale in (1, 2):
        h, e = layer(embed(x * scale), edge_index, edge_attr)
        (h.sum() + e.sum()).backward()
    for joint, separate in zip(together, layer.parameters(), strict=True):
        torch.testing.assert_close(joint, separate.grad)
