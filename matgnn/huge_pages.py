"""Transparent huge pages for PyTorch's CPU tensors, and a check that they are in use.

PyTorch's CPU allocator asks the kernel for transparent huge pages (``madvise(MADV_HUGEPAGE)``)
for every tensor of 2 MB or more when the environment holds ``THP_MEM_ALLOC_ENABLE=1`` (exactly
``1``: PyTorch ignores other spellings). glibc serves each tensor above 32 MiB with a fresh
``mmap``, so a CPU training step page-faults every page of its large activations again; with
huge pages that is one fault per 2 MiB instead of per 4 KiB. The flag is read once, at the
process's first CPU tensor allocation (importing matgnn's training modules already allocates
some), so it must be in the environment before that: :func:`request_huge_pages` sets it, and
only takes effect when called first thing. This module imports nothing of torch at import time
for that reason.

The kernel must allow it: ``/sys/kernel/mm/transparent_hugepage/enabled`` set to ``madvise``
or ``always`` (``never`` turns it off whatever the flag says).
"""

from __future__ import annotations

import os
import re
from collections.abc import MutableMapping
from pathlib import Path

#: PyTorch's switch (c10/core/alloc_cpu.cpp)
FLAG = "THP_MEM_ALLOC_ENABLE"
KERNEL_SETTING = Path("/sys/kernel/mm/transparent_hugepage/enabled")


def request_huge_pages(environ: MutableMapping[str, str] | None = None) -> bool:
    """Set ``THP_MEM_ALLOC_ENABLE=1`` unless the environment already sets it (``0`` keeps them
    off: the user's choice wins); returns whether the flag now asks for huge pages. Effective
    only before this process allocates its first CPU tensor."""
    environ = os.environ if environ is None else environ
    environ.setdefault(FLAG, "1")
    return environ[FLAG] == "1"


def kernel_mode() -> str | None:
    """The kernel's transparent-huge-page mode (``always``, ``madvise`` or ``never``), None
    where it cannot be read (not Linux)."""
    try:
        match = re.search(r"\[(\w+)\]", KERNEL_SETTING.read_text())
    except OSError:
        return None
    return match.group(1) if match else None


def huge_pages_active() -> bool:
    """Whether a fresh 8 MiB CPU tensor of this process lies on huge pages (Linux: its mapping's
    ``AnonHugePages`` in ``/proc/self/smaps``); False where that cannot be read."""
    import torch

    probe = torch.ones(2 * 1024 * 1024, dtype=torch.float32)  # 8 MiB, every page touched
    start = probe.data_ptr()
    try:
        text = Path("/proc/self/smaps").read_text()
    except OSError:
        return False
    inside = False
    for line in text.splitlines():
        header = re.match(r"^([0-9a-f]+)-([0-9a-f]+) ", line)
        if header:
            inside = int(header.group(1), 16) <= start < int(header.group(2), 16)
        elif inside and line.startswith("AnonHugePages:"):
            return int(line.split()[1]) > 0
    return False


def describe() -> str:
    """One line for a run's log: the flag, the kernel's mode and whether huge pages are used."""
    return (
        f"{FLAG}={os.environ.get(FLAG, '(unset)')}, kernel transparent huge pages: "
        f"{kernel_mode() or 'unknown'}, CPU tensors on huge pages: "
        f"{'yes' if huge_pages_active() else 'no'}"
    )
