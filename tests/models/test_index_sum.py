"""``IndexSum`` (the sparse-product row sums of the fused edge-gated convolution) against
``index_add_``, the sum it replaces."""

from __future__ import annotations

import warnings

import pytest
import torch

from matgnn.nn.edge_gating import edge_gating
from matgnn.nn.index_sum import IndexSum, csr_available, sparse_products


def index_add(index, rows, num_rows):
    return rows.new_zeros(num_rows, rows.size(1)).index_add_(0, index, rows)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("order", ["unsorted", "sorted"])
@pytest.mark.parametrize(("num_rows", "edges", "features"), [(9, 40, 6), (300, 5000, 64)])
def test_sums_equal_index_add(dtype, order, num_rows, edges, features):
    """Random targets (some rows get none, some many), unsorted or sorted (no argsort): the
    same sums as ``index_add_``, through the sparse product where this build has MKL."""
    generator = torch.Generator().manual_seed(edges)
    index = torch.randint(0, num_rows - 2, (edges,), generator=generator)  # last two: empty
    if order == "sorted":
        index = index.sort().values
    rows = torch.randn(edges, features, generator=generator, dtype=dtype)
    sums = IndexSum(index, num_rows)
    out = sums(rows)
    assert out.layout == torch.strided and out.shape == (num_rows, features)
    assert out.dtype == dtype
    torch.testing.assert_close(out, index_add(index, rows, num_rows), rtol=0, atol=1e-5)
    assert not out[-2:].any()
    # a second sum of another tensor by the same index reuses the matrix
    other = torch.randn(edges, 3, generator=generator, dtype=dtype)
    torch.testing.assert_close(sums(other), index_add(index, other, num_rows), rtol=0, atol=1e-5)
    assert len(sums._matrices) == int(csr_available(rows))


def test_the_sparse_product_is_used_on_this_cpu():
    """CI's torch (the CPU wheel) has MKL: the product path is the one the suite tests, and
    building the matrix raises no beta warning to the user."""
    if not torch.backends.mkl.is_available():
        pytest.fail("this torch has no MKL: IndexSum falls back to index_add_ everywhere")
    rows = torch.randn(10, 4)
    assert csr_available(rows)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        IndexSum(torch.arange(10) % 3, 3)(rows)
    with sparse_products(False):
        assert not csr_available(rows)
    assert csr_available(rows)
    assert not csr_available(rows.bfloat16())
    assert not csr_available(rows.to(torch.int64))


def test_bf16_no_edges_and_switched_off_fall_back_to_index_add():
    index = torch.tensor([2, 0, 2, 1])
    rows = torch.randn(4, 5)
    for dtype in (torch.bfloat16, torch.float16):
        sums = IndexSum(index, 4)
        torch.testing.assert_close(
            sums(rows.to(dtype)), index_add(index, rows.to(dtype), 4), rtol=0, atol=0
        )
        assert not sums._matrices
    assert not IndexSum(torch.zeros(0, dtype=torch.long), 3)(torch.zeros(0, 5)).any()
    with sparse_products(False):
        sums = IndexSum(index, 4)
        torch.testing.assert_close(sums(rows), index_add(index, rows, 4), rtol=0, atol=0)
        assert not sums._matrices


def test_bad_index_or_rows_are_refused_by_name():
    """The matrix is built without PyTorch's invariant checks: an index past the rows must be
    refused before it, as ``index_add_`` refuses it."""
    with pytest.raises(IndexError, match="index 7 out of range for 5 rows"):
        IndexSum(torch.tensor([0, 7]), 5)(torch.randn(2, 3))
    with pytest.raises(ValueError, match="3 rows for an index of 2 entries"):
        IndexSum(torch.tensor([0, 1]), 5)(torch.randn(3, 3))


def test_edge_gating_gives_the_same_values_and_gradients_either_way():
    """The fused convolution with the sparse product and with ``index_add_``: same outputs and
    gradients (the layer tests compare either with the plain autograd formulas)."""
    generator = torch.Generator().manual_seed(3)
    nodes, edges, features = 30, 400, 8
    edge_index = torch.randint(0, nodes, (2, edges), generator=generator)
    norm = torch.nn.BatchNorm1d(features)

    def run(enabled: bool):
        torch.manual_seed(0)
        inputs = [
            torch.randn(nodes, features, requires_grad=True),
            torch.randn(nodes, features, requires_grad=True),
            torch.randn(edges, features, requires_grad=True),
            torch.randn(features, features, requires_grad=True),
            torch.randn(nodes, features, requires_grad=True),
        ]
        src_term, dst_term, edge_attr, weight, values = inputs
        with sparse_products(enabled):
            weighted, norm_sum, out = edge_gating(
                src_term, dst_term, edge_attr, weight, values, edge_index, norm, True
            )
            (weighted.sin().sum() + norm_sum.cos().sum() + out.square().sum()).backward()
        return [weighted, norm_sum, out] + [t.grad for t in inputs]

    for a, b in zip(run(True), run(False), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
