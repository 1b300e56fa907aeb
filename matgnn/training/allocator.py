"""Keep freed heap memory in the process instead of handing it back to the kernel (glibc only).

A CPU training step allocates and frees the same large tensors (ALIGNN's line-graph features
are ``[T, 256]`` float32, about 100 MB for a batch of 64 MP crystals) over and over. glibc
serves every allocation above ``M_MMAP_THRESHOLD`` (at most 32 MiB) with a fresh ``mmap`` and
unmaps it on ``free``, so each step page-faults and zero-fills those pages again: on 2 cores
that doubled or tripled the step time of ALIGNN and Matformer (``benchmarks/models.py``,
measured with and without). ``mallopt(M_MMAP_MAX, 0)`` makes glibc serve them from the heap
and ``M_TRIM_THRESHOLD`` keeps the freed heap for reuse: the same effect as running with
``MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=...`` (or with jemalloc / tcmalloc, as PyTorch's
CPU performance guide suggests), but applied from inside the process. The price: up to 2 GiB
of freed heap stays resident for reuse, and the process cannot hand back memory freed below
the top of the heap.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import platform

log = logging.getLogger(__name__)

# <malloc.h>
M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
# mallopt takes a C int: keep up to 2 GiB of free heap before trimming.
TRIM_THRESHOLD_BYTES = 2**31 - 1


def retain_freed_memory() -> bool:
    """Apply the two ``mallopt`` settings; returns False (and changes nothing) off glibc."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    libc_name = ctypes.util.find_library("c")
    if libc_name is None:
        return False
    libc = ctypes.CDLL(libc_name)
    mallopt = getattr(libc, "mallopt", None)
    if mallopt is None:
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    applied = bool(mallopt(M_MMAP_MAX, 0)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES))
    log.info("glibc malloc: mmap off, trim threshold %d bytes: %s", TRIM_THRESHOLD_BYTES, applied)
    return applied


def configure_allocator(retain: bool) -> bool:
    """``retain_freed_memory`` of a run: apply :func:`retain_freed_memory` only when asked
    (``retain_freed_memory=true``; process-wide and permanent for this process, so a notebook
    that trains twice keeps it). Off by default: on data whose cells differ a lot in size (full
    MP sets) the retained heap fragments and grows without bound (ALIGNN on mp2018_ehull: 24
    GiB within 3 epochs). Returns whether it is applied."""
    if not retain:
        return False
    return retain_freed_memory()
