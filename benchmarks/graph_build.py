"""Graph-construction throughput against the reference codes, side by side in one run.

    bash benchmarks/setup_reference_codes.sh          # once: upstream alignn + jarvis-tools
    .venv/bin/python benchmarks/graph_build.py [--n 2000] [--data-dir ../shared/data]

Structures: the first N of ``<data-dir>/mp36k/mp36k_with_ehull.csv.gz`` (Materials Project
CIFs), or the shipped 1,500-structure sample when that file is absent. Parsing is not timed;
every code starts from its own in-memory structure object (pymatgen ``Structure`` or jarvis
``Atoms``). All timings are single-threaded wall time per structure, measured in this process.

Compared (all at 8 Å, 12 neighbours where a neighbour count applies):
  (a) pymatgen ``get_all_neighbors`` + sort + 12 nearest, as in CGCNN's reference code
  (b) jarvis-tools ``Atoms.get_all_neighbors`` (the neighbour step of ALIGNN and Matformer)
  (c) upstream alignn ``build_pure_torch_graph`` (graph + line graph, pure torch, no DGL)
  (d) raw pymatgen ``find_points_in_spheres`` (the floor every pymatgen-based code pays)
The last line is ``alignn_graph_speedup_vs_alignn: <(c) / ours ALIGNN graph with line graph>``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from omegaconf import OmegaConf
from pymatgen.core import Structure
from pymatgen.optimization.neighbors import find_points_in_spheres

from matgnn.config_dir import CONFIG_DIR, plain_structure_options
from matgnn.data.samples import mp_sample_frame
from matgnn.graphs import GraphBuilder, GraphConfig
from matgnn.graphs.line_graph import line_graph_edges

HERE = Path(__file__).resolve().parent
CONFIGS = CONFIG_DIR / "graph"
OURS = tuple(plain_structure_options("graph"))  # every preset that takes any structure


def load_structures(n: int, data_dir: Path) -> tuple[list[Structure], str]:
    path = data_dir / "mp36k" / "mp36k_with_ehull.csv.gz"
    if path.is_file():
        frame, source = pd.read_csv(path, nrows=n), str(path)
    else:
        frame, source = mp_sample_frame().iloc[:n], "shipped sample (matgnn/resources)"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return [Structure.from_str(c, fmt="cif") for c in frame["cif"]], source


def per_structure_ms(fn: Callable, items: list, repeat: int = 1) -> tuple[float, list]:
    out = []
    best = np.inf
    for _ in range(repeat):
        out = []
        start = time.perf_counter()
        for item in items:
            out.append(fn(item))
        best = min(best, time.perf_counter() - start)
    return 1e3 * best / len(items), out


def cgcnn_reference(s: Structure) -> int:
    neighbors = s.get_all_neighbors(8.0, include_index=True)
    return sum(len(sorted(nb, key=lambda x: x[1])[:12]) for nb in neighbors)


def raw_find_points(s: Structure) -> int:
    cart = np.ascontiguousarray(s.cart_coords)
    lattice = np.ascontiguousarray(s.lattice.matrix)
    c, *_ = find_points_in_spheres(cart, cart, 8.0, np.ones(3, dtype=np.int64), lattice, 1e-8)
    return len(c)


def build_or_none(builder: GraphBuilder, structure: Structure):
    """Build, or None for a structure the config rejects (e.g. no neighbour within 5 Å)."""
    try:
        return builder(structure)
    except ValueError:
        return None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--data-dir", type=Path, default=HERE.parent.parent / "shared" / "data")
    parser.add_argument(
        "--potnet-n",
        type=int,
        default=500,
        help="structures for the (slow, O(N^2)) PotNet lattice sums",
    )
    parser.add_argument("--json", type=Path, help="also write every row here (raw output)")
    parser.add_argument(
        "--ours-only",
        action="store_true",
        help="only the rows that need no reference code (a smoke run; no ratios)",
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    structures, source = load_structures(args.n, args.data_dir)
    atoms = np.array([len(s) for s in structures])
    print(
        f"{len(structures)} structures from {source}; atoms/structure mean {atoms.mean():.1f}"
        f", max {atoms.max()}"
    )

    rows: list[tuple[str, float, float]] = []  # name, ms/structure, edges/structure

    def record(name: str, ms: float, edges: float) -> None:
        rows.append((name, ms, edges))
        print(f"  {name:<52} {ms:8.3f} ms  {1e3 / ms:9.0f} structures/s  {edges:8.0f} edges")

    ms, out = per_structure_ms(raw_find_points, structures, repeat=2)
    record("(d) find_points_in_spheres 8 Å (floor)", ms, np.mean(out))
    ms, out = per_structure_ms(cgcnn_reference, structures)
    record("(a) pymatgen get_all_neighbors + 12 nearest (CGCNN)", ms, np.mean(out))

    builders = {}
    for name in OURS:
        config = GraphConfig.from_dict(
            OmegaConf.to_container(OmegaConf.load(CONFIGS / f"{name}.yaml"))
        )
        builders[name] = GraphBuilder(config)
        items = structures[: args.potnet_n] if config.potentials else structures
        ms, graphs = per_structure_ms(
            lambda s, b=builders[name]: build_or_none(b, s),
            items,
            repeat=1 if config.potentials else 2,
        )
        rejected = sum(g is None for g in graphs)
        graphs = [g for g in graphs if g is not None]
        extra = f" ({len(items)} structures)" if config.potentials else ""
        extra += f" [{rejected} rejected]" if rejected else ""
        record(f"ours {name}{extra}", ms, np.mean([g.edge_index.size(1) for g in graphs]))
        if name == "alignn":
            lg_ms, _ = per_structure_ms(
                lambda g: line_graph_edges(g.edge_index.numpy(), g.num_nodes), graphs
            )

    reference_site = HERE / ".reference-site"
    if args.ours_only:  # a smoke run without the reference codes: no (b), (c) or ratios
        write_raw(args, structures, source, atoms, lg_ms, rows)
        return
    if not reference_site.is_dir():
        print("reference codes missing: run bash benchmarks/setup_reference_codes.sh")
        sys.exit(1)
    sys.path.insert(0, str(reference_site))
    from alignn.torch_graph_builder import build_pure_torch_graph
    from jarvis.core.atoms import Atoms as JarvisAtoms

    jatoms = [
        JarvisAtoms(
            lattice_mat=s.lattice.matrix,
            coords=s.frac_coords,
            elements=[site.specie.symbol for site in s],
            cartesian=False,
        )
        for s in structures
    ]
    ms_b, out = per_structure_ms(lambda a: a.get_all_neighbors(r=8.0), jatoms)
    record("(b) jarvis Atoms.get_all_neighbors 8 Å", ms_b, np.mean([sum(map(len, o)) for o in out]))
    ms_c, out = per_structure_ms(
        lambda a: build_pure_torch_graph(
            a, two_body_cutoff=8.0, max_neighbors=12, compute_line_graph=True
        ),
        jatoms,
    )
    record(
        "(c) alignn build_pure_torch_graph (graph + line graph)",
        ms_c,
        np.mean([g.num_edges for g, _ in out]),
    )

    ours = {
        name.split(" (")[0].split(" [")[0]: ms for name, ms, _ in rows if name.startswith("ours ")
    }
    floor = rows[0][1]
    ours_alignn = ours["ours alignn"]
    print("\nratios (higher is better for us unless stated)")
    print(
        f"  ours cgcnn / (d) floor (target <= 2):                 {ours['ours cgcnn'] / floor:.2f}"
    )
    print(
        f"  (a) CGCNN reference / ours cgcnn:                     "
        f"{rows[1][1] / ours['ours cgcnn']:.1f}"
    )
    print(
        f"  ((b) + our line graph) / ours alignn (target >= 10):  "
        f"{(ms_b + lg_ms) / ours_alignn:.1f}"
    )
    print(f"alignn_graph_speedup_vs_alignn: {ms_c / ours_alignn:.2f}")
    write_raw(args, structures, source, atoms, lg_ms, rows)


def write_raw(args, structures, source, atoms, lg_ms, rows) -> None:
    """Every row as raw output (``--json``), when asked for."""
    if not args.json:
        return
    from _process import environment

    args.json.parent.mkdir(parents=True, exist_ok=True)
    raw = {
        **environment(),
        "script": "benchmarks/graph_build.py",
        "threads": torch.get_num_threads(),
        "n": len(structures),
        "potnet_n": args.potnet_n,
        "source": source,
        "atoms_mean": float(atoms.mean()),
        "atoms_max": int(atoms.max()),
        "line_graph_ms": lg_ms,
        "reference_codes": not args.ours_only,
        "rows": [{"name": n, "ms": ms, "edges": float(e)} for n, ms, e in rows],
    }
    args.json.write_text(json.dumps(raw, indent=1) + "\n")


if __name__ == "__main__":
    main()
