"""The leaderboard tables are written from the submission folders: complete tasks (validated by
matbench) and partial copies (marked) side by side, test rows filled with the training mean
counted from the stored outputs; the docs copies are never stale."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from benchmarks.catalog import has_block, replace_block
from benchmarks.matbench.leaderboard import (
    FOLDS,
    SUMMARY,
    blocks,
    fold_fills,
    fold_table,
    table,
)
from matgnn.matbench import FoldRecord, MatbenchData, SubmissionFolder
from matgnn.matbench.runner import FoldPredictions, write_filled_rows
from matgnn.outputs import ScalarOutput, write_prediction_tables
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


def test_docs_tables_are_written_from_the_committed_results():
    """docs/results/matbench.md and benchmarks/matbench/README.md hold the tables generated from
    benchmarks/matbench (python benchmarks/matbench/leaderboard.py --update
    docs/results/matbench.md benchmarks/matbench/README.md)."""
    generated = blocks(REPOSITORY / "benchmarks" / "matbench")
    for name in ("docs/results/matbench.md", "benchmarks/matbench/README.md"):
        path = REPOSITORY / name
        content = path.read_text()
        found = [block for block in generated if has_block(content, block)]
        assert found, f"{name} has no generated Matbench table"
        for block in found:
            stale = replace_block(content, block, generated[block], path) != content
            assert not stale, f"{name} is stale: run the leaderboard --update"
    assert has_block((REPOSITORY / "docs/results/matbench.md").read_text(), SUMMARY)
    assert has_block((REPOSITORY / "benchmarks/matbench/README.md").read_text(), FOLDS)


def record_fold(
    data: MatbenchData,
    folder: SubmissionFolder,
    fold: int,
    filled: list[str],
    mark: bool,
    named: list[str] | None = None,
) -> FoldRecord:
    """Record a fold whose model predicts every target + 1 and whose ``filled`` test rows get
    the training mean. Its ``test_predictions.csv`` is the training run's (the model's rows
    only) and, with ``mark``, the filled rows added by the runner; the record names ``named``
    (default ``filled``) in ``params.predicted_as_training_mean``."""
    rows = data.fold_rows(fold)
    targets = np.asarray(data.targets(rows.test), dtype=float)
    mean = float(np.mean(data.targets(rows.train)))
    values = np.where(np.isin(rows.test, filled), mean, targets + 1.0)
    output = ScalarOutput(name="last_phdos_peak")
    model_rows = [k for k, i in enumerate(rows.test) if i not in filled]
    path = folder.fold_dir(data.task, fold) / "test_predictions.csv"
    path.parent.mkdir(parents=True)
    write_prediction_tables(
        path,
        [output],
        [rows.test[k] for k in model_rows],
        {output.name: [values[k : k + 1] for k in model_rows]},
        {output.name: [targets[k : k + 1] for k in model_rows]},
    )
    reasons = {i: f"{i}: atom 0 has no neighbour (test)" for i in filled}
    if mark:
        predicted = FoldPredictions(ids=rows.test, values=values, rejected=reasons)
        assert write_filled_rows(path, output, data, predicted) == filled
    named_reasons = reasons if named is None else dict.fromkeys(named, "test")
    record = FoldRecord.make(
        data, fold, rows.test, values, params={"predicted_as_training_mean": named_reasons}
    )
    folder.write_record(record)
    return record


def test_tables_count_the_rows_filled_with_the_training_mean_from_the_stored_outputs(tmp_path):
    """Filled rows are found in the stored outputs, both as runs stored before the runner
    wrote them (left out of test_predictions.csv: fold 0) and as it writes them now
    (filled=train_mean: fold 1), and both tables give their count and the MAE on the predicted
    rows (exactly 1 here) next to the MAE as scored."""
    data = MatbenchData.load("matbench_phonons", DATA)
    folder = SubmissionFolder(tmp_path / "matbench_v0.1_matgnn_e3nn")
    test = {f: data.fold_rows(f).test for f in range(3)}
    records = [
        record_fold(data, folder, 0, test[0][2:4], mark=False),
        record_fold(data, folder, 1, test[1][:1], mark=True),
        record_fold(data, folder, 2, [], mark=True),
    ]
    folder.write_partial_scores(data)
    assert records[0].scores["mae"] > 1.5  # the two filled rows count in the scored MAE

    row = next(r for r in table(tmp_path).splitlines() if "matgnn e3nn" in r)
    cells = [c.strip() for c in row.strip("|").split("|")]
    scored = np.mean([r.scores["mae"] for r in records])
    assert cells[2] == f"{scored:.4g}"
    rows = sum(len(t) for t in test.values())
    assert cells[6] == f"**3** of {rows} (per fold 2/1/0)"
    assert cells[7].startswith("1 (std ")

    folds = {int(r.split("|")[3]): r for r in fold_table(tmp_path).splitlines()[2:]}
    cells = [c.strip() for c in folds[0].strip("|").split("|")]
    assert cells[4] == f"{records[0].scores['mae']:.4g}" and cells[5] == "1"
    assert cells[8] == f"**2**: {test[0][2]}, {test[0][3]}"
    cells = [c.strip() for c in folds[1].strip("|").split("|")]
    assert cells[5] == "1" and cells[8] == f"**1**: {test[1][0]}"
    cells = [c.strip() for c in folds[2].strip("|").split("|")]
    assert cells[4] == "1" and cells[5] == "" and cells[8] == "0"


@pytest.mark.parametrize("mark", [False, True])
def test_a_fold_whose_outputs_disagree_on_filled_rows_is_refused(tmp_path, mark):
    """The record names one id, the fold's test_predictions.csv leaves out or marks another:
    the tables are not written."""
    data = MatbenchData.load("matbench_phonons", DATA)
    folder = SubmissionFolder(tmp_path / "matbench_v0.1_matgnn_e3nn")
    test = data.fold_rows(0).test
    record_fold(data, folder, 0, test[:1], mark=mark, named=test[1:2])
    with pytest.raises(ValueError, match=r"fold 0: test_predictions\.csv leaves out or marks"):
        fold_table(tmp_path)
    with pytest.raises(ValueError, match="the record names"):
        fold_fills(folder, folder.read_record(data.task, 0))
