"""ARISE-style evaluation (issue 15): a prototype classifier trained on pristine AFLOW prototypes
(``task=arise_prototypes``), tested on defective copies, next to spglib on the same structures.

    python benchmarks/arise/evaluate.py <run>/checkpoints/best.ckpt benchmarks/arise/results \
        [--draws 2] [--passes 30] [--limit N]

For every kept prototype (matgnn.data.sources.aflow_prototypes), every defect level of
``LEVELS`` and ``--draws`` random draws, the >= 64-atom supercell is displaced and/or thinned
(seeds differ from the training task's test draws). Per structure:

* the model (its checkpoint's estimator, e.g. MC dropout, and calibration): the most probable
  label, its probability, the predictive entropy and the mutual information;
* spglib (pymatgen ``SpacegroupAnalyzer``) at ``symprec`` 1e-3 Å ("tight") and 0.1 Å ("loose"),
  angle tolerance 5°: correct when it returns the space group of the AFLOW label (spglib names
  a space group, not a prototype, so this is the more lenient criterion);
* two lookups that see no structure: the expected accuracy of picking at random among the kept
  labels whose pristine reduced formula equals the structure's ("formula lookup"; vacancies
  change the formula), or whose chemical system (set of elements) does ("elements lookup";
  vacancies rarely change it). They show how much the elements alone give away.

Writes ``structures.csv.gz`` (one row per structure), ``levels.csv`` (per level: counts,
accuracies, mean entropy and mutual information; for reading), ``accuracy.png`` and
``mutual_information.png``; ``--update docs/results/uncertainty.md`` refreshes the block
``arise``. The block's table is aggregated per level from the per-structure
``structures.csv.gz`` (:func:`read_levels`), never from ``levels.csv``:

    python benchmarks/arise/evaluate.py benchmarks/arise/results \
        --update docs/results/uncertainty.md    # the table of the stored structures
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import sys
import time
import warnings
from collections import defaultdict
from pathlib import Path

import numpy as np
from tqdm import tqdm

from matgnn.data.sources.aflow_prototypes import (
    defect_id,
    defective,
    hash_seed,
    prototype_labels,
    prototypes,
)
from matgnn.graphs import build_graph
from matgnn.uncertainty import load_uncertain_model

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: catalog.py

#: (displacement fraction of the NN distance, vacancy fraction); ARISE's grid, shortened
LEVELS = (
    (0.0, 0.0),
    (0.001, 0.0),
    (0.006, 0.0),
    (0.01, 0.0),
    (0.02, 0.0),
    (0.04, 0.0),
    (0.0, 0.01),
    (0.0, 0.05),
    (0.0, 0.10),
    (0.0, 0.20),
    (0.0, 0.25),
    (0.01, 0.05),
    (0.02, 0.10),
    (0.04, 0.20),
)
SPGLIB = {"tight": 1e-3, "loose": 0.1}
#: seeds of these draws differ from the task's (which uses seed 0)
SEED = 1000
RESULTS = Path(__file__).parent / "results"
STRUCTURES = "structures.csv.gz"
#: structures.csv.gz: columns that hold numbers (the others: id, label, predicted)
INTEGER_COLUMNS = ("atoms", "spglib_tight", "spglib_tight_correct", "spglib_loose",
                   "spglib_loose_correct", "correct")  # fmt: skip
FLOAT_COLUMNS = ("displacement", "vacancies", "formula_lookup", "elements_lookup",
                 "probability", "entropy", "mutual_information")  # fmt: skip


def spacegroup(structure, symprec: float) -> int:
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return SpacegroupAnalyzer(structure, symprec=symprec).get_space_group_number()
    except Exception:  # spglib gives up on some heavily defective cells
        return 0


def lookup(table: dict[str, set[str]], key: str, label: str) -> float:
    """Expected accuracy of a random pick among the labels filed under ``key``."""
    candidates = table.get(key, set())
    return 1 / len(candidates) if label in candidates else 0.0


def level_name(displacement: float, vacancies: float) -> str:
    return f"displacement {displacement:.1%}, vacancies {vacancies:.0%}"


def evaluate(checkpoint: Path, out: Path, draws: int, passes: int | None, limit: int | None):
    model = load_uncertain_model(checkpoint)
    if passes is not None and hasattr(model.estimator, "passes"):
        model.estimator.passes = passes
    labels = prototype_labels()
    chosen = prototypes()[:limit] if limit else prototypes()
    by_formula: dict[str, set[str]] = defaultdict(set)
    by_elements: dict[str, set[str]] = defaultdict(set)
    for p in prototypes():
        by_formula[p.structure.composition.reduced_formula].add(p.label)
        by_elements[p.structure.composition.chemical_system].add(p.label)
    rows, graphs = [], []
    start = time.perf_counter()
    jobs = [
        (p, j, level, r) for p in chosen for j, level in enumerate(LEVELS) for r in range(draws)
    ]
    for p, j, (displacement, vacancies), r in tqdm(jobs, desc="defects, spglib, graphs"):
        structure = defective(p.structure, displacement, vacancies, hash_seed(SEED, p.index, j, r))
        row = {
            "id": defect_id(p, displacement, vacancies, r),
            "label": p.label,
            "displacement": displacement,
            "vacancies": vacancies,
            "atoms": len(structure),
            "formula_lookup": lookup(by_formula, structure.composition.reduced_formula, p.label),
            "elements_lookup": lookup(by_elements, structure.composition.chemical_system, p.label),
        }
        for name, symprec in SPGLIB.items():
            row[f"spglib_{name}"] = spacegroup(structure, symprec)
            row[f"spglib_{name}_correct"] = int(row[f"spglib_{name}"] == p.space_group)
        rows.append(row)
        graphs.append(build_graph(structure, model.graph_config(), name=row["id"]))
    prepared = time.perf_counter() - start
    start = time.perf_counter()
    result = model.predict_graphs(graphs, draws=model.raw_draws(graphs, progress=True))
    predicted = time.perf_counter() - start
    summary = result.summaries[model.outputs[0].name]
    for k, row in enumerate(rows):
        probability = summary["probability"][k]
        row["predicted"] = labels[int(probability.argmax())]
        row["correct"] = int(row["predicted"] == row["label"])
        row["probability"] = float(probability.max())
        row["entropy"] = float(summary["entropy"][k])
        row["mutual_information"] = float(summary["mutual_information"][k])
    out.mkdir(parents=True, exist_ok=True)
    with gzip.open(out / STRUCTURES, "wt", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    levels = summarize_levels(rows)
    with open(out / "levels.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(levels[0]))
        writer.writeheader()
        writer.writerows(levels)
    run = {
        "checkpoint": str(checkpoint),
        "uncertainty": model.settings(),
        "prototypes": len(chosen),
        "classes": len(labels),
        "draws": draws,
        "structures": len(rows),
        "seconds_defects_spglib_graphs": round(prepared, 1),
        "seconds_model": round(predicted, 1),
    }
    (out / "run.json").write_text(json.dumps(run, indent=2))
    plots(rows, out)
    return levels


def summarize_levels(rows: list[dict]) -> list[dict]:
    grouped: dict[tuple, list[dict]] = defaultdict(list)
    for row in rows:
        grouped[(row["displacement"], row["vacancies"])].append(row)
    levels = []
    for (displacement, vacancies), members in grouped.items():
        levels.append(
            {
                "displacement": displacement,
                "vacancies": vacancies,
                "structures": len(members),
                "model_accuracy": np.mean([m["correct"] for m in members]),
                "spglib_tight_accuracy": np.mean([m["spglib_tight_correct"] for m in members]),
                "spglib_loose_accuracy": np.mean([m["spglib_loose_correct"] for m in members]),
                "formula_lookup_accuracy": np.mean([m["formula_lookup"] for m in members]),
                "elements_lookup_accuracy": np.mean([m["elements_lookup"] for m in members]),
                "mean_entropy": np.mean([m["entropy"] for m in members]),
                "mean_mutual_information": np.mean([m["mutual_information"] for m in members]),
                "median_mutual_information": np.median([m["mutual_information"] for m in members]),
            }
        )
    return levels


def plots(rows: list[dict], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    levels = summarize_levels(rows)
    series = {
        "displacements (no vacancies)": [x for x in levels if x["vacancies"] == 0],
        "vacancies (no displacement)": [
            x for x in levels if x["displacement"] == 0 and x["vacancies"] > 0
        ],
    }
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for ax, (title, chosen) in zip(axes, series.items(), strict=True):
        key = "displacement" if title.startswith("displacements") else "vacancies"
        x = [100 * c[key] for c in chosen]
        for column, label in (
            ("model_accuracy", "matgnn (MC dropout)"),
            ("spglib_tight_accuracy", "spglib 1e-3 Å (space group)"),
            ("spglib_loose_accuracy", "spglib 0.1 Å (space group)"),
            ("formula_lookup_accuracy", "formula lookup (no structure)"),
            ("elements_lookup_accuracy", "elements lookup (no structure)"),
        ):
            ax.plot(x, [100 * c[column] for c in chosen], "o-", label=label)
        ax.set(
            xlabel=f"{key} (% of {'NN distance' if key == 'displacement' else 'atoms'})",
            title=title,
        )
        ax.set_xscale("symlog", linthresh=0.1 if key == "displacement" else 1)
    axes[0].set_ylabel("accuracy (%)")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "accuracy.png", dpi=120)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(10, 4))
    names, values = [], []
    for level in levels:
        members = [
            r["mutual_information"]
            for r in rows
            if (r["displacement"], r["vacancies"]) == (level["displacement"], level["vacancies"])
        ]
        names.append(f"d {level['displacement']:.1%}\nv {level['vacancies']:.0%}")
        values.append(members)
    ax.boxplot(values, showfliers=False)
    ax.set_xticks(range(1, len(names) + 1), names, fontsize=7)
    ax.set(
        ylabel="mutual information (nats)", title="MC-dropout mutual information by defect level"
    )
    fig.tight_layout()
    fig.savefig(out / "mutual_information.png", dpi=120)
    plt.close(fig)


def markdown_table(levels: list[dict]) -> str:
    lines = [
        "| displacement | vacancies | structures | matgnn | spglib 1e-3 Å | spglib 0.1 Å "
        "| formula lookup | elements lookup | mean entropy | mean MI (nats) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for x in levels:
        lines.append(
            f"| {x['displacement']:.1%} | {x['vacancies']:.0%} | {x['structures']} "
            f"| {x['model_accuracy']:.1%} | {x['spglib_tight_accuracy']:.1%} "
            f"| {x['spglib_loose_accuracy']:.1%} | {x['formula_lookup_accuracy']:.1%} "
            f"| {x['elements_lookup_accuracy']:.1%} | {x['mean_entropy']:.3f} "
            f"| {x['mean_mutual_information']:.3f} |"
        )
    return "\n".join(lines)


def read_structures(path: Path) -> list[dict]:
    """The stored per-structure rows of :func:`evaluate` (``structures.csv.gz``), numbers
    parsed; a missing file, column or value is an error naming the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: the per-structure results are not stored (benchmarks/arise/evaluate.py "
            "<checkpoint> <folder> writes them)"
        )
    with gzip.open(path, "rt", newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        raise ValueError(f"{path}: no structures")
    missing = sorted({*INTEGER_COLUMNS, *FLOAT_COLUMNS, "id", "label"} - set(rows[0]))
    if missing:
        raise ValueError(f"{path}: no column {missing}")
    parsed = []
    for number, row in enumerate(rows, start=2):
        if any(v is None or v == "" for v in row.values()):
            raise ValueError(f"{path}, line {number}: an empty value")
        parsed.append(
            {
                **row,
                **{k: int(row[k]) for k in INTEGER_COLUMNS},
                **{k: float(row[k]) for k in FLOAT_COLUMNS},
            }
        )
    return parsed


def read_levels(path: Path) -> list[dict]:
    """The per-level summary (:func:`summarize_levels`, the table's rows) aggregated from the
    stored per-structure results: ``path`` is ``structures.csv.gz``, the folder that holds it,
    or a file beside it (e.g. ``levels.csv``, which is then not read: the levels are always
    computed anew from the structures)."""
    path = Path(path)
    if path.name != STRUCTURES:
        path = (path if path.is_dir() else path.parent) / STRUCTURES
    return summarize_levels(read_structures(path))


def table(results: Path = RESULTS) -> str:
    """The docs block ``arise``: the table of the per-structure results stored in ``results``."""
    return markdown_table(read_levels(results / STRUCTURES))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", type=Path, nargs="?")
    parser.add_argument("out", type=Path)
    parser.add_argument("--draws", type=int, default=2)
    parser.add_argument("--passes", type=int, default=None)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--update", nargs="*", default=[], help="docs pages to refresh")
    args = parser.parse_args()
    if args.checkpoint is not None:
        evaluate(args.checkpoint, args.out, args.draws, args.passes, args.limit)
    if args.update:
        from catalog import write_block

        write_block(args.update, "arise", markdown_table(read_levels(args.out / STRUCTURES)))


if __name__ == "__main__":
    main()
