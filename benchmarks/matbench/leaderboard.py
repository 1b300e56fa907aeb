"""Our Matbench scores next to the leaderboard's, as a Markdown table written from the
submission folders (never by hand):

    python benchmarks/matbench/leaderboard.py [--root benchmarks/matbench] [--update FILE ...]

For every ``matbench_v0.1_matgnn_*`` folder under ``--root``: the tasks of ``results.json.gz``
(read back through matbench, which validates them: leaderboard-comparable) and of
``partial_scores.json`` (partial copies: marked, not comparable), and a per-fold table from the
folds' records. ``--update`` replaces the blocks between ``<!-- matbench-leaderboard:start -->``
/ ``<!-- matbench-leaderboard:end -->`` and ``<!-- matbench-folds:start -->`` /
``<!-- matbench-folds:end -->`` in each file; without it the tables are printed.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from matgnn.matbench.data import task_metadata
from matgnn.matbench.submission import (
    PARTIAL_SCORES,
    PREFIX,
    RESULTS,
    SubmissionFolder,
    read_results,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: catalog.py
from catalog import has_block, replace_block

#: names of the generated blocks (``<!-- <name>:start -->`` ... ``<!-- <name>:end -->``)
SUMMARY = "matbench-leaderboard"
FOLDS = "matbench-folds"

#: Leaderboard entries to compare with: Matbench v0.1, snapshot of January 2024 (mean MAE over
#: the five folds), as quoted in issue 11 of this project.
LEADERBOARD_JAN_2024: dict[str, list[tuple[str, float]]] = {
    "matbench_phonons": [("MegNet-kgcnn", 28.76), ("coNGN", 28.89), ("ALIGNN", 29.54)],
    "matbench_perovskites": [("coGN", 0.0269), ("ALIGNN", 0.0288), ("CGCNN", 0.0452)],
    "matbench_mp_e_form": [("coGN", 0.0170), ("ALIGNN", 0.0215), ("CGCNN", 0.0337)],
    "matbench_mp_gap": [("coGN", 0.156)],
    "matbench_log_kvrh": [("coNGN", 0.0491)],
}


@dataclass
class Entry:
    task: str
    algorithm: str
    mae_mean: float
    mae_std: float | None
    folds: int
    data: str  # "complete (valid)", "partial 15,418/18,928 rows", "leaderboard Jan 2024"


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
                entries.append(
                    Entry(
                        name,
                        f"matgnn {model}",
                        float(mae["mean"]),
                        float(mae["std"]),
                        len(task.folds),
                        "complete copy, matbench-valid" if valid else "INVALID",
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
                    )
                )
    return entries


def table(root: Path) -> str:
    """The Markdown table: per task our entries, then the leaderboard's."""
    ours = our_entries(root)
    tasks = sorted({e.task for e in ours} | set(LEADERBOARD_JAN_2024))
    lines = [
        "| task (unit) | algorithm | MAE mean | MAE std | folds | data |",
        "|---|---|---:|---:|---:|---|",
    ]
    for task in tasks:
        unit = task_metadata(task).unit
        rows = [e for e in ours if e.task == task] + [
            Entry(task, name, mae, None, 5, "leaderboard, Jan 2024 snapshot")
            for name, mae in LEADERBOARD_JAN_2024.get(task, [])
        ]
        for e in rows:
            std = "" if e.mae_std is None else f"{e.mae_std:.4g}"
            lines.append(
                f"| {task} ({unit}) | {e.algorithm} | {e.mae_mean:.4g} | {std} | {e.folds} | "
                f"{e.data} |"
            )
    return "\n".join(lines)


def fold_table(root: Path) -> str:
    """Per submission, task and fold: rows present, MAE, epochs trained (best epoch), wall
    time and the test ids predicted as the training mean, from the folds' ``record.json``."""
    lines = [
        "| algorithm | task | fold | test rows (present/official) | MAE | epochs (best) | "
        "wall time (s) | predicted as training mean |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for folder in sorted(root.glob(f"{PREFIX}*")):
        submission = SubmissionFolder(folder)
        for task in submission.tasks():
            for fold in submission.recorded_folds(task):
                r = submission.read_record(task, fold)
                epochs = r.params.get("epochs_trained", "")
                best = r.params.get("best_epoch")
                epochs = f"{epochs} ({best + 1})" if best is not None else epochs
                wall = "" if r.wall_time_s is None else f"{r.wall_time_s:.0f}"
                if r.params.get("resumed_from_last_ckpt"):
                    wall += " (resumed: last attempt only)"
                fallback = ", ".join(r.params.get("predicted_as_training_mean") or {})
                lines.append(
                    f"| matgnn {folder.name.removeprefix(PREFIX)} | {task} | {fold} | "
                    f"{r.rows['test_present']}/{r.rows['test_official']} | "
                    f"{r.scores['mae']:.4g} | {epochs} | {wall} | {fallback} |"
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
