"""Our Matbench scores next to the leaderboard's, as a Markdown table written from the
submission folders (never by hand):

    python benchmarks/matbench/leaderboard.py [--root benchmarks/matbench] [--update FILE ...]

For every ``matbench_v0.1_matgnn_*`` folder under ``--root``: the tasks of ``results.json.gz``
(read back through matbench, which validates them: leaderboard-comparable) and of
``partial_scores.json`` (partial copies: marked, not comparable), and a per-fold table from the
folds' records. ``--update`` replaces the blocks between ``<!-- matbench-leaderboard:start -->``
/ ``<!-- matbench-leaderboard:end -->`` and ``<!-- matbench-folds:start -->`` /
``<!-- matbench-folds:end -->`` in each file; without it the tables are printed.

Test rows filled with the fold's training mean (``unpredictable=train_mean``) are counted in
both tables, per fold, with the MAE on the rows the model predicted next to the MAE as scored.
The count comes from the stored outputs of each fold (:func:`fold_fills`), not from the config:
the record's test ids against the fold's ``test_predictions.csv``, where the runner marks a
filled row ``filled=train_mean`` (runs stored before that left the row out), checked against
the ids the record names in ``params.predicted_as_training_mean``.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from matgnn.matbench.data import task_metadata
from matgnn.matbench.runner import FILLED_COLUMN, TRAIN_MEAN
from matgnn.matbench.submission import (
    PARTIAL_SCORES,
    PREFIX,
    RESULTS,
    FoldRecord,
    SubmissionFolder,
    read_results,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: catalog.py
from catalog import has_block, replace_block

#: names of the generated blocks (``<!-- <name>:start -->`` ... ``<!-- <name>:end -->``)
SUMMARY = "matbench-leaderboard"
FOLDS = "matbench-folds"

#: Leaderboard entries to compare with: Matbench v0.1, snapshot of January 2024 (mean MAE over
#: the five folds), as quoted in issue 11 of this project (``matbench_log_gvrh``: issue 26).
#: The first entry of a task is its best.
LEADERBOARD_JAN_2024: dict[str, list[tuple[str, float]]] = {
    "matbench_phonons": [("MegNet-kgcnn", 28.76), ("coNGN", 28.89), ("ALIGNN", 29.54)],
    "matbench_perovskites": [("coGN", 0.0269), ("ALIGNN", 0.0288), ("CGCNN", 0.0452)],
    "matbench_mp_e_form": [("coGN", 0.0170), ("ALIGNN", 0.0215), ("CGCNN", 0.0337)],
    "matbench_mp_gap": [("coGN", 0.156)],
    "matbench_log_kvrh": [("coNGN", 0.0491)],
    "matbench_log_gvrh": [("coNGN", 0.0670)],
}


@dataclass
class Fills:
    """The test rows of one recorded fold filled with the training mean (official order) and
    the MAE over the others, the rows the model predicted (``None`` where it cannot be told:
    no ``test_predictions.csv`` or no MAE)."""

    ids: list[str]
    mae_predicted: float | None


@dataclass
class Entry:
    task: str
    algorithm: str
    mae_mean: float
    mae_std: float | None
    folds: int
    data: str  # "complete (valid)", "partial 15,418/18,928 rows", "leaderboard Jan 2024"
    # ours: per recorded fold, the rows filled with the training mean; leaderboard: empty
    fills: list[Fills] = field(default_factory=list)
    test_rows: int = 0  # ours: test rows scored over the folds of ``fills``


def fold_fills(submission: SubmissionFolder, record: FoldRecord) -> Fills:
    """The rows of ``record`` filled with the training mean, from the fold's stored outputs:
    its ids that the fold's ``test_predictions.csv`` marks ``filled=train_mean`` or leaves out
    (folds recorded before the runner wrote filled rows there). Refused (``ValueError``) when
    the file and the record disagree: a row of the file that is not a test id, filled ids other
    than those of ``params.predicted_as_training_mean`` (where the record has it) or filled
    rows with different predictions (one training mean per fold). Without the file, the ids of
    ``params.predicted_as_training_mean``. The MAE on the predicted rows takes the recorded
    predictions and the file's targets (the column ``<c>`` with a ``predicted_<c>``)."""
    where = f"{submission.root.name} {record.task} fold {record.fold}"
    named = record.params.get("predicted_as_training_mean")
    path = submission.fold_dir(record.task, record.fold) / "test_predictions.csv"
    if not path.is_file():
        ids = [i for i in record.ids if i in (named or {})]
        return Fills(ids, None if ids else record.scores.get("mae"))
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        rows = {row["id"]: row for row in reader}
        columns = list(reader.fieldnames or [])
    unknown = sorted(set(rows) - set(record.ids))
    if unknown:
        raise ValueError(f"{where}: {path.name} has rows that are not test ids: {unknown[:3]}")
    ids = [i for i in record.ids if i not in rows or rows[i].get(FILLED_COLUMN) == TRAIN_MEAN]
    if named is not None and set(named) != set(ids):
        raise ValueError(
            f"{where}: {path.name} leaves out or marks {ids} as filled with the training "
            f"mean, the record names {sorted(named)}"
        )
    predictions = dict(zip(record.ids, record.predictions, strict=True))
    if len({predictions[i] for i in ids}) > 1:
        raise ValueError(f"{where}: the filled rows {ids} have different predictions")
    targets = [c for c in columns if f"predicted_{c}" in columns]
    if "mae" not in record.scores or len(targets) != 1:
        return Fills(ids, None)
    filled = set(ids)
    predicted = [i for i in record.ids if i not in filled]
    errors = [abs(predictions[i] - float(rows[i][targets[0]])) for i in predicted]
    return Fills(ids, float(np.mean(errors)) if errors else None)


