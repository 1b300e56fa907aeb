"""Predict with a trained checkpoint:
``python -m matgnn.predict ckpt=<path> input=<file or folder> [output=<csv>] [batch_size=64]``.

Reads CIF, POSCAR/CONTCAR, extxyz (anything pymatgen or ASE reads); no id_prop.csv needed.
Every readable, valid structure gets a row (file name, prediction); every rejected file is
printed with its reason. Exit status: 0 when every file was predicted, 1 when some were
rejected, 2 on a usage error.
"""

from __future__ import annotations

import csv
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch_geometric.data import Batch

from matgnn.graphs import build_graph
from matgnn.graphs.data import CrystalGraph
from matgnn.graphs.structures import StructureLike
from matgnn.models import CrystalModel


@dataclass
class Predictions:
    """Names and main-output predictions of the accepted inputs; reasons for the rejected."""

    names: list[str] = field(default_factory=list)
    values: list[torch.Tensor] = field(default_factory=list)
    rejected: dict[str, str] = field(default_factory=dict)


@torch.no_grad()
def predict(
    model: CrystalModel,
    structures: Sequence[StructureLike],
    names: Sequence[str] | None = None,
    batch_size: int = 64,
) -> Predictions:
    """Build each input's graph with ``model.graph_config()``, run the model in eval mode.

    Invalid inputs (unreadable, empty, zero volume, NaN, overlapping atoms, unknown elements,
    disordered sites, ...) are collected in ``rejected`` by name instead of raising.
    """
    names = [str(n) for n in (names if names is not None else range(len(structures)))]
    model.eval()
    result = Predictions()
    graphs: list[tuple[str, CrystalGraph]] = []
    for name, structure in zip(names, structures, strict=True):
        try:
            graphs.append((name, build_graph(structure, model.graph_config(), name=name)))
        except ValueError as exc:
            result.rejected[name] = str(exc)
    for start in range(0, len(graphs), batch_size):
        chunk = graphs[start : start + batch_size]
        try:
            out = model(Batch.from_data_list([g for _, g in chunk]))["y"]
        except ValueError:  # e.g. an element outside the CGCNN table: find which, one by one
            for name, graph in chunk:
                try:
                    value = model(Batch.from_data_list([graph]))["y"][0]
                except ValueError as single:
                    result.rejected[name] = str(single)
                else:
                    result.names.append(name)
                    result.values.append(value)
            continue
        result.names.extend(name for name, _ in chunk)
        result.values.extend(out)
    return result


def structure_files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
    return [path]


def main(argv: Sequence[str] | None = None) -> int:
    args = dict(a.split("=", 1) for a in (argv if argv is not None else sys.argv[1:]) if "=" in a)
    if "ckpt" not in args or "input" not in args:
        print(__doc__, file=sys.stderr)
        return 2
    from matgnn.training.checkpoint import load_model

    model = load_model(args["ckpt"])
    files = structure_files(Path(args["input"]))
    result = predict(model, files, [f.name for f in files], int(args.get("batch_size", 64)))
    output = Path(args.get("output", "predictions.csv"))
    with open(output, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "prediction"])
        for name, value in zip(result.names, result.values, strict=True):
            flat = value.flatten().tolist()
            writer.writerow([name, *flat])
    print(f"predicted {len(result.names)} of {len(files)} files -> {output}")
    for name, reason in result.rejected.items():
        print(f"rejected {name}: {reason}")
    return 1 if result.rejected else 0


if __name__ == "__main__":
    sys.exit(main())
