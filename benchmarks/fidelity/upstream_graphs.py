"""matgnn's trainer on upstream ALIGNN's own graphs (issue 25, part 4, ALIGNN arm).

    # 1. upstream's graphs of the crystals of a data folder (equal_budget_prepare.py
    #    --layout alignn), built by upstream's code exactly as its trainer builds them:
    PYTHONPATH=benchmarks/.reference-site python benchmarks/fidelity/upstream_graphs.py \\
        export <data folder> <graphs.npz>
    # 2. a matgnn training run whose graphs are those (Hydra overrides as for matgnn.train):
    python benchmarks/fidelity/upstream_graphs.py train <graphs.npz> <run dir> <overrides...>
    # 3. how matgnn's `alignn` and `alignn_upstream` presets compare with them, crystal by
    #    crystal (stored in results/alignn_graphs.csv; the docs block is written from it):
    python benchmarks/fidelity/upstream_graphs.py --collect <graphs.npz> \
        [--update docs/results/fidelity.md]

Upstream's trainer reads each CIF with jarvis ``Atoms.from_cif`` (spglib's primitive cell, the
lattice rounded to 5 decimals for the positions) and builds ``alignn.graphs.Graph.
atom_dgl_multigraph(k-nearest, cutoff 8 Å, 12 neighbours, canonised)``; its line graph is DGL's.
That graph differs from matgnn's ``alignn`` preset on most crystals (docs/results/fidelity.md,
"ALIGNN's graph, ours and upstream's"): to compare trainers on one graph, ``export`` stores
upstream's atoms, cell, bonds (with their integer cell shifts) and line graph for every
crystal, and ``train`` runs ``matgnn.train``'s own run with those graphs in place of
matgnn's: same atoms and cell as upstream's (not pymatgen's reading of the CIF), same bonds and
angles. matgnn still computes
bond vectors and angles from the positions inside the model; ``train`` checks, crystal by
crystal, that they equal upstream's stored bond vectors and bond-angle cosines.

The file is plain arrays (``numpy.savez``, no pickled objects): per crystal, its id, the
atoms' atomic numbers and fractional coordinates, the 3x3 cell, the bonds ``(src, dst)`` with
upstream's ``images`` and bond vectors ``r`` (the cell shift of each bond is read off ``r``),
and the line graph with upstream's cosines.
"""

from __future__ import annotations

import csv
import sys
import types
from pathlib import Path

import numpy as np

PARTS = ("atoms", "bonds", "angles")


def export(data: Path, out: Path) -> None:
    """Upstream's graph of every crystal listed in ``<data>/id_prop.csv``."""
    sys.modules.setdefault("dgl.graphbolt", types.ModuleType("dgl.graphbolt"))
    from alignn.graphs import Graph
    from jarvis.core.atoms import Atoms

    with (data / "id_prop.csv").open() as handle:
        files = [row[0] for row in csv.reader(handle)]
    columns: dict[str, list[np.ndarray]] = {
        k: []
        for k in ("numbers", "frac", "lattice", "src", "dst", "images", "r", "lg_src", "lg_dst",
                  "cos")
    }  # fmt: skip
    counts = {part: [] for part in PARTS}
    for name in files:
        atoms = Atoms.from_cif(str(data / name))
        # the call of alignn/lmdb_dataset.py get_torch_dataset, with the trainer's settings
        g, lg = Graph.atom_dgl_multigraph(
            atoms,
            cutoff=8.0,
            max_neighbors=12,
            atom_features="cgcnn",
            compute_line_graph=True,
            use_canonize=True,
            cutoff_extra=3.0,
            neighbor_strategy="k-nearest",
            three_body_cutoff=3.5,
            dtype="float32",
        )
        src, dst = (t.numpy() for t in g.edges())
        lg_src, lg_dst = (t.numpy() for t in lg.edges())
        columns["numbers"].append(np.asarray(atoms.atomic_numbers, dtype=np.int64))
        columns["frac"].append(np.asarray(atoms.frac_coords, dtype=np.float64))
        columns["lattice"].append(np.asarray(atoms.lattice_mat, dtype=np.float64)[None])
        columns["src"].append(src.astype(np.int64))
        columns["dst"].append(dst.astype(np.int64))
        columns["images"].append(g.edata["images"].numpy().round().astype(np.int64))
        columns["r"].append(g.edata["r"].numpy().astype(np.float64))
        columns["lg_src"].append(lg_src.astype(np.int64))
        columns["lg_dst"].append(lg_dst.astype(np.int64))
        columns["cos"].append(lg.edata["h"].numpy().astype(np.float64))
        counts["atoms"].append(g.num_nodes())
        counts["bonds"].append(g.num_edges())
        counts["angles"].append(lg.num_edges())
    np.savez_compressed(
        out,
        ids=np.array([f.removesuffix(".cif") for f in files]),
        **{k: np.concatenate(v) for k, v in columns.items()},
        **{f"n_{part}": np.array(counts[part], dtype=np.int64) for part in PARTS},
    )
    print(f"{out}: {len(files)} crystals, {sum(counts['bonds'])} bonds, "
          f"{sum(counts['angles'])} angles")  # fmt: skip