def task_fills(folder: Path, task: str, folds: list[int]) -> tuple[list[Fills], int]:
    """:func:`fold_fills` of the recorded ``folds`` of ``task`` in the submission ``folder``
    and the number of test rows they scored."""
    submission = SubmissionFolder(folder)
    records = [
        submission.read_record(task, f) for f in folds if f in submission.recorded_folds(task)
    ]
    return [fold_fills(submission, r) for r in records], sum(len(r.ids) for r in records)


def our_entries(root: Path) -> list[Entry]:
    entries = []
    for folder in sorted(root.glob(f"{PREFIX}*")):
        model = folder.name.removeprefix(PREFIX)
        results = folder / RESULTS
        if results.is_file():
            benchmark = read_results(results)
            valid = benchmark.is_valid
            for name, task in benchmark.tasks_map.items():
                mae = task.scores["mae"]
                folds = [int(f.removeprefix("fold_")) for f in task.results]
                entries.append(
                    Entry(
                        name,
                        f"matgnn {model}",
                        float(mae["mean"]),
                        float(mae["std"]),
                        len(task.folds),
                        "complete copy, matbench-valid" if valid else "INVALID",
                        *task_fills(folder, name, folds),
                    )
                )
        partial = folder / PARTIAL_SCORES
        if partial.is_file():
            for name, task in json.loads(partial.read_text())["tasks"].items():
                mae = task["scores"].get("mae")
                if not mae:
                    continue
                rows = task["rows"]
                entries.append(
                    Entry(
                        name,
                        f"matgnn {model}",
                        mae["mean"],
                        mae["std"] if len(task["folds_recorded"]) > 1 else None,
                        len(task["folds_recorded"]),
                        f"**partial copy** ({rows['present']:,}/{rows['official']:,} rows), "
                        "not a leaderboard entry",
                        *task_fills(folder, name, task["folds_recorded"]),
                    )
                )
    return entries


def fills_cells(entry: Entry) -> tuple[str, str]:
    """An entry's two cells on filled rows: how many test rows were filled with the training
    mean (of how many, per fold) and the MAE mean (std over folds) on the predicted rows; both
    empty for a leaderboard entry, the second empty when nothing was filled."""
    if not entry.fills:
        return "", ""
    counts = [len(f.ids) for f in entry.fills]
    if not sum(counts):
        return "0", ""
    filled = f"**{sum(counts)}** of {entry.test_rows:,} (per fold {'/'.join(map(str, counts))})"
    maes = [f.mae_predicted for f in entry.fills]
    if any(m is None for m in maes):
        return filled, "n/a"
    spread = f" (std {np.std(maes):.4g})" if len(maes) > 1 else ""
    return filled, f"{np.mean(maes):.4g}{spread}"


