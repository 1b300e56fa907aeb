"""Graph-cache build and reload time and peak RAM for the 36,737-structure MP 2018 set.

    PYTHONPATH=. .venv/bin/python benchmarks/graph_cache.py [--graph cgcnn] [--data-dir DIR]

Each phase runs in its own process, through the same path as training
(``CrystalDataModule(mp2018).setup()``: read the CSV, parse the CIFs, build or load the
graphs, attach targets, split):

1. ``build``: empty cache directory -> every graph built and written;
2. ``reload``: the same command again -> graphs read back from the cache.

Reported: wall time of ``setup()``, peak resident memory of the process (``ru_maxrss``), cache
size on disk, graphs and rejected rows.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path


def phase(graph: str, data_dir: str, cache_dir: str) -> dict:
    from functools import partial

    from matgnn.data import CrystalDataModule
    from matgnn.data.sources.mp import mp2018
    from matgnn.graphs import GraphConfig

    data = CrystalDataModule(
        partial(mp2018, data_dir=data_dir), GraphConfig.preset(graph), cache_dir=cache_dir
    )
    start = time.perf_counter()
    data.setup()
    seconds = time.perf_counter() - start
    return {
        "seconds": seconds,
        "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
        "graphs": sum(len(v) for v in data.subsets.values()),
        "rejected": len(data.rejected),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--graph", default="cgcnn")
    parser.add_argument("--data-dir", default="../shared/data")
    parser.add_argument("--cache-dir", default="/tmp/matgnn_cache_benchmark")
    parser.add_argument("--phase", choices=["build", "reload"], default=None)
    args = parser.parse_args()
    if args.phase:
        print(json.dumps(phase(args.graph, args.data_dir, args.cache_dir)))
        return
    shutil.rmtree(args.cache_dir, ignore_errors=True)
    results = {}
    for name in ("build", "reload"):
        command = [
            sys.executable,
            __file__,
            "--phase",
            name,
            "--graph",
            args.graph,
            "--data-dir",
            args.data_dir,
            "--cache-dir",
            args.cache_dir,
        ]
        output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        results[name] = json.loads(output.strip().splitlines()[-1])
    size = sum(p.stat().st_size for p in Path(args.cache_dir).rglob("*") if p.is_file())
    print(f"graph config {args.graph}; cache {size / 2**30:.2f} GiB on disk")
    for name, r in results.items():
        print(
            f"{name:7s} {r['seconds']:8.1f} s  peak RSS {r['peak_rss_gib']:.2f} GiB  "
            f"{r['graphs']} graphs, {r['rejected']} rejected"
        )


if __name__ == "__main__":
    main()
