"""Prediction tables: the one CSV layout that ``matgnn.train`` (test set) and
``matgnn.predict`` both write.

Crystal-level outputs go to one row per crystal: ``id``, then for each output its target
columns (when targets are known) and its prediction columns (``<name>`` /
``predicted_<name>``; ``<name>_<i>`` for vectors; ``<name>_xx`` ... ``<name>_zz`` for
tensors; ``predicted_<name>`` label and ``probability_<name>_<class>`` for classifiers).
Atom-level outputs go to a second file (``<stem>_atoms.csv``), one row per atom:
``id, atom, Z``, then the same columns.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np

from matgnn.outputs.base import Output


def prediction_table(
    outputs: Sequence[Output],
    ids: Sequence[str],
    predictions: Mapping[str, Sequence[np.ndarray]],
    targets: Mapping[str, Sequence[np.ndarray]] | None = None,
    atomic_numbers: Sequence[np.ndarray] | None = None,
    summaries: Mapping[str, Mapping[str, np.ndarray]] | None = None,
    crystal_columns: Mapping[str, Sequence] | None = None,
) -> tuple[list[str], list[list]]:
    """Header and rows for ``outputs`` (all of one level). Atom-level outputs need
    ``atomic_numbers`` (one array per crystal) and give one row per atom. With ``summaries``
    (``{output: {field: [rows, ...]}}``, an estimator's, rows in table order) each output's
    columns are its :meth:`~matgnn.outputs.Output.uncertainty_columns`, else its prediction
    columns. ``crystal_columns`` (``{name: one value per crystal}``: numbers, e.g.
    ``ood_score``, or strings, e.g. ``unseen_elements``) come last, on the crystal-level table
    only."""
    per_atom = bool(outputs) and outputs[0].level == "atom"
    if any(o.level != outputs[0].level for o in outputs):
        raise ValueError("prediction_table: outputs of mixed levels")
    header = ["id", *(["atom", "Z"] if per_atom else [])]
    spread = (
        {o.name: o.uncertainty_columns(summaries[o.name]) for o in outputs} if summaries else {}
    )
    for output in outputs:
        header += output.columns() if targets is not None else []
        header += list(spread[output.name]) if summaries else output.prediction_columns()
    extra = dict(crystal_columns or {}) if not per_atom else {}
    header += list(extra)
    rows: list[list] = []
    for k, sid in enumerate(ids):
        atoms = range(len(atomic_numbers[k])) if per_atom else [None]
        for atom in atoms:
            row: list = [sid, *([atom, int(atomic_numbers[k][atom])] if per_atom else [])]
            for output in outputs:
                if targets is not None:
                    value = targets[output.name][k]
                    row += output.target_values(value if atom is None else value[atom])
                if summaries:
                    row += [column[len(rows)] for column in spread[output.name].values()]
                else:
                    value = predictions[output.name][k]
                    row += output.prediction_values(value if atom is None else value[atom])
            row += [cell if isinstance(cell := column[k], str) else float(cell)
                    for column in extra.values()]  # fmt: skip
            rows.append(row)
    return header, rows


def write_level_tables(
    path: str | Path,
    outputs: Sequence[Output],
    table: Callable[[list[Output]], tuple[list[str], list[list]]],
    always_crystal_table: bool = False,
) -> list[Path]:
    """Write ``path`` (crystal-level outputs) and ``<stem>_atoms.csv`` beside it (atom-level
    outputs), each only when there are such outputs (the crystal one also without, with
    ``always_crystal_table``), with the header and rows that ``table(outputs of that level)``
    gives; returns the files written."""
    path = Path(path)
    written = []
    for level, target in (("crystal", path), ("atom", path.with_name(f"{path.stem}_atoms.csv"))):
        chosen = [o for o in outputs if o.level == level]
        if not chosen and not (level == "crystal" and always_crystal_table):
            continue
        header, rows = table(chosen)
        with open(target, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(header)
            writer.writerows(rows)
        written.append(target)
    return written


def write_prediction_tables(
    path: str | Path,
    outputs: Sequence[Output],
    ids: Sequence[str],
    predictions: Mapping[str, Sequence[np.ndarray]],
    targets: Mapping[str, Sequence[np.ndarray]] | None = None,
    atomic_numbers: Sequence[np.ndarray] | None = None,
    summaries: Mapping[str, Mapping[str, np.ndarray]] | None = None,
    crystal_columns: Mapping[str, Sequence] | None = None,
) -> list[Path]:
    """The prediction tables (:func:`prediction_table`) of ``outputs``, written by
    :func:`write_level_tables`; returns the files written."""
    return write_level_tables(
        path,
        outputs,
        lambda chosen: prediction_table(
            chosen, ids, predictions, targets, atomic_numbers, summaries, crystal_columns
        ),
        always_crystal_table=bool(crystal_columns),  # e.g. ood_score of a per-atom task
    )
