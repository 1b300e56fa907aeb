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
of freed heap stays resident for reuse, and freed memory below the top of the heap is handed
back only by ``malloc_trim``.

So the retention is bounded: :class:`RetainedMemory` checks the process's resident set after
every batch (:class:`~matgnn.training.callbacks.BoundRetainedMemory`) and, above its limit
(``retained_memory_limit_gib``; default half the machine's memory), calls glibc's
``malloc_trim(0)``, which returns every whole free page of every arena to the kernel
(``madvise(MADV_DONTNEED)``). The next step page-faults those pages again, once, as every
step does without retention. Without that bound, data whose cells differ a lot in size (full
MP sets) fragmented the retained heap until the kernel killed the run (ALIGNN on
``mp2018_ehull``, bf16, batch 64: 24 GiB resident within 3 epochs on a 24 GiB machine).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
import os
import platform
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

# <malloc.h>
M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
# mallopt takes a C int: keep up to 2 GiB of free heap before trimming.
TRIM_THRESHOLD_BYTES = 2**31 - 1


@functools.cache
def glibc() -> ctypes.CDLL | None:
    """This process's glibc, or None off Linux/glibc or where it cannot be found."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    libc_name = ctypes.util.find_library("c")
    return None if libc_name is None else ctypes.CDLL(libc_name)


def retain_freed_memory() -> bool:
    """Apply the two ``mallopt`` settings; returns False (and changes nothing) off glibc."""
    libc = glibc()
    if libc is None:
        return False
    mallopt = getattr(libc, "mallopt", None)
    if mallopt is None:
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    applied = bool(mallopt(M_MMAP_MAX, 0)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES))
    log.info("glibc malloc: mmap off, trim threshold %d bytes: %s", TRIM_THRESHOLD_BYTES, applied)
    return applied


def resident_bytes() -> int:
    """The process's resident set size in bytes (``/proc/self/statm``; 0 where there is none)."""
    try:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def physical_memory_bytes() -> int:
    """The machine's physical memory (``sysconf``), 0 where it cannot be read."""
    try:
        return int(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (OSError, ValueError):
        return 0


@dataclass
class RetainedMemory:
    """The bound on retained heap memory: :meth:`check` hands every whole free page back to the
    kernel (glibc ``malloc_trim(0)``) when the resident set exceeds ``limit_bytes``.

    Memory in use cannot be handed back: when a trim leaves the resident set above the limit,
    a warning says so (once), and the next trim waits until the resident set has grown by a
    quarter of the limit beyond what that trim left, so that a process whose live tensors
    exceed the bound does not trim after every batch.

    Args:
        limit_bytes: the resident-set size above which freed memory is handed back.
    """

    limit_bytes: int
    trims: int = 0
    trimmed_bytes: int = 0
    _raised: int = field(init=False, compare=False, repr=False, default=0)
    _warned: bool = field(init=False, compare=False, repr=False, default=False)
    _trim: object = field(init=False, compare=False, repr=False, default=None)

    def __post_init__(self) -> None:
        if self.limit_bytes <= 0:
            raise ValueError(
                f"retained_memory_limit_gib must be positive, got {self.limit_bytes} bytes"
            )
        libc = glibc()
        if libc is None:
            raise RuntimeError(
                "RetainedMemory needs glibc's malloc_trim: this process has no glibc"
            )
        self._trim = libc.malloc_trim
        self._trim.argtypes = [ctypes.c_size_t]
        self._trim.restype = ctypes.c_int

    def check(self) -> bool:
        """Trim when the resident set is above the threshold (the limit, or more after a trim
        that could not get below it); returns whether it trimmed."""
        before = resident_bytes()
        if before <= max(self.limit_bytes, self._raised):
            return False
        self._trim(0)
        after = resident_bytes()
        self.trims += 1
        self.trimmed_bytes += max(0, before - after)
        if after > self.limit_bytes:
            self._raised = after + self.limit_bytes // 4
            if not self._warned:
                self._warned = True
                log.warning(
                    "retained_memory_limit_gib: %.1f GiB stay resident after handing back the "
                    "freed memory, above the bound of %.1f GiB: memory in use; the next trim "
                    "waits until %.1f GiB (raise the bound, or turn retain_freed_memory off)",
                    after / 2**30,
                    self.limit_bytes / 2**30,
                    self._raised / 2**30,
                )
        else:
            self._raised = 0
        return True


#: the bound of this process's retention (None: glibc's default allocator behaviour)
_retained: RetainedMemory | None = None


def retained_memory() -> RetainedMemory | None:
    """The bound applied by :func:`configure_allocator` in this process, or None."""
    return _retained


def configure_allocator(retain: bool, limit_gib: float | None = None) -> bool:
    """``retain_freed_memory`` of a run: apply :func:`retain_freed_memory` only when asked
    (``retain_freed_memory=true``; process-wide and permanent for this process, so a notebook
    that trains twice keeps it), bounded by :class:`RetainedMemory` at ``limit_gib`` GiB of
    resident memory (``None``: half the machine's memory), which the trainer checks after
    every batch. Returns whether it is applied."""
    global _retained
    if not retain:
        return False
    if limit_gib is not None and not float(limit_gib) > 0:
        raise ValueError(f"retained_memory_limit_gib must be positive, got {limit_gib}")
    applied = retain_freed_memory()
    if applied:
        limit = (
            int(float(limit_gib) * 2**30) if limit_gib is not None else physical_memory_bytes() // 2
        )
        if limit <= 0:
            raise ValueError(
                "retain_freed_memory: the machine's memory cannot be read; set "
                "retained_memory_limit_gib"
            )
        _retained = RetainedMemory(limit)
        log.info("retained heap memory bounded at %.1f GiB resident", limit / 2**30)
    return applied
