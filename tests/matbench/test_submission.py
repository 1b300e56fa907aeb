"""Recording through matbench: fold records, results.json.gz that matbench validates, partial
copies scored but never recorded. Real, complete official tables (shipped in tests/matbench/data)
with a train-mean / train-frequency baseline through the same recording code as the runner."""

from __future__ import annotations

import gzip
import io
import json

import numpy as np
import pytest
from matbench.bench import MatbenchBenchmark

from matgnn.matbench import FoldRecord, MatbenchData, MatbenchError, SubmissionFolder, read_results
from matgnn.matbench.submission import NOT_A_SUBMISSION, PARTIAL_SCORES, RESULTS
from tests.matbench import DATA


def baseline_records(data: MatbenchData, folder: SubmissionFolder, folds=range(5)) -> None:
    """Record the train-set mean (regression) or the train-set frequency of True
    (classification) as every test prediction, through matbench's own fold API."""
    task = data.matbench_task()
    for fold in folds:
        train = task.get_train_and_val_data(fold, as_type="df")[data.metadata.target]
        test = task.get_test_data(fold, include_target=False)
        value = train.astype(float).mean()
        predictions = np.full(len(test), value, dtype=np.float32)  # float32 on purpose
        folder.write_record(
            FoldRecord.make(data, fold, list(test.index), predictions, params={"baseline": "mean"})
        )


@pytest.fixture(scope="module")
def steels() -> MatbenchData:
    data = MatbenchData.load("matbench_steels", DATA)
    assert data.complete and len(data.frame) == 312
    return data


def test_complete_task_records_and_validates(tmp_path, steels):
    folder = SubmissionFolder(tmp_path)
    baseline_records(steels, folder)
    path = folder.write_results(steels, {"algorithm": "train mean"})
    assert path.name == RESULTS and path.read_bytes()[:2] == b"\x1f\x8b"  # gzip
    # matbench's own reader on the file it wrote: hash, folds and every test id check out
    plain = tmp_path / "results.json"
    plain.write_bytes(gzip.decompress(path.read_bytes()))
    benchmark = MatbenchBenchmark.from_file(str(plain))
    assert benchmark.is_valid
    task = benchmark.tasks_map["matbench_steels"]
    assert benchmark.user_metadata == {"algorithm": "train mean"}
    # the recorded scores are the MAE of the train mean on each official test fold
    truth = steels.frame["yield strength"]
    expected = []
    for fold in range(5):
        split = steels.validation[f"fold_{fold}"]
        expected.append(np.abs(truth[split.test] - truth[split.train].mean()).mean())
        assert task.results[f"fold_{fold}"]["parameters"] == {"baseline": "mean"}
    np.testing.assert_allclose(task.scores["mae"]["mean"], np.mean(expected), rtol=1e-6)
    assert read_results(path).is_valid


def test_second_task_joins_the_results_and_classification_records_probabilities(tmp_path, steels):
    folder = SubmissionFolder(tmp_path)
    baseline_records(steels, folder)
    folder.write_results(steels, {})
    glass = MatbenchData.load("matbench_glass", DATA)
    assert glass.metadata.task_type == "classification"
    baseline_records(glass, folder)
    benchmark = read_results(folder.write_results(glass, {}))
    assert benchmark.is_valid
    assert sorted(benchmark.tasks_map) == ["matbench_glass", "matbench_steels"]
    assert 0.0 < benchmark.tasks_map["matbench_glass"].scores["rocauc"]["mean"] <= 1.0


def test_a_recorded_fold_is_never_overwritten(tmp_path, steels):
    folder = SubmissionFolder(tmp_path)
    baseline_records(steels, folder, folds=[0])
    before = folder.record_path("matbench_steels", 0).read_text()
    with pytest.raises(MatbenchError, match="already recorded"):
        baseline_records(steels, folder, folds=[0])
    assert folder.record_path("matbench_steels", 0).read_text() == before
    assert folder.recorded_folds("matbench_steels") == [0]
    with pytest.raises(MatbenchError, match=r"folds \[1, 2, 3, 4\] not recorded"):
        folder.write_results(steels, {})
    assert not (tmp_path / RESULTS).exists()


def test_partial_copy_is_scored_but_never_recorded(tmp_path, steels):
    partial = MatbenchData(steels.task, steels.frame.iloc[::2], source="every other row")
    assert not partial.complete
    folder = SubmissionFolder(tmp_path)
    for fold in range(5):
        rows = partial.fold_rows(fold)
        assert rows.official_test in (62, 63) and len(rows.test) < rows.official_test
        predictions = np.asarray(partial.targets(rows.test)) + 10.0  # MAE exactly 10
        folder.write_record(FoldRecord.make(partial, fold, rows.test, predictions))
        folder.write_partial_scores(partial)
    with pytest.raises(MatbenchError, match="partial copy"):
        folder.write_results(partial, {})
    assert not (tmp_path / RESULTS).exists()
    content = json.loads((tmp_path / PARTIAL_SCORES).read_text())
    assert content["WARNING"] == NOT_A_SUBMISSION
    task = content["tasks"]["matbench_steels"]
    assert task["rows"] == {"present": 156, "official": 312}
    assert task["folds_recorded"] == [0, 1, 2, 3, 4]
    assert sum(f["rows"]["test_present"] for f in task["folds"].values()) == 156
    np.testing.assert_allclose(task["scores"]["mae"]["mean"], 10.0)
    np.testing.assert_allclose(task["scores"]["mae"]["std"], 0.0, atol=1e-9)


def test_bad_predictions_are_refused_in_words(steels):
    rows = steels.fold_rows(0)
    values = np.zeros(len(rows.test))
    with pytest.raises(MatbenchError, match="follow the fold's test ids"):
        FoldRecord.make(steels, 0, rows.test[::-1], values)
    with pytest.raises(MatbenchError, match="follow the fold's test ids"):
        FoldRecord.make(steels, 0, rows.test[:-1], values[:-1])
    values[3] = np.nan
    with pytest.raises(MatbenchError, match="1 predictions are NaN"):
        FoldRecord.make(steels, 0, rows.test, values)
    glass = MatbenchData.load("matbench_glass", DATA)
    test = glass.fold_rows(0).test
    with pytest.raises(MatbenchError, match=r"probabilities in \[0, 1\]"):
        FoldRecord.make(glass, 0, test, np.full(len(test), 1.5))


def test_the_reading_bar_only_on_a_terminal(capsys, monkeypatch):
    """Reading a local copy into a log or a notebook's stored output leaves no progress lines;
    on a terminal a bar of the structures decoded is drawn."""
    from matgnn.data.sources import matbench as source
    from matgnn.data.sources import matminer_json

    path = DATA / "matbench_partial" / "matbench_phonons_partial.json.gz"
    frame = source.read_matbench_json(path, "matbench_phonons")
    assert len(frame) == 80 and frame.index[0] == "mb-phonons-0001"
    assert "decoding" not in capsys.readouterr().err

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal = Terminal()
    monkeypatch.setattr(matminer_json.sys, "stderr", terminal)
    again = source.read_matbench_json(path, "matbench_phonons")
    assert "decoding matbench_phonons_partial.json.gz" in terminal.getvalue()
    assert list(again.index) == list(frame.index)
