"""Invariance of every model on crystals the tests never saw (``matgnn.testing``).

For each model config (``matgnn/configs/model/``; untrained, default size, float64) and ``--n`` MP
crystals of ``<data_dir>/mp36k`` that are not in the shipped sample (at most ``--max-atoms``
atoms; the shipped sample is used when the shared data is absent), the largest relative change
of the output under rotation, translation, permutation, another unit cell and the supercells
2x1x1 and 1x2x2. ``--published`` also measures the published, cell-dependent graph semantics
(CGCNN's exact 12-neighbour cut, Matformer's lattice edges of the given cell, PotNet's pairs of
the given cell) for comparison.

    PYTHONPATH=. .venv/bin/python benchmarks/invariance.py --n 20 --published
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import pandas as pd
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from pymatgen.core import Structure

from matgnn.config_dir import CONFIG_DIR, plain_structure_options
from matgnn.data.samples import mp_sample_frame
from matgnn.testing import assert_invariant

PUBLISHED = {
    "cgcnn": ["++model.graph.keep_ties=false", "++model.graph.tie_weights=false"],
    "matformer": ["++model.graph.cell=as_given", "++model.graph.lattice_edge_basis=cell"],
    "potnet": ["++model.graph.cell=as_given"],
}


def unseen_structures(data_dir: Path, n: int, max_atoms: int, seed: int) -> tuple[list, str]:
    shipped = set(mp_sample_frame()["mp_id"])
    path = data_dir / "mp36k" / "mp36k_with_ehull.csv.gz"
    if path.is_file():
        frame = pd.read_csv(path)
        frame, source = frame[~frame["mp_id"].isin(shipped)], f"{path}, not in the shipped sample"
    else:
        frame, source = mp_sample_frame(), "shipped sample (shared data absent)"
    picked = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for row in frame.sample(frac=1.0, random_state=seed).itertuples():
            structure = Structure.from_str(row.cif, fmt="cif")
            if len(structure) <= max_atoms:
                picked.append((row.mp_id, structure))
            if len(picked) == n:
                break
    return picked, source


def make(name: str, overrides: list[str]):
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base=None):
        config = compose(overrides=[f"+model={name}", *overrides]).model
    torch.manual_seed(0)
    return instantiate(config)


def largest_changes(model, structures) -> dict[str, float]:
    worst: dict[str, float] = {}
    for _, structure in structures:
        try:
            changes = assert_invariant(model, structure, rtol=1e30, atol=1e-12)
        except ValueError as exc:  # e.g. an element outside the CGCNN table
            print(f"  skipped: {exc}")
            continue
        for label, value in changes.items():
            worst[label] = max(worst.get(label, 0.0), value)
    return worst


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=20)
    parser.add_argument("--max-atoms", type=int, default=16)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--data-dir", type=Path, default=Path("../shared/data"))
    parser.add_argument("--published", action="store_true")
    args = parser.parse_args()
    structures, source = unseen_structures(args.data_dir, args.n, args.max_atoms, args.seed)
    print(f"{len(structures)} crystals from {source}: {[i for i, _ in structures]}")
    rows = []
    for name in plain_structure_options("model"):
        variants = [("default", [])]
        if args.published and name in PUBLISHED:
            variants.append(("published", PUBLISHED[name]))
        for label, overrides in variants:
            start = time.perf_counter()
            worst = largest_changes(make(name, overrides), structures)
            rows.append({"model": name, "graph": label, **worst})
            print(f"{name} ({label}): {time.perf_counter() - start:.0f} s")
    table = pd.DataFrame(rows).set_index(["model", "graph"])
    print("\nlargest relative change of the output (float64, untrained default models)")
    print(table.to_string(float_format=lambda v: f"{v:.1e}"))


if __name__ == "__main__":
    main()