def read(path: Path) -> dict[str, dict[str, np.ndarray]]:
    """id -> that crystal's arrays (indices local to the crystal)."""
    with np.load(path, allow_pickle=False) as stored:
        arrays = {k: stored[k] for k in stored.files}
    ends = {part: np.cumsum(arrays[f"n_{part}"]) for part in PARTS}
    per = {"numbers": "atoms", "frac": "atoms", "src": "bonds", "dst": "bonds",
           "images": "bonds", "r": "bonds", "lg_src": "angles", "lg_dst": "angles",
           "cos": "angles"}  # fmt: skip
    out = {}
    for i, crystal in enumerate(arrays["ids"]):
        item = {"lattice": arrays["lattice"][i]}
        for key, part in per.items():
            start = ends[part][i - 1] if i else 0
            item[key] = arrays[key][start : ends[part][i]]
        out[str(crystal)] = item
    return out


def crystal_graph(crystal: str, item: dict[str, np.ndarray], config):
    """matgnn's ``CrystalGraph`` of upstream's atoms, cell, bonds and line graph, checked
    against upstream's stored bond vectors and cosines."""
    import torch
    from pymatgen.core import Lattice, Structure

    from matgnn.graphs import build_graph
    from matgnn.graphs.geometry import bond_cosines, edge_vectors

    structure = Structure(Lattice(item["lattice"]), item["numbers"].tolist(), item["frac"])
    graph = build_graph(structure, config, name=crystal)  # atoms, cell, fingerprint stamp
    graph.edge_index = torch.from_numpy(np.stack([item["src"], item["dst"]]))
    # upstream's r = pos[dst] + n @ cell - pos[src] (its stored ``images`` hold n for the
    # first bond of each pair and again, not negated, for the reverse one: n is read off r);
    # matgnn's points the other way: r = pos[src] + offset @ cell - pos[dst], offset = -n
    shift = item["r"] @ np.linalg.inv(item["lattice"]) - (
        item["frac"][item["dst"]] - item["frac"][item["src"]]
    )
    images = np.rint(shift)
    if images.size and np.abs(shift - images).max() > 1e-3:
        raise ValueError(f"{crystal}: an upstream bond vector is not a lattice image")
    graph.cell_offset = torch.from_numpy(-images.astype(np.int64))
    graph.edge_type = torch.zeros(item["src"].size, dtype=torch.long)
    graph.lg_edge_index = torch.from_numpy(np.stack([item["lg_src"], item["lg_dst"]]))
    lattice = torch.as_tensor(item["lattice"])[None]
    pos = torch.as_tensor(item["frac"]) @ lattice[0]
    vectors = edge_vectors(pos, lattice, graph.edge_index, graph.cell_offset, None)
    cosines = bond_cosines(vectors, graph.lg_edge_index)
    bond_error = _largest(vectors + torch.as_tensor(item["r"]))
    cos_error = _largest(cosines - torch.as_tensor(item["cos"]))
    if bond_error > 1e-4 or cos_error > 1e-4:
        raise ValueError(
            f"{crystal}: matgnn's geometry of upstream's graph disagrees with upstream's "
            f"(bond vectors by {bond_error:.2g} Å, cosines by {cos_error:.2g})"
        )
    return graph


def _largest(difference) -> float:
    return float(difference.abs().max()) if difference.numel() else 0.0


def train(graphs_file: Path, run_dir: Path, overrides: list[str]) -> None:
    """``matgnn.train``'s run, with ``build_graphs`` answering from ``graphs_file``."""
    from pymatgen.core import Lattice, Structure

    import matgnn.data.datamodule as datamodule
    from matgnn.graphs.cache import BuiltGraphs
    from matgnn.train import compose_config, run

    upstream = read(graphs_file)

    def upstream_graphs(structures, config, ids=None, **_) -> BuiltGraphs:
        missing = [i for i in ids if i not in upstream]
        if missing:
            raise ValueError(f"{graphs_file}: no upstream graph of {missing[:5]}")
        graphs = []
        for crystal, structure in zip(ids, structures, strict=True):
            graph = crystal_graph(crystal, upstream[crystal], config)
            if not isinstance(structure, Structure):
                structure = Structure.from_str(structure, fmt="cif")
            ours = structure.composition.reduced_formula
            theirs = Structure(
                Lattice(upstream[crystal]["lattice"]),
                upstream[crystal]["numbers"].tolist(),
                upstream[crystal]["frac"],
            ).composition.reduced_formula
            if ours != theirs:  # (jarvis may reduce a cell to its primitive one)
                raise ValueError(f"{crystal}: upstream's cell is {theirs}, the task's {ours}")
            graphs.append(graph)
        return BuiltGraphs(graphs=graphs, ids=list(ids))

    datamodule.build_graphs = upstream_graphs
    run(compose_config(*overrides, output_dir=str(run_dir)))


