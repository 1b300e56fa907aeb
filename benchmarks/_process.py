"""Resident-memory readings of this process (Linux ``/proc``), for the benchmark scripts."""

from __future__ import annotations

from pathlib import Path


def resident_mb(field: str = "VmRSS") -> float:
    """``VmRSS`` (now) or ``VmHWM`` (peak since the last :func:`reset_peak`) in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def reset_peak() -> None:
    """Reset ``VmHWM`` to the current resident set (``clear_refs`` 5, Linux >= 4.0)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def environment() -> dict[str, object]:
    """What a stored measurement was taken on: date, commit, torch, threads, cores, CPU."""
    import datetime
    import os
    import platform
    import subprocess

    import torch

    here = str(Path(__file__).parent)
    try:
        commit = subprocess.run(
            ["git", "-C", here, "rev-parse", "--short", "HEAD"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
        dirty = subprocess.run(
            ["git", "-C", here, "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
        commit += " with uncommitted changes" if dirty else ""
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    cpu = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")),
        platform.processor() or "unknown",
    ) if Path("/proc/cpuinfo").is_file() else platform.processor()  # fmt: skip
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "commit": commit,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cores": os.cpu_count(),
        "cpu": cpu,
    }


def gemm_rate(repeat: int = 5) -> float:
    """GFLOP/s of a ``[100000, 256] @ [256, 256]`` float32 product here (the shape of ALIGNN's
    largest per-angle GEMM): the rate that bounds a step's matrix-product time, and a probe of
    how fast the machine runs at that moment (measured around each row of a speed table)."""
    import time

    import torch

    a, b = torch.randn(100_000, 256), torch.randn(256, 256)
    a @ b
    start = time.perf_counter()
    for _ in range(repeat):
        a @ b
    return 2 * 100_000 * 256 * 256 * repeat / (time.perf_counter() - start) / 1e9
