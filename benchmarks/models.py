"""Parameter counts next to the papers' figures, and CPU forward+backward time per batch of 64
real MP structures, for every default model side by side in one run.

    .venv/bin/python benchmarks/models.py [--batch 64] [--repeat 3] [--data-dir ../shared/data]

Structures: the first ``--batch`` rows of ``<data-dir>/mp36k/mp36k_with_ehull.csv.gz`` (or of
the shipped sample when that file is absent) that the graph of every model measured accepts
(``--models``: by default every model whose graph takes a plain structure, so not the
site-descriptor network ``ye2018_net``; fewer than ``--batch`` structures is an error); a structure
with an atom that has no neighbour within the e3nn radius (5 Å, e.g. bcc Cs) is skipped and
counted. Graphs are built once per model (not timed). A
step is ``model(batch)["y"]`` -> MSE against the formation energies -> ``backward()``, in train
mode; the first step is a warm-up and the reported time is the median of ``--repeat`` steps.
Each model runs in its own process, so that ``step MB``, the growth of the peak resident set
(``VmHWM``) over the resident set before the first step, is that model's: activations,
gradients and transient buffers of one fp32 step. ``bf16 s`` is the same step under
``torch.autocast("cpu", dtype=torch.bfloat16)`` (as ``trainer.precision=bf16-mixed``).
``--allocator default`` (the default, as ``matgnn.train`` runs since ``retain_freed_memory``
became opt-in) leaves glibc's malloc as it is; ``retain`` applies
:func:`matgnn.training.allocator.retain_freed_memory` first (``retain_freed_memory=true``).
``--json <file>`` also writes every row, the machine and the settings (the raw output of the
docs table, ``benchmarks/speed_tables.py``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
import warnings
from collections.abc import Iterable
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from hydra.utils import instantiate
from pymatgen.core import Structure
from torch_geometric.data import Batch

from matgnn.config_dir import compose_option, plain_structure_options
from matgnn.data.samples import mp_sample_frame
from matgnn.graphs import GraphConfig, build_graph
from matgnn.training.allocator import retain_freed_memory

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _process import environment, gemm_rate, reset_peak, resident_mb

# Figures quoted by the issue from the papers; None where the issue gives none.
PAPER_PARAMETERS = {
    "cgcnn": None,
    "alignn": 4.0e6,
    "matformer": 2.9e6,
    "potnet": None,
    "e3nn": None,
}


def model_graph(name: str) -> GraphConfig:
    """The graph the model config ``name`` trains on (its ``graph`` node; no model is built,
    so that the heap measured later is the measured model's alone)."""
    return instantiate(compose_option("model", name).graph)


def first_accepted(
    rows: Iterable[tuple[Structure, float]], n: int, graphs: list[GraphConfig]
) -> tuple[list[Structure], list[float], int]:
    """The first ``n`` (structure, target) rows that every graph of ``graphs`` accepts (fewer if
    the rows run out first), and how many were refused."""
    structures, targets, skipped = [], [], 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for structure, target in rows:
            try:
                for graph in graphs:
                    build_graph(structure, graph)
            except ValueError:
                skipped += 1
                continue
            structures.append(structure)
            targets.append(target)
            if len(structures) == n:
                break
    return structures, targets, skipped


def load(
    n: int, data_dir: Path, graphs: list[GraphConfig], sample: tuple[int, int] | None = None
) -> tuple[list[Structure], torch.Tensor, str]:
    """The first ``n`` structures of the data (mp36k, else the shipped sample) that every graph
    of ``graphs`` accepts, their formation energies and a note of their source; fewer than
    ``n`` is an error naming the graphs, never a silently smaller batch.

    ``sample=(rows, seed)``: instead of the first rows, the first accepted ``n`` of the data's
    first ``rows`` rows in a seeded random order (numpy ``default_rng(seed)``): a batch drawn
    as a shuffling loader draws one (the first 6,250 rows of mp36k are the mp2018 5k task's
    crystals), where the first rows of mp36k hold smaller cells than the average."""
    path = data_dir / "mp36k" / "mp36k_with_ehull.csv.gz"
    rows = 4 * n if sample is None else sample[0]
    if path.is_file():
        frame, source = pd.read_csv(path, nrows=rows), str(path)
    else:
        frame, source = mp_sample_frame().iloc[:rows], "shipped sample (matgnn/resources)"
    if sample is not None:
        if len(frame) < sample[0]:
            raise SystemExit(f"{source}: {len(frame)} rows, fewer than the {sample[0]} to sample")
        order = np.random.default_rng(sample[1]).permutation(len(frame))
        frame = frame.iloc[order].reset_index(drop=True)
        source += f", a random sample (seed {sample[1]}) of its first {sample[0]} rows"
    rows = (
        (Structure.from_str(cif, fmt="cif"), target)
        for cif, target in zip(frame["cif"], frame["formation_energy_per_atom"], strict=True)
    )
    structures, targets, skipped = first_accepted(rows, n, graphs)
    if len(structures) < n:
        raise SystemExit(
            f"{source}: only {len(structures)} of {n} structures taken by every graph "
            f"({skipped} refused of the first {len(frame)}); graphs: {graphs}"
        )
    return structures, torch.tensor(targets), f"{source} ({skipped} skipped)"


def step_seconds(
    model: torch.nn.Module, batch: Batch, target: torch.Tensor, repeat: int, bf16: bool = False
) -> float:
    model.train()
    times = []
    for i in range(repeat + 1):
        model.zero_grad(set_to_none=True)
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else nullcontext():
            prediction = model(batch)["y"]
        loss = torch.nn.functional.mse_loss(prediction, target.to(torch.float32))
        loss.backward()
        if i:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def one_model(name: str, args: argparse.Namespace) -> dict:
    """Measure one model in this process: fp32 step (and its peak resident-set growth), then
    the bf16-autocast step."""
    before = gemm_rate()  # the machine's speed now (before the allocator setting)
    if args.allocator == "retain":
        retain_freed_memory()
    structures, target, source = load(
        args.batch, args.data_dir, [model_graph(m) for m in args.models]
    )
    torch.manual_seed(0)
    model = instantiate(compose_option("model", name))
    batch = Batch.from_data_list([build_graph(s, model.graph_config()) for s in structures])
    edges = batch.edge_index.size(1) + getattr(batch, "pot_edge_index", torch.zeros(2, 0)).size(1)
    reset_peak()
    before = resident_mb()
    fp32 = step_seconds(model, batch, target, args.repeat)
    step_mb = resident_mb("VmHWM") - before
    bf16 = step_seconds(model, batch, target, args.repeat, bf16=True)
    return {
        "params": sum(p.numel() for p in model.parameters()),
        "edges": edges,
        "fp32": fp32,
        "bf16": bf16,
        "step_mb": step_mb,
        "atoms": sum(len(s) for s in structures),
        "source": source,
        "gemm_rate_before": before,
        "gemm_rate_after": gemm_rate(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--data-dir", type=Path, default=Path(__file__).parents[1] / "../shared/data"
    )
    parser.add_argument("--allocator", choices=["retain", "default"], default="default")
    parser.add_argument("--models", nargs="+", default=plain_structure_options("model"))
    parser.add_argument("--only", help=argparse.SUPPRESS)
    parser.add_argument("--json", type=Path, help="also write every row here (raw output)")
    args = parser.parse_args()
    if args.only:
        print(json.dumps(one_model(args.only, args)))
        return
    print(
        f"torch {torch.__version__}, threads {torch.get_num_threads()}, device cpu, "
        f"allocator {args.allocator}, one process per model"
    )
    header = (
        f"{'model':<10} {'params':>10} {'paper':>8} {'ratio':>6} {'edges':>7} "
        f"{'fp32 s':>8} {'bf16 s':>8} {'fp32/bf16':>9} {'step MB':>8}"
    )
    print(header)
    print("-" * len(header))
    source, rows = "", []
    for name in args.models:
        command = [sys.executable, __file__, "--only", name, "--batch", str(args.batch)]
        command += ["--repeat", str(args.repeat), "--data-dir", str(args.data_dir)]
        command += ["--allocator", args.allocator, "--models", *args.models]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode:
            print(done.stderr[-3000:])
            raise SystemExit(f"model {name} failed")
        row = json.loads(done.stdout.strip().splitlines()[-1])
        rows.append({"model": name, **row})
        source = f"{row['source']}, {row['atoms']} atoms"
        paper = PAPER_PARAMETERS.get(name)
        paper_text = f"{paper / 1e6:.1f}M" if paper else "-"
        ratio = f"{row['params'] / paper:.2f}" if paper else "-"
        print(
            f"{name:<10} {row['params']:>10,} {paper_text:>8} {ratio:>6} {row['edges']:>7} "
            f"{row['fp32']:>8.3f} {row['bf16']:>8.3f} {row['fp32'] / row['bf16']:>9.2f} "
            f"{row['step_mb']:>8.0f}",
            flush=True,
        )
    print(f"structures: {args.batch} from {source}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        raw = {**environment(), "script": "benchmarks/models.py", "batch": args.batch,
               "repeat": args.repeat, "allocator": args.allocator, "rows": rows}  # fmt: skip
        args.json.write_text(json.dumps(raw, indent=1) + "\n")


if __name__ == "__main__":
    main()
