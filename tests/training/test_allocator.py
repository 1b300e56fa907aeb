"""retain_freed_memory really moves large tensors off mmap (checked with glibc's mallinfo2), and
its bound hands freed memory back above the limit."""

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


BOUND_PROBE = """
import json
import torch
from matgnn.training.allocator import configure_allocator, resident_bytes, retained_memory

assert configure_allocator(True, limit_gib=64.0)
bound = retained_memory()
torch.ones(1) + 1  # first use of torch's kernels: their pages are resident before the base
base = resident_bytes()
x = torch.ones(256 * 2**20, dtype=torch.uint8)  # touched: resident
del x
retained = resident_bytes()
bound.limit_bytes = base + 64 * 2**20
first = bound.check()
after = resident_bytes()
second = bound.check()
# memory in use above the bound: one trim (and a warning), then none until the resident set
# grows by a quarter of the bound beyond what that trim left
bound.limit_bytes = 64 * 2**20
third = bound.check()
fourth = bound.check()
print(json.dumps({"base": base, "retained": retained, "after": after, "first": first,
                  "second": second, "third": third, "fourth": fourth, "trims": bound.trims}))
"""


@glibc_only
def test_retained_memory_is_handed_back_above_the_limit():
    """Retention keeps a freed 256 MiB tensor resident; above the limit one check hands it
    back (malloc_trim), and below it nothing happens."""
    import json

    out = subprocess.run([sys.executable, "-c", BOUND_PROBE], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    r = json.loads(out.stdout.split("\n")[-2])
    assert r["retained"] - r["base"] > 200 * 2**20  # kept for reuse
    assert r["first"] and not r["second"]
    assert r["after"] - r["base"] < 64 * 2**20  # handed back
    assert r["third"] and not r["fourth"] and r["trims"] == 2
    assert "stay resident after handing back" in out.stderr


@glibc_only
def test_a_run_checks_the_bound_after_every_batch(tmp_path, monkeypatch):
    """With retention on, the trainer gets the bound's callback: every batch checks it and the
    epoch logs its trims."""
    import matgnn.training.callbacks as callbacks_module
    from matgnn.train import run
    from matgnn.training.allocator import RetainedMemory
    from matgnn.training.run_logs import read_logs
    from tests.training.test_train import train_config

    class EveryBatch(RetainedMemory):  # counts the checks as trims: the wiring, not glibc
        def check(self) -> bool:
            self.trims += 1
            return True

    bound = EveryBatch(limit_bytes=1)
    monkeypatch.setattr(callbacks_module, "retained_memory", lambda: bound)
    run(train_config(tmp_path, "cgcnn"))  # retain_freed_memory stays off in this process
    trims = read_logs(tmp_path)["retained_memory_trims"].dropna()
    # the epoch's trims: its training and validation batches (and the sanity check's)
    assert bound.trims >= 3 and len(trims) == 1 and 2 <= trims.iloc[0] < bound.trims


def test_a_bound_must_be_positive():
    from matgnn.training.allocator import RetainedMemory, configure_allocator

    with pytest.raises(ValueError, match="retained_memory_limit_gib must be positive"):
        configure_allocator(True, 0)
    with pytest.raises(ValueError, match="must be positive"):
        RetainedMemory(limit_bytes=0)


def test_off_glibc_nothing_is_applied_and_a_bound_is_refused_in_words(monkeypatch):
    from matgnn.training import allocator

    monkeypatch.setattr(allocator, "glibc", lambda: None)
    assert allocator.retain_freed_memory() is False
    assert allocator.configure_allocator(True) is False
    with pytest.raises(RuntimeError, match="needs glibc's malloc_trim"):
        allocator.RetainedMemory(limit_bytes=2**30)
