"""Row sums by an index, ``out[i] = sum_{e: index[e] = i} rows[e]``, as ``index_add_`` gives.

The fused edge-gated convolution (:mod:`matgnn.nn.edge_gating`) sums per-edge tensors into
their nodes five times per layer (two in the forward pass, three in the backward pass), on
ALIGNN's line graph about 200k angles x 256 features each for a batch of 64 MP crystals. On the
CPU the same sum written as a sparse CSR matrix ``S`` (``[N, E]``, a one in row ``index[e]``,
column ``e``) times the rows, ``out = S @ rows``, is a product that MKL runs in parallel over the
output rows (``benchmarks/index_sum.py`` measures it against ``Tensor.index_add_``).
:class:`IndexSum` builds ``S`` once per index (one stable ``argsort``, none when the index is
sorted already, as one of the two indices of matgnn's graphs and line graphs is) and serves
every sum of that index, forward and backward.

The product is used on the CPU for float32 and float64 when PyTorch was built with MKL; every
other case (bf16 under autocast, which MKL's sparse product lacks; CUDA, whose ``index_add_``
uses atomics; no edges) runs ``index_add_``. Both add each node's rows in ascending edge order,
so the results agree to rounding (bit for bit on the Xeon measured;
``tests/models/test_index_sum.py``).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import Tensor

_CSR_DTYPES = (torch.float32, torch.float64)
_sparse_products = True


@contextmanager
def sparse_products(enabled: bool) -> Iterator[None]:
    """Within the block, let :class:`IndexSum` use the sparse product (``True``, the default)
    or ``index_add_`` always (``False``): for benchmarks (``benchmarks/index_sum.py``) and for
    ruling the sparse product out when a result looks wrong. Process-wide, not thread-local."""
    global _sparse_products
    before, _sparse_products = _sparse_products, enabled
    try:
        yield
    finally:
        _sparse_products = before


def csr_available(rows: Tensor) -> bool:
    """Whether :class:`IndexSum` sums ``rows`` as a sparse product (CPU, float32/64, MKL,
    not switched off by :func:`sparse_products`)."""
    return (
        _sparse_products
        and rows.device.type == "cpu"
        and rows.dtype in _CSR_DTYPES
        and torch.backends.mkl.is_available()
    )


class IndexSum:
    """``index_add_`` of ``[E, F]`` rows into ``num_rows`` rows, by one fixed index.

    Args:
        index: ``[E]`` target row of every input row (int64, values in ``[0, num_rows)``).
        num_rows: ``N``, the number of output rows.

    Shapes:
        ``rows [E, F]`` -> ``[N, F]``.
    """

    def __init__(self, index: Tensor, num_rows: int) -> None:
        self.index = index
        self.num_rows = num_rows
        self._order: Tensor | None = None
        self._crow: Tensor | None = None
        self._matrices: dict[torch.dtype, Tensor] = {}

    def __call__(self, rows: Tensor) -> Tensor:
        if rows.size(0) != self.index.numel():
            raise ValueError(
                f"IndexSum: {rows.size(0)} rows for an index of {self.index.numel()} entries"
            )
        if rows.dim() != 2 or rows.size(0) == 0 or not csr_available(rows):
            out = rows.new_zeros(self.num_rows, *rows.shape[1:])
            return out.index_add_(0, self.index, rows)
        return self._matrix(rows.dtype) @ rows

    def _matrix(self, dtype: torch.dtype) -> Tensor:
        matrix = self._matrices.get(dtype)
        if matrix is None:
            if self._order is None:
                index = self.index
                if bool((index[1:] >= index[:-1]).all()):  # one of each graph's two indices
                    self._order = torch.arange(index.numel(), device=index.device)
                else:  # stable: equal targets keep ascending edge order, as index_add_ adds
                    self._order = torch.argsort(index, stable=True)
                counts = torch.bincount(self.index, minlength=self.num_rows)
                if counts.numel() != self.num_rows:  # the matrix is built unchecked
                    raise IndexError(
                        f"IndexSum: index {int(self.index.max())} out of range for "
                        f"{self.num_rows} rows"
                    )
                self._crow = torch.cat([counts.new_zeros(1), counts.cumsum(0)])
            ones = torch.ones(self.index.numel(), dtype=dtype)
            with warnings.catch_warnings():
                # "Sparse CSR tensor support is in beta state": the product used is MKL's.
                warnings.filterwarnings("ignore", "Sparse CSR tensor support", UserWarning)
                matrix = torch.sparse_csr_tensor(
                    self._crow,
                    self._order,
                    ones,
                    size=(self.num_rows, self.index.numel()),
                    check_invariants=False,
                )
            self._matrices[dtype] = matrix
        return matrix