def table(root: Path) -> str:
    """The Markdown table: per task our entries, then the leaderboard's."""
    ours = our_entries(root)
    tasks = sorted({e.task for e in ours} | set(LEADERBOARD_JAN_2024))
    lines = [
        "| task (unit) | algorithm | MAE mean (as scored) | MAE std | folds | data | "
        "test rows filled with the training mean | MAE mean on the predicted rows only |",
        "|---|---|---:|---:|---:|---|---|---:|",
    ]
    for task in tasks:
        unit = task_metadata(task).unit
        rows = [e for e in ours if e.task == task] + [
            Entry(task, name, mae, None, 5, "leaderboard, Jan 2024 snapshot")
            for name, mae in LEADERBOARD_JAN_2024.get(task, [])
        ]
        for e in rows:
            std = "" if e.mae_std is None else f"{e.mae_std:.4g}"
            filled, predicted = fills_cells(e)
            lines.append(
                f"| {task} ({unit}) | {e.algorithm} | {e.mae_mean:.4g} | {std} | {e.folds} | "
                f"{e.data} | {filled} | {predicted} |"
            )
    return "\n".join(lines)


def fold_table(root: Path) -> str:
    """Per submission, task and fold: rows present, MAE as scored and (where rows were filled
    with the training mean) on the predicted rows only, epochs trained (the epoch of the tested
    checkpoint, counted from 0 as in every table), wall time
    and the test rows filled with the training mean (:func:`fold_fills`), from the folds'
    ``record.json`` and ``test_predictions.csv``."""
    lines = [
        "| algorithm | task | fold | test rows (present/official) | MAE as scored | "
        "MAE on the predicted rows only | epochs (tested checkpoint's, from 0) | wall time (s) | "
        "test rows filled with the training mean |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for folder in sorted(root.glob(f"{PREFIX}*")):
        submission = SubmissionFolder(folder)
        for task in submission.tasks():
            for fold in submission.recorded_folds(task):
                r = submission.read_record(task, fold)
                epochs = r.params.get("epochs_trained", "")
                best = r.params.get("best_epoch")
                epochs = f"{epochs} ({best})" if best is not None else epochs
                wall = "" if r.wall_time_s is None else f"{r.wall_time_s:.0f}"
                if r.params.get("resumed_from_last_ckpt"):
                    wall += " (resumed: last attempt only)"
                fills = fold_fills(submission, r)
                filled, predicted = str(len(fills.ids)), ""
                if fills.ids:
                    filled = f"**{len(fills.ids)}**: {', '.join(fills.ids)}"
                    predicted = (
                        "n/a" if fills.mae_predicted is None else f"{fills.mae_predicted:.4g}"
                    )
                lines.append(
                    f"| matgnn {folder.name.removeprefix(PREFIX)} | {task} | {fold} | "
                    f"{r.rows['test_present']}/{r.rows['test_official']} | "
                    f"{r.scores['mae']:.4g} | {predicted} | {epochs} | {wall} | {filled} |"
                )
    return "\n".join(lines)


def update(path: Path, generated: dict[str, str]) -> bool:
    """Replace each generated block that ``path`` has (:func:`catalog.replace_block`;
    a file may hold only some of them); returns whether the file changed."""
    content = path.read_text()
    new = content
    for name, text in generated.items():
        if has_block(new, name):
            new = replace_block(new, name, text, path)
    if new != content:
        path.write_text(new)
    return new != content


def blocks(root: Path) -> dict[str, str]:
    """Every generated block: ``{name: text}``."""
    return {SUMMARY: table(root), FOLDS: fold_table(root)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path("benchmarks/matbench"))
    parser.add_argument("--update", type=Path, nargs="*", default=[])
    args = parser.parse_args(argv)
    generated = blocks(args.root)
    if not args.update:
        print("\n\n".join(generated.values()))
    for path in args.update:
        print(f"{path}: {'updated' if update(path, generated) else 'unchanged'}")


if __name__ == "__main__":
    main()
