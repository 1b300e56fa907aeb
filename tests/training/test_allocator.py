"""retain_freed_memory really moves large tensors off mmap (checked with glibc's mallinfo2)."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

PROBE = """
import ctypes, ctypes.util, sys
import torch
from matgnn.training.allocator import retain_freed_memory

class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]

libc = ctypes.CDLL(ctypes.util.find_library("c"))
libc.mallinfo2.restype = MallInfo2
if sys.argv[1] == "retain":
    assert retain_freed_memory()
before = libc.mallinfo2().hblkhd
x = torch.empty(64 * 2**20, dtype=torch.uint8)
print(libc.mallinfo2().hblkhd - before)
"""

glibc_only = pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
    reason="mallopt/mallinfo2 are glibc functions",
)


def mmapped_bytes_for_64_mib(mode: str) -> int:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True
    )
    return int(out.stdout.split()[-1])


@glibc_only
def test_a_large_tensor_is_mmapped_by_default_and_not_after_retain():
    assert mmapped_bytes_for_64_mib("default") >= 64 * 2**20
    assert mmapped_bytes_for_64_mib("retain") == 0
