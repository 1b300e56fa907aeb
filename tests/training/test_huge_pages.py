"""Transparent huge pages for CPU tensors (matgnn.huge_pages): the flag, the user's choice, and
the check that a fresh process really puts its tensors on huge pages."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from matgnn.huge_pages import FLAG, kernel_mode, request_huge_pages


def test_request_sets_the_flag_unless_the_user_chose():
    environ: dict[str, str] = {}
    assert request_huge_pages(environ) is True
    assert environ == {FLAG: "1"}
    chosen = {FLAG: "0"}
    assert request_huge_pages(chosen) is False
    assert chosen == {FLAG: "0"}  # the user's 0 is kept


def _fresh_process(code: str, **environ: str) -> str:
    env = {k: v for k, v in os.environ.items() if k != FLAG}
    result = subprocess.run(
        [sys.executable, "-c", code], env={**env, **environ}, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout.strip()


def test_a_fresh_process_puts_tensors_on_huge_pages_when_asked_and_allowed():
    """The flag is read at the first CPU allocation: set by request_huge_pages before torch
    allocates, tensors land on huge pages wherever the kernel allows them (madvise or always);
    with the user's THP_MEM_ALLOC_ENABLE=0 they do not (checked where the kernel's mode is
    madvise: under always the kernel may use huge pages for any mapping)."""
    mode = kernel_mode()
    if mode not in ("madvise", "always", "never"):
        pytest.skip(f"the kernel's transparent-huge-page mode cannot be read ({mode})")
    allowed = mode in ("madvise", "always")
    asked = _fresh_process(
        "from matgnn.huge_pages import request_huge_pages, huge_pages_active\n"
        "request_huge_pages()\nprint(huge_pages_active())"
    )
    assert asked == str(allowed), (mode, asked)
    refused = _fresh_process(
        "from matgnn.huge_pages import request_huge_pages, huge_pages_active\n"
        "print(request_huge_pages(), huge_pages_active())",
        **{FLAG: "0"},
    )
    assert refused.split()[0] == "False"
    if mode != "always":  # under always the kernel may back any large mapping with huge pages
        assert refused.split()[1] == "False"


def test_requesting_after_the_first_allocation_is_too_late():
    """Why the request must come before any import that allocates: once torch has allocated a
    CPU tensor the flag is fixed for the process."""
    if kernel_mode() != "madvise":
        pytest.skip(f"needs the kernel's madvise mode, not {kernel_mode()}")
    late = _fresh_process(
        "import torch\ntorch.zeros(3)\n"
        "from matgnn.huge_pages import request_huge_pages, huge_pages_active\n"
        "request_huge_pages()\nprint(huge_pages_active())"
    )
    assert late == "False"