RESULTS = Path(__file__).parent / "results" / "alignn_graphs.csv"
PRESETS = ("alignn", "alignn_upstream")


def _bonds(edge_index: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """The bonds as sorted rows ``(src, dst, n1, n2, n3)``: a multiset to compare."""
    rows = np.column_stack([edge_index.T, offsets]).astype(np.int64)
    return rows[np.lexsort(rows.T[::-1])]


def _contains(bonds: np.ndarray, reference: np.ndarray) -> bool:
    """Whether the multiset ``reference`` is part of the multiset ``bonds``."""
    from collections import Counter

    have = Counter(map(tuple, bonds.tolist()))
    need = Counter(map(tuple, reference.tolist()))
    return all(have[key] >= count for key, count in need.items())


def compare(graphs_file: Path) -> None:
    """Per crystal: upstream's bond and angle counts, and matgnn's presets' on upstream's own
    atoms and cell (so that only the graph rules differ, not the reading of the CIF), and
    whether the bonds are the same multiset (atoms, cell shifts and multiplicities)."""
    import pandas as pd
    from pymatgen.core import Lattice, Structure

    from matgnn.graphs import GraphConfig, build_graph

    configs = {name: GraphConfig.preset(name) for name in PRESETS}
    rows = []
    for crystal, item in read(graphs_file).items():
        structure = Structure(Lattice(item["lattice"]), item["numbers"].tolist(), item["frac"])
        upstream = crystal_graph(crystal, item, configs["alignn_upstream"])
        reference = _bonds(upstream.edge_index.numpy(), upstream.cell_offset.numpy())
        row = {"id": crystal, "atoms": len(structure), "upstream_bonds": len(reference),
               "upstream_angles": upstream.lg_edge_index.shape[1]}  # fmt: skip
        for name, config in configs.items():
            graph = build_graph(structure, config, name=crystal)
            bonds = _bonds(graph.edge_index.numpy(), graph.cell_offset.numpy())
            row[f"{name}_bonds"] = len(bonds)
            row[f"{name}_angles"] = graph.lg_edge_index.shape[1]
            row[f"{name}_same_bonds"] = bool(
                bonds.shape == reference.shape and np.array_equal(bonds, reference)
            )
            row[f"{name}_holds_upstream_bonds"] = _contains(bonds, reference)
        rows.append(row)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(RESULTS, index=False)


def table() -> str:
    import pandas as pd

    if not RESULTS.is_file():
        raise SystemExit(f"{RESULTS} missing: run --collect <graphs.npz> first")
    frame = pd.read_csv(RESULTS)
    lines = [
        "| matgnn preset | crystals | same bond count | same bond and angle counts | "
        "same bonds (atoms, cell shifts, multiplicity) | upstream's bonds all among "
        "matgnn's | bonds (upstream: "
        f"{frame['upstream_bonds'].sum():,}) | angles (upstream: "
        f"{frame['upstream_angles'].sum():,}) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name in PRESETS:
        bonds = frame[f"{name}_bonds"] == frame["upstream_bonds"]
        angles = frame[f"{name}_angles"] == frame["upstream_angles"]
        lines.append(
            f"| `{name}` | {len(frame)} | {int(bonds.sum())} | {int((bonds & angles).sum())} | "
            f"{int(frame[f'{name}_same_bonds'].sum())} | "
            f"{int(frame[f'{name}_holds_upstream_bonds'].sum())} | "
            f"{frame[f'{name}_bonds'].sum():,} | "
            f"{frame[f'{name}_angles'].sum():,} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    command, *arguments = sys.argv[1:] or [""]
    if command == "export" and len(arguments) == 2:
        export(Path(arguments[0]), Path(arguments[1]))
    elif command == "train" and len(arguments) >= 2:
        train(Path(arguments[0]), Path(arguments[1]), arguments[2:])
    elif command.startswith("--"):
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: catalog.py
        from catalog import table_script

        table_script(
            __doc__.split("\n\n")[0], "fidelity-alignn-graphs", lambda p: compare(p), table
        )
    else:
        raise SystemExit(__doc__)
