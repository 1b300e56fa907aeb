"""The leaderboard tables are written from the submission folders: complete tasks (validated by
matbench) and partial copies (marked) side by side; the README copies are never stale."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from benchmarks.catalog import has_block, replace_block
from benchmarks.matbench.leaderboard import FOLDS, SUMMARY, blocks, fold_table, table
from matgnn.matbench import FoldRecord, MatbenchData, SubmissionFolder
from tests.matbench import DATA
from tests.matbench.test_submission import baseline_records

REPOSITORY = Path(__file__).resolve().parents[2]


def test_table_puts_complete_and_partial_runs_next_to_the_leaderboard(tmp_path):
    steels = MatbenchData.load("matbench_steels", DATA)
    complete = SubmissionFolder(tmp_path / "matbench_v0.1_matgnn_mean")
    baseline_records(steels, complete)
    complete.write_results(steels, {})
    partial_data = MatbenchData(steels.task, steels.frame.iloc[::2], source="half")
    partial = SubmissionFolder(tmp_path / "matbench_v0.1_matgnn_half")
    for fold in (0, 1):
        test = partial_data.fold_rows(fold).test
        values = np.asarray(partial_data.targets(test)) + 1.0
        partial.write_record(FoldRecord.make(partial_data, fold, test, values))
    partial.write_partial_scores(partial_data)

    text = table(tmp_path)
    mean_row = next(r for r in text.splitlines() if "matgnn mean" in r)
    assert "matbench_steels (MPa)" in mean_row and "complete copy, matbench-valid" in mean_row
    assert "| 5 |" in mean_row
    half_row = next(r for r in text.splitlines() if "matgnn half" in r)
    assert "**partial copy** (156/312 rows), not a leaderboard entry" in half_row
    assert "| 1 | " in half_row and "| 2 |" in half_row  # MAE exactly 1, two folds
    assert "| matbench_phonons (cm^-1) | MegNet-kgcnn | 28.76 |" in text
    folds = fold_table(tmp_path).splitlines()
    assert len(folds) == 2 + 5 + 2


def test_readme_tables_are_written_from_the_committed_results():
    """README.md and benchmarks/matbench/README.md hold the tables generated from
    benchmarks/matbench (python benchmarks/matbench/leaderboard.py --update README.md
    benchmarks/matbench/README.md)."""
    generated = blocks(REPOSITORY / "benchmarks" / "matbench")
    for name in ("README.md", "benchmarks/matbench/README.md"):
        path = REPOSITORY / name
        content = path.read_text()
        found = [block for block in generated if has_block(content, block)]
        assert found, f"{name} has no generated Matbench table"
        for block in found:
            stale = replace_block(content, block, generated[block], path) != content
            assert not stale, f"{name} is stale: run the leaderboard --update"
    assert has_block((REPOSITORY / "README.md").read_text(), SUMMARY)
    assert has_block((REPOSITORY / "benchmarks/matbench/README.md").read_text(), FOLDS)
