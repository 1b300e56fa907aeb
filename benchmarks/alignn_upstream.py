"""ALIGNN training throughput and step memory against upstream ``alignn``'s pure-PyTorch
``ALIGNNAtomWisePure``, side by side in one process (issue "Training speed and memory").

    bash benchmarks/setup_reference_codes.sh      # once: upstream alignn + jarvis-tools
    PYTHONPATH=. .venv/bin/python benchmarks/alignn_upstream.py [--batch 64] [--steps 5]

Same ``--batch`` real MP structures for every row (the loader of ``benchmarks/models.py``), same
threads, float32 weights: the first rows of mp36k, or with ``--sample-rows 6250 --sample-seed
S`` a seeded random draw from the mp2018 5k task's crystals, as a shuffling loader draws a
batch (mp36k's first rows hold smaller cells than that task's average; ``--precisions fp32``
skips the bf16 rows). A step is forward -> MSE against the formation energies -> backward
-> AdamW ``step`` -> ``zero_grad``; the reported time is the median of ``--steps`` steps after
one warm-up step, with and without ``torch.autocast("cpu", dtype=torch.bfloat16)``.

Rows:

* ``upstream``: ``ALIGNNAtomWisePure`` with 4 ALIGNN + 4 GCN layers, 256 hidden, 64
  embedding, CGCNN atom features, no forces (``calculate_gradient=False``), on
  ``build_pure_torch_graph(atoms, two_body_cutoff=8, max_neighbors=12)``: exactly the 12
  nearest neighbours of each atom, directed, line graph of every bond pair.
* ``upstream (our default graph)``: the same upstream model fed our default graph (edges, bond
  vectors, line graph), so that the codes are compared on one graph.
* ``ours (default graph)``: ``matgnn/configs/model/alignn.yaml`` as ``matgnn.train`` runs it: ties
  with the 12th neighbour kept, edges made undirected, so more edges and many more angles.
* ``matgl M3GNet (reference)``: see :func:`matgl_m3gnet`; another model, so only its
  structures/s is comparable (a second reference the issue asked for).
* ``upstream DGL (its trainer's)``: upstream's ``ALIGNNAtomWise``, the DGL network that its
  trainer (``train_alignn``, the equal-budget runs of ``benchmarks/fidelity``) trains, same
  widths and seed, on ``upstream``'s graph as DGL graphs: the same work as ``upstream``.
* ``ours (upstream graph)``: the same model on the upstream semantics (``keep_ties=false``,
  ``symmetric=false``, no cutoff growth): exactly 12 directed neighbours per atom, so the
  ratio against ``upstream`` measures the code, not the graph size.

``step MB`` is the growth of the process's peak resident set (``VmHWM``, reset through
``/proc/self/clear_refs``; every row and precision runs in its own process) over its resident
set before the first step: the activations, gradients, transient buffers and optimiser state of
a step, with glibc's own allocator (``--allocator default``, the default, as ``matgnn.train``
runs) or with freed memory retained (``--allocator retain``, ``retain_freed_memory=true``).
``--json <file>`` also writes every row (the raw output of the docs table,
``benchmarks/speed_tables.py``). ``GEMM GFLOP`` counts the matrix products of one
profiled step (``torch.profiler``, ``with_flops``), ``GEMM time`` is their share of that step's
CPU time and ``other s`` the rest of the median step: what is left to optimise once the matrix
products run at the CPU's peak. The last lines print the ratios the issue asks for.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch
from hydra.utils import instantiate
from torch_geometric.data import Batch

from matgnn.config_dir import compose_option
from matgnn.graphs import GraphConfig, build_graph
from matgnn.models.interfaces import Backbone
from matgnn.training.allocator import retain_freed_memory

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _process import environment, gemm_rate, reset_peak, resident_mb  # noqa: E402
from models import load  # noqa: E402

UPSTREAM_GRAPH = {
    "keep_ties": False,
    "tie_weights": False,
    "symmetric": False,
    "grow_cutoff": False,
}


#: upstream's network of every upstream row (published widths, CGCNN features, no forces)
UPSTREAM_NETWORK = {
    "alignn_layers": 4,
    "gcn_layers": 4,
    "atom_input_features": 92,
    "hidden_features": 256,
    "embedding_features": 64,
    "output_features": 1,
    "calculate_gradient": False,
    "gradwise_weight": 0.0,
}


@dataclass
class Row:
    name: str
    edges: int
    angles: int
    seconds: float
    step_mb: float
    gemm_gflop: float
    gemm_share: float
    #: the machine's GEMM rate (:func:`gemm_rate`) in this row's process just before and after
    #: it: rows run one after another, so a drift of the machine's speed shows here
    gemm_rate_before: float = float("nan")
    gemm_rate_after: float = float("nan")


def time_steps(step: Callable[[], torch.Tensor], parameters, steps: int, bf16: bool) -> float:
    optimizer = torch.optim.AdamW(parameters, lr=1e-4)
    times = []
    for k in range(steps + 1):
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else nullcontext():
            loss = step()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if k:
            times.append(time.perf_counter() - start)
    return statistics.median(times) if times else float("nan")


GEMMS = ("aten::mm", "aten::addmm", "aten::addmm_", "aten::bmm", "aten::baddbmm")


def gemm_profile(step, parameters, bf16: bool) -> tuple[float, float]:
    """GFLOP of one step's matrix products and their share of the step's CPU time (one
    profiled step; the profiler's own overhead is in the total, so the share is a lower bound)."""
    with torch.profiler.profile(
        activities=[torch.profiler.ProfilerActivity.CPU], with_flops=True, record_shapes=True
    ) as prof:
        time_steps(step, parameters, 0, bf16)
    events = prof.key_averages(group_by_input_shape=True)
    total = sum(e.self_cpu_time_total for e in events)
    gemm = [e for e in events if e.key in GEMMS]
    return sum(gemm_flops(e) for e in gemm) / 1e9, sum(e.self_cpu_time_total for e in gemm) / total


def gemm_flops(event) -> float:
    """The profiler's FLOPs, or ``2 M N K`` from the shapes for the in-place ``addmm_`` that
    its FLOP counter does not know."""
    if event.key != "aten::addmm_" or event.flops:
        return event.flops
    _, (m, k), (_, n), *_ = event.input_shapes
    return 2.0 * m * n * k * event.count


def measure(step, parameters, steps: int, bf16: bool) -> tuple[float, float, float, float]:
    """Median step seconds, the step's peak resident-set growth in MB, and the GEMM GFLOP
    and CPU-time share of one profiled step."""
    reset_peak()
    before = resident_mb("VmRSS")
    seconds = time_steps(step, parameters, steps, bf16)
    step_mb = resident_mb("VmHWM") - before
    return seconds, step_mb, *gemm_profile(step, parameters, bf16)


def ours(structures, target, overrides: dict, name: str, steps: int, bf16: bool) -> Row:
    cfg = compose_option("model", "alignn")
    graph = replace(GraphConfig.preset("alignn"), **overrides)
    cfg.graph = graph.to_config()
    torch.manual_seed(0)
    model = instantiate(cfg)
    model.train()
    batch = Batch.from_data_list([build_graph(s, graph) for s in structures])

    def step() -> torch.Tensor:
        return torch.nn.functional.mse_loss(model(batch)["y"].float().squeeze(-1), target)

    measured = measure(step, list(model.parameters()), steps, bf16)
    return Row(name, batch.edge_index.size(1), batch.lg_edge_index.size(1), *measured)


def upstream_model_and_inputs(structures, our_graph: GraphConfig | None = None):
    """Upstream ``ALIGNNAtomWisePure`` (4 ALIGNN + 4 GCN layers, 256 hidden, 64 embedding,
    CGCNN features, no forces; seeded, in training mode) and its inputs ``(g, lg, lattice)`` on
    the CPU: its own graph, or ``our_graph``'s edges and line graph (bond vectors with
    upstream's sign). Needs upstream alignn in ``benchmarks/.reference-site`` on ``sys.path``.
    Returns (model, inputs, edges, angles)."""
    from alignn.models.alignn_atomwise_pure import (
        ALIGNNAtomWisePure,
        ALIGNNAtomWisePureConfig,
    )
    from alignn.torch_graph_builder import batch_torch_graph_pairs, build_pure_torch_graph
    from jarvis.core.atoms import pmg_to_atoms

    pairs = [
        build_pure_torch_graph(pmg_to_atoms(s), two_body_cutoff=8.0, max_neighbors=12)
        for s in structures
    ]
    g, lg = batch_torch_graph_pairs(pairs)
    if our_graph is not None:
        from alignn.torch_graph_builder import TorchGraph

        batch = Batch.from_data_list([build_graph(s, our_graph) for s in structures])
        with torch.no_grad():
            # ours points from the receiver to the sender image; upstream's r = dst - src
            r = -Backbone.edge_vectors(batch)
        src, dst = batch.edge_index
        counts = torch.bincount(batch.batch[dst], minlength=len(structures))
        g = TorchGraph(
            num_nodes=g.num_nodes,
            src=src,
            dst=dst,
            ndata=g.ndata,
            edata={"r": r},
            batch_num_nodes=g.batch_num_nodes,
            batch_num_edges=counts,
        )
        lg_src, lg_dst = batch.lg_edge_index
        lg = TorchGraph(num_nodes=src.numel(), src=lg_src, dst=lg_dst, ndata={}, edata={})
    config = ALIGNNAtomWisePureConfig(name="alignn_atomwise_pure", **UPSTREAM_NETWORK)
    torch.manual_seed(0)
    model = ALIGNNAtomWisePure(config).train()
    lattice = torch.stack([torch.tensor(s.lattice.matrix, dtype=torch.float32) for s in structures])
    return model, (g, lg, lattice), g.src.numel(), lg.src.numel()


def upstream(
    structures, target, steps: int, bf16: bool, our_graph: GraphConfig | None = None
) -> Row | None:
    """Upstream ``ALIGNNAtomWisePure`` on its own graph, or with ``our_graph`` on ours: same
    model code, our edges and line graph, so that the ratio against ``ours (default graph)``
    compares the codes on one graph."""
    site = HERE / ".reference-site"
    if not site.is_dir():
        print("upstream: reference codes missing, run bash benchmarks/setup_reference_codes.sh")
        return None
    sys.path.insert(0, str(site))
    model, inputs, edges, angles = upstream_model_and_inputs(structures, our_graph)
    name = "upstream" if our_graph is None else "upstream (our default graph)"

    def step() -> torch.Tensor:
        return torch.nn.functional.mse_loss(model(inputs)["out"].float(), target)

    measured = measure(step, list(model.parameters()), steps, bf16)
    return Row(name, edges, angles, *measured)


def upstream_dgl(structures, target, steps: int, bf16: bool) -> Row | None:
    """Upstream ``ALIGNNAtomWise``, the DGL network its trainer (``train_alignn``) trains, at
    the same widths and seed as ``upstream``, on the same graph (``build_pure_torch_graph``'s
    edges, bond vectors and line graph as DGL graphs, batched by ``dgl.batch``)."""
    import types

    site = HERE / ".reference-site"
    if not site.is_dir():
        print("upstream: reference codes missing, run bash benchmarks/setup_reference_codes.sh")
        return None
    sys.path.insert(0, str(site))
    sys.modules.setdefault("dgl.graphbolt", types.ModuleType("dgl.graphbolt"))
    import dgl
    from alignn.models.alignn_atomwise import ALIGNNAtomWise, ALIGNNAtomWiseConfig
    from alignn.torch_graph_builder import build_pure_torch_graph
    from fidelity.alignn_upstream import dgl_pair
    from jarvis.core.atoms import pmg_to_atoms

    gs, lgs = [], []
    for structure in structures:
        g, lg = build_pure_torch_graph(
            pmg_to_atoms(structure), two_body_cutoff=8.0, max_neighbors=12
        )
        dg, dlg = dgl_pair(dgl, g, lg)
        gs.append(dg)
        lgs.append(dlg)
    lattice = torch.stack([torch.tensor(s.lattice.matrix, dtype=torch.float32) for s in structures])
    g, lg = dgl.batch(gs), dgl.batch(lgs)
    config = ALIGNNAtomWiseConfig(name="alignn_atomwise", **UPSTREAM_NETWORK)
    torch.manual_seed(0)
    model = ALIGNNAtomWise(config).train()

    def step() -> torch.Tensor:
        return torch.nn.functional.mse_loss(model((g, lg, lattice))["out"].float(), target)

    measured = measure(step, list(model.parameters()), steps, bf16)
    return Row("upstream DGL (its trainer's)", g.num_edges(), lg.num_edges(), *measured)


ROWS = {
    "upstream": "upstream",
    "upstream_dgl": "upstream DGL (its trainer's)",
    "upstream_default": "upstream (our default graph)",
    "default": "ours (default graph)",
    "equal": "ours (upstream graph)",
    "matgl": "matgl M3GNet (reference)",
}


def matgl_m3gnet(structures, target, steps: int, bf16: bool) -> Row | None:
    """matgl's PyG M3GNet property model at its defaults (64 units, 3 blocks, 5 Å graph,
    4 Å three-body cutoff, weighted-atom readout): not ALIGNN, a second reference point of what
    a maintained PyG code trains at on the same structures. Positions and image shifts are
    attached as matgl's ``ModelLightningModule.forward`` does; the three-body line graph is
    built once (as ``MGLDataset(include_line_graph=True)`` caches it), not in every step."""
    site = HERE / ".reference-site"
    if not site.is_dir():
        print("matgl: reference codes missing, run bash benchmarks/setup_reference_codes.sh")
        return None
    sys.path.insert(0, str(site))
    from matgl.ext.pymatgen import Structure2Graph, get_element_list
    from matgl.graph._compute import compute_pair_vector_and_distance, create_line_graph
    from matgl.models import M3GNet

    elements = get_element_list(structures)
    converter = Structure2Graph(element_types=elements, cutoff=5.0)
    graphs, lattices = zip(*(converter.get_graph(s)[:2] for s in structures), strict=True)
    g = Batch.from_data_list(list(graphs))
    lattice = torch.cat([torch.as_tensor(lat, dtype=torch.float32) for lat in lattices])
    g.pos = (g.frac_coords.unsqueeze(-1) * lattice[g.batch]).sum(1)
    g.pbc_offshift = (g.pbc_offset.unsqueeze(-1) * lattice[g.batch[g.edge_index[0]]]).sum(1)
    torch.manual_seed(0)
    model = M3GNet(element_types=elements, is_intensive=True)
    model.train()
    with torch.no_grad():
        vec, dist = compute_pair_vector_and_distance(g.pos, g.edge_index, g.pbc_offshift)
        line_graph = create_line_graph(
            g.edge_index, dist, vec, g.pbc_offshift, g.num_nodes, model.threebody_cutoff
        )

    def step() -> torch.Tensor:
        prediction = model(g, l_g=line_graph).float().reshape(-1)
        return torch.nn.functional.mse_loss(prediction, target)

    measured = measure(step, list(model.parameters()), steps, bf16)
    angles = line_graph["line_edge_index"].size(1)
    return Row("matgl M3GNet (reference)", g.edge_index.size(1), angles, *measured)


def run_row(key: str, bf16: bool, args: argparse.Namespace) -> None:
    """Measure one row in this process and print it as JSON on the last line."""
    before = gemm_rate()  # before the allocator setting: its buffers go back to the system
    if args.allocator == "retain":
        retain_freed_memory()
    sample = None if args.sample_rows is None else (args.sample_rows, args.sample_seed)
    structures, target, source = load(
        args.batch, args.data_dir, [GraphConfig.preset("alignn")], sample=sample
    )
    target = target.float()
    if key == "upstream":
        row = upstream(structures, target, args.steps, bf16)
    elif key == "upstream_dgl":
        row = upstream_dgl(structures, target, args.steps, bf16)
    elif key == "upstream_default":
        row = upstream(structures, target, args.steps, bf16, GraphConfig.preset("alignn"))
    elif key == "matgl":
        row = matgl_m3gnet(structures, target, args.steps, bf16)
    else:
        graph = {} if key == "default" else UPSTREAM_GRAPH
        row = ours(structures, target, graph, ROWS[key], args.steps, bf16)
    if row is not None:
        row.gemm_rate_before, row.gemm_rate_after = before, gemm_rate()
    print(json.dumps(None if row is None else {**asdict(row), "source": source}))


def write_raw(args: argparse.Namespace, rows: dict, source: str, rate: float) -> None:
    """Every measured row, the machine and the settings, as JSON (the raw output that
    ``benchmarks/speed_tables.py`` writes the docs tables from)."""
    args.json.parent.mkdir(parents=True, exist_ok=True)
    raw = {
        **environment(),
        "script": "benchmarks/alignn_upstream.py",
        "batch": args.batch,
        "steps": args.steps,
        "allocator": args.allocator,
        "structures": source,
        "gemm_rate_gflops": rate,
        "rows": [
            {"key": key, "precision": precision, **asdict(row)}
            for (key, precision), row in rows.items()
        ],
    }
    args.json.write_text(json.dumps(raw, indent=1) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--data-dir", type=Path, default=HERE.parent / "../shared/data")
    parser.add_argument("--rows", nargs="+", choices=list(ROWS), default=list(ROWS))
    parser.add_argument("--allocator", choices=["retain", "default"], default="default")
    parser.add_argument(
        "--sample-rows",
        type=int,
        help="draw the batch at random (seeded) from the data's first SAMPLE_ROWS rows (6250: "
        "the mp2018 5k task's crystals) instead of taking its first rows",
    )
    parser.add_argument("--sample-seed", type=int, default=0)
    parser.add_argument(
        "--precisions", nargs="+", choices=["fp32", "bf16"], default=["fp32", "bf16"]
    )
    parser.add_argument("--row", choices=list(ROWS), help=argparse.SUPPRESS)
    parser.add_argument("--bf16", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--json", type=Path, help="also write every row here (raw output)")
    args = parser.parse_args()
    if args.row:
        run_row(args.row, args.bf16, args)
        return
    print(
        f"torch {torch.__version__}, threads {torch.get_num_threads()}, cpu, "
        f"allocator {args.allocator}; one process per row"
    )
    header = (
        f"{'code':<30} {'precision':<9} {'edges':>7} {'angles':>8} {'s/step':>8} "
        f"{'struct/s':>8} {'step MB':>8} {'GEMM GFLOP':>10} {'GEMM time':>9} {'other s':>8}"
    )
    print(header + "\n" + "-" * len(header), flush=True)
    rows: dict[tuple[str, str], Row] = {}
    source = ""
    for key in args.rows:
        for precision in args.precisions:
            command = [sys.executable, __file__, "--row", key, "--batch", str(args.batch)]
            command += ["--steps", str(args.steps), "--data-dir", str(args.data_dir)]
            command += ["--allocator", args.allocator]
            if args.sample_rows is not None:
                command += ["--sample-rows", str(args.sample_rows)]
                command += ["--sample-seed", str(args.sample_seed)]
            command += ["--bf16"] if precision == "bf16" else []
            done = subprocess.run(command, capture_output=True, text=True)
            if done.returncode:
                print(done.stderr[-3000:])
                raise SystemExit(f"row {key} {precision} failed")
            result = json.loads(done.stdout.strip().splitlines()[-1])
            if result is None:
                print(done.stdout.strip().splitlines()[0])
                break
            source = result.pop("source")
            row = rows[key, precision] = Row(**result)
            print(
                f"{row.name:<30} {precision:<9} {row.edges:>7} {row.angles:>8} "
                f"{row.seconds:>8.3f} {args.batch / row.seconds:>8.1f} {row.step_mb:>8.0f} "
                f"{row.gemm_gflop:>10.1f} {row.gemm_share:>9.0%} "
                f"{row.seconds * (1 - row.gemm_share):>8.3f}",
                flush=True,
            )
    print(f"\nstructures: {args.batch} from {source}")
    rate = gemm_rate()
    print(f"fp32 GEMM rate, [100000, 256] @ [256, 256]: {rate:.0f} GFLOP/s")
    if args.json:
        write_raw(args, rows, source, rate)
    for (_, precision), row in rows.items():
        if precision == "fp32":
            print(f"GEMM floor {row.name}: {row.gemm_gflop / rate:.2f} s of {row.seconds:.2f} s")
    if ("upstream", "fp32") not in rows:
        if ("upstream_dgl", "fp32") in rows and ("equal", "fp32") in rows:
            ratio = rows["upstream_dgl", "fp32"].seconds / rows["equal", "fp32"].seconds
            print(f"ours / upstream's DGL network (its trainer's), fp32: {ratio:.2f}")
        return
    comparisons = [
        (
            "ours default graph / upstream on its own graph (the issue's headline)",
            "default",
            "upstream",
        ),
        ("ours / upstream, both on our default graph", "default", "upstream_default"),
        ("ours / upstream, both on upstream's graph", "equal", "upstream"),
        (
            "ours / upstream's DGL network (its trainer's), upstream's graph",
            "equal",
            "upstream_dgl",
        ),
    ]
    for text, ours_key, up_key in comparisons:
        for precision in ("fp32", "bf16"):
            if (ours_key, precision) in rows and (up_key, precision) in rows:
                ours_row, up = rows[ours_key, precision], rows[up_key, precision]
                print(
                    f"{text}, {precision}: throughput {up.seconds / ours_row.seconds:.2f}, "
                    f"step memory {ours_row.step_mb / up.step_mb:.2f}"
                )
    if ("default", "bf16") in rows:
        ratio = rows["upstream", "fp32"].seconds / rows["default", "bf16"].seconds
        print(f"throughput ours bf16 (default graph) / upstream fp32: {ratio:.2f}")


if __name__ == "__main__":
    main()
