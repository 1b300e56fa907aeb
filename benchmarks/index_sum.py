"""ALIGNN's per-edge sums as a sparse product (``IndexSum``) against ``index_add_``, in one run.

    PYTHONPATH=. .venv/bin/python benchmarks/index_sum.py [--steps 5] [--json out.json]

The fused edge-gated convolution sums per-edge tensors into nodes five times per layer
(:mod:`matgnn.nn.index_sum`). Measured both ways on the same batches, in one process, the two
ways alternating so that a drift of the machine's speed falls on both:

* ``sums``: one line-graph layer's five sums (three by receiver, two by sender, ``[angles,
  256]`` float32 rows), ``index_add_`` against ``IndexSum`` including the building of its two
  matrices;
* ``step``: one ALIGNN training step (``matgnn/configs/model/alignn.yaml``, fp32, forward ->
  MSE against the formation energies -> backward -> AdamW step), with
  :func:`matgnn.nn.index_sum.sparse_products` on and off.

Batches: ``first``, the first 64 structures of mp36k that the graphs accept (the batch of the
other speed tables, ``benchmarks/models.py``'s loader), and ``large``, the 64 with the most
sites among the first 512 (cells more like the mp2018 5k split's); each on matgnn's default
ALIGNN graph and on upstream's graph semantics (12 directed neighbours,
``benchmarks/alignn_upstream.py``). Reported: the median of ``--steps`` timings after one
warm-up each. ``--json`` writes the raw rows that ``benchmarks/speed_tables.py`` makes the docs
table from.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import torch
from hydra.utils import instantiate
from torch_geometric.data import Batch

from matgnn.config_dir import compose_option
from matgnn.graphs import GraphConfig, build_graph
from matgnn.nn.index_sum import IndexSum, csr_available, sparse_products

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _process import environment, gemm_rate  # noqa: E402
from alignn_upstream import UPSTREAM_GRAPH  # noqa: E402
from models import load  # noqa: E402

FEATURES = 256


def alternate(a: Callable[[], object], b: Callable[[], object], steps: int) -> tuple[float, float]:
    """Median seconds of ``a`` and of ``b``, timed in turn (one untimed warm-up each)."""
    a(), b()
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(steps):
        for f, out in ((a, times[0]), (b, times[1])):
            start = time.perf_counter()
            f()
            out.append(time.perf_counter() - start)
    return statistics.median(times[0]), statistics.median(times[1])


def layer_sums(lg_index: torch.Tensor, bonds: int, steps: int) -> tuple[float, float]:
    """One line-graph layer's five sums, ``index_add_`` then ``IndexSum`` (matrices built)."""
    src, dst = lg_index
    rows = torch.randn(src.numel(), FEATURES)

    def with_index_add() -> None:
        for index in (dst, dst, src, src, dst):
            rows.new_zeros(bonds, FEATURES).index_add_(0, index, rows)

    def with_index_sum() -> None:
        by_src, by_dst = IndexSum(src, bonds), IndexSum(dst, bonds)
        for sums in (by_dst, by_dst, by_src, by_src, by_dst):
            sums(rows)

    return alternate(with_index_add, with_index_sum, steps)


def training_step(
    batch: Batch, graph: GraphConfig, target: torch.Tensor, steps: int
) -> tuple[float, float]:
    """One ALIGNN training step with ``index_add_``, then with the sparse product."""
    cfg = compose_option("model", "alignn")
    cfg.graph = graph.to_config()
    torch.manual_seed(0)
    model = instantiate(cfg)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def step(enabled: bool) -> Callable[[], None]:
        def run() -> None:
            with sparse_products(enabled):
                loss = torch.nn.functional.mse_loss(model(batch)["y"].squeeze(-1), target)
                loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

        return run

    return alternate(step(False), step(True), steps)


def batches(data_dir: Path) -> dict[str, tuple[list, torch.Tensor, str]]:
    structures, target, source = load(512, data_dir, [GraphConfig.preset("alignn")])
    large = sorted(range(len(structures)), key=lambda i: -len(structures[i]))[:64]
    return {
        "first": (structures[:64], target[:64].float(), f"the first 64 of {source}"),
        "large": (
            [structures[i] for i in large],
            target[large].float(),
            f"the 64 with the most sites among the first 512 of {source}",
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--data-dir", type=Path, default=HERE.parent / "../shared/data")
    parser.add_argument("--json", type=Path, help="also write every row here (raw output)")
    args = parser.parse_args()
    if not csr_available(torch.zeros(1)):
        raise SystemExit("this torch has no MKL: IndexSum runs index_add_, nothing to compare")
    rate_before = gemm_rate()
    rows = []
    sources = {}
    print(f"{'batch':<6} {'graph':<9} {'angles':>8} {'part':<5} {'index_add_ s':>12} "
          f"{'IndexSum s':>10} {'speed-up':>8}")  # fmt: skip
    for name, (structures, target, source) in batches(args.data_dir).items():
        sources[name] = source
        for graph_name, overrides in (("default", {}), ("upstream", UPSTREAM_GRAPH)):
            graph = replace(GraphConfig.preset("alignn"), **overrides)
            batch = Batch.from_data_list([build_graph(s, graph) for s in structures])
            bonds, angles = batch.edge_index.size(1), batch.lg_edge_index.size(1)
            for part in ("sums", "step"):
                if part == "sums":
                    before, after = layer_sums(batch.lg_edge_index, bonds, args.steps)
                else:
                    before, after = training_step(batch, graph, target, args.steps)
                row = {
                    "batch": name, "graph": graph_name, "bonds": bonds, "angles": angles,
                    "part": part, "index_add_s": before, "index_sum_s": after,
                }  # fmt: skip
                rows.append(row)
                print(f"{name:<6} {graph_name:<9} {angles:>8} {part:<5} {before:>12.3f} "
                      f"{after:>10.3f} {before / after:>7.2f}x", flush=True)  # fmt: skip
    raw = {
        **environment(),
        "script": "benchmarks/index_sum.py",
        "steps": args.steps,
        "batches": sources,
        "gemm_rate_gflops_before": rate_before,
        "gemm_rate_gflops_after": gemm_rate(),
        "rows": rows,
    }
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(raw, indent=1) + "\n")


if __name__ == "__main__":
    main()
