"""Invariance of every model on crystals the tests never saw (``matgnn.testing``).

For each model config (``matgnn/configs/model/``; untrained, default size, float64) and ``--n``
MP crystals of ``<data_dir>/mp36k`` that are not in the shipped sample (at most ``--max-atoms``
atoms; the shipped sample is used when the shared data is absent), the relative change of the
output under rotation, translation, permutation, another unit cell and the supercells 2x1x1
and 1x2x2. ``--published`` also measures the published, cell-dependent graph semantics
(CGCNN's exact 12-neighbour cut, Matformer's lattice edges of the given cell, PotNet's pairs of
the given cell) for comparison.

    PYTHONPATH=. .venv/bin/python benchmarks/invariance.py --measure --n 40 --published \
        [--out benchmarks/results/invariance] [--update docs/results/invariance.md]
    PYTHONPATH=. .venv/bin/python benchmarks/invariance.py --update docs/results/invariance.md

``--measure`` stores every crystal's change per model, graph and transform
(``<out>/changes.csv``; a crystal a model cannot take is a row with its reason, never dropped
unseen) and the run's provenance (``<out>/run.json``); the docs block ``invariance`` (the
largest change over the crystals, and how many crystals each row covers) is written from those
two files alone.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import pandas as pd

REPOSITORY = Path(__file__).resolve().parents[1]
if str(REPOSITORY) not in sys.path:
    sys.path.insert(0, str(REPOSITORY))

from benchmarks.catalog import write_block  # noqa: E402

RESULTS = REPOSITORY / "benchmarks" / "results" / "invariance"
TRANSFORMS = (
    "rotation",
    "translation",
    "permutation",
    "other unit cell",
    "supercell 2x1x1",
    "supercell 1x2x2",
)
PUBLISHED = {
    "cgcnn": ["++model.graph.keep_ties=false", "++model.graph.tie_weights=false"],
    "matformer": ["++model.graph.cell=as_given", "++model.graph.lattice_edge_basis=cell"],
    "potnet": ["++model.graph.cell=as_given"],
}
LABELS = {
    ("cgcnn", "published"): "CGCNN (published exact cut)",
    ("matformer", "published"): "Matformer (published, cell as given)",
    ("potnet", "published"): "PotNet (published, cell as given)",
}
NAMES = {"cgcnn": "CGCNN", "alignn": "ALIGNN", "matformer": "Matformer", "potnet": "PotNet"}


def unseen_structures(data_dir: Path, n: int, max_atoms: int, seed: int) -> tuple[list, str]:
    from pymatgen.core import Structure

    from matgnn.data.samples import mp_sample_frame

    shipped = set(mp_sample_frame()["mp_id"])
    path = data_dir / "mp36k" / "mp36k_with_ehull.csv.gz"
    if path.is_file():
        frame = pd.read_csv(path)
        frame = frame[~frame["mp_id"].isin(shipped)]
        source = f"{path.name} of mp36k, not in the shipped sample"
    else:
        frame, source = mp_sample_frame(), "the shipped sample (shared data absent)"
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
    import torch
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate

    from matgnn.config_dir import CONFIG_DIR

    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base=None):
        config = compose(overrides=[f"+model={name}", *overrides]).model
    torch.manual_seed(0)
    return instantiate(config)


def changes_of(model, structures, name: str, graph: str) -> list[dict]:
    """One row per crystal and transform (or one row with the reason the model refused it)."""
    from matgnn.testing import assert_invariant

    rows = []
    for mp_id, structure in structures:
        base = {"model": name, "graph": graph, "id": mp_id, "atoms": len(structure)}
        try:
            changes = assert_invariant(model, structure, rtol=1e30, atol=1e-12)
        except ValueError as exc:  # e.g. an element outside the CGCNN table
            rows.append({**base, "transform": "", "change": float("nan"), "refused": str(exc)})
            continue
        rows += [{**base, "transform": t, "change": changes[t], "refused": ""} for t in TRANSFORMS]
    return rows


def measure(args: argparse.Namespace) -> None:
    from benchmarks._process import environment
    from matgnn.config_dir import plain_structure_options

    structures, source = unseen_structures(args.data_dir, args.n, args.max_atoms, args.seed)
    print(f"{len(structures)} crystals from {source}")
    rows = []
    for name in args.models or plain_structure_options("model"):
        variants = [("default", [])]
        if args.published and name in PUBLISHED:
            variants.append(("published", PUBLISHED[name]))
        for graph, overrides in variants:
            start = time.perf_counter()
            rows += changes_of(make(name, overrides), structures, name, graph)
            print(f"{name} ({graph}): {time.perf_counter() - start:.0f} s", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(args.out / "changes.csv", index=False, float_format="%.3e")
    measured = environment()  # date, commit (marked when uncommitted), torch, cores, CPU
    run = {
        "command": "benchmarks/invariance.py " + " ".join(sys.argv[1:]),
        **measured,
        "date": measured["date"][:10],
        "crystals": len(structures),
        "source": source,
        "selection": f"seeded shuffle (seed {args.seed}), at most {args.max_atoms} atoms",
        "models": "untrained default configs (torch.manual_seed(0)), float64, eval mode",
    }
    (args.out / "run.json").write_text(json.dumps(run, indent=1) + "\n")


def _format(value: float) -> str:
    if value == 0:
        return "0"
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 0.1:
        return f"{value:.2g}"
    return f"{value:.0e}"


def table(results: Path = RESULTS) -> str:
    """The docs block: the largest relative change over the crystals per model and transform,
    from ``changes.csv`` and ``run.json`` alone."""
    for file in ("changes.csv", "run.json"):
        if not (results / file).is_file():
            raise FileNotFoundError(
                f"{results / file}: no stored invariance run; run benchmarks/invariance.py "
                "--measure first"
            )
    run = json.loads((results / "run.json").read_text())
    frame = pd.read_csv(results / "changes.csv", keep_default_na=False, na_values=[""])
    lines = [
        "| model (graph) | crystals checked | " + " | ".join(TRANSFORMS) + " |",
        "|---|---:|" + "---:|" * len(TRANSFORMS),
    ]
    refused_notes = []
    for (model, graph), rows in frame.groupby(["model", "graph"], sort=False):
        refused = rows[rows["refused"].notna() & (rows["refused"] != "")]
        measured = rows[rows["transform"].notna() & (rows["transform"] != "")]
        if measured["change"].isna().any() or not (measured["change"] >= 0).all():
            raise ValueError(f"{results / 'changes.csv'}: {model} ({graph}) has a change that "
                             "is not a finite number")  # fmt: skip
        worst = measured.groupby("transform")["change"].max()
        label = LABELS.get((model, graph), NAMES.get(model, model))
        checked = measured["id"].nunique()
        lines.append(
            f"| {label} | {checked} of {run['crystals']} | "
            + " | ".join(_format(float(worst[t])) for t in TRANSFORMS)
            + " |"
        )
        for row in refused.itertuples():
            refused_notes.append(f"{label} refused {row.id}: {row.refused}")
    lines += [
        "",
        f"Largest relative change of the output over the crystals checked; {run['crystals']} "
        f"crystals from {run['source']} ({run['selection']}); {run['models']}. Measured "
        f"{run['date']} at commit {run['commit']}, torch {run['torch']}: `{run['command']}`.",
    ]
    if refused_notes:
        lines += ["", "Refused (not in the maxima): " + "; ".join(refused_notes) + "."]
    return "\n".join(lines)


TIES = REPOSITORY / "benchmarks" / "results" / "cgcnn_tie_handling_mp_sample.csv"
TIE_LABELS = {
    "published_exact_cut": "CGCNN's exact 12-neighbour cut (published; not invariant)",
    "ties_kept_unweighted": "ties with the 12th kept, each with weight 1 (invariant)",
    "ties_kept_shared_slots_default": "ties kept, sharing the slots left (invariant; default)",
}


def cost_table(path: Path = TIES) -> str:
    """The docs block ``invariance-cost``: CGCNN's test MAE with each way of handling the
    neighbours tied with the 12th, from the stored per-seed results."""
    frame = pd.read_csv(path)
    lines = ["| CGCNN graph | seeds | test MAE (eV/atom), mean ± std | per seed |",
             "|---|---:|---:|---|"]  # fmt: skip
    for graph, rows in frame.groupby("graph", sort=False):
        values = rows.sort_values("seed")["test_mae_eV_per_atom"]
        seeds = ", ".join(str(s) for s in sorted(rows["seed"]))
        lines.append(
            f"| {TIE_LABELS[graph]} | {len(values)} ({seeds}) | {values.mean():.4f} ± "
            f"{values.std(ddof=1):.4f} | {' / '.join(f'{v:.4f}' for v in values)} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--measure", action="store_true", help="run the models (else: table)")
    parser.add_argument("--n", type=int, default=40)
    parser.add_argument("--max-atoms", type=int, default=16)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--models", nargs="*", default=[], help="default: every model")
    parser.add_argument("--data-dir", type=Path, default=REPOSITORY.parent / "shared" / "data")
    parser.add_argument("--published", action="store_true")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--update", nargs="*", default=[], help="docs pages to rewrite")
    args = parser.parse_args()
    if args.measure:
        measure(args)
    text = table(args.out)
    print(text)
    write_block(args.update, "invariance", text)


if __name__ == "__main__":
    main()
