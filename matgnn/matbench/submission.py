"""A Matbench submission folder: recorded folds, ``results.json.gz``, ``info.json`` and, for
partial copies, ``partial_scores.json``.

Layout of ``benchmarks/matbench/matbench_v0.1_matgnn_<model>/`` (the leaderboard's submission
format, plus one folder per task with everything that produced it)::

    info.json                 authors, algorithm, algorithm_long, bibtex_refs, notes, requirements
    results.json.gz           matbench's own file (``MatbenchBenchmark.to_file``, gzipped), only
                              tasks with all five folds recorded on complete data
    partial_scores.json       tasks run on partial copies: NOT a submission (see its header)
    <task>/config.yaml        the resolved config of the run, and command.txt its command line
    <task>/fold_<k>/          the fold's training run (checkpoints, logs, split.json, test
                              predictions, parity plot), model.ckpt (the best checkpoint
                              without optimizer state: ``matgnn.load_model`` reads it) and
                              record.json: the fold's predictions per official test id,
                              scores, rows present, wall time

A fold counts as recorded when its ``record.json`` exists; it is written last and never
overwritten, so a killed run restarts at the first fold without one.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from matgnn.matbench.data import BENCHMARK, MatbenchData, MatbenchError, official_folds

log = logging.getLogger(__name__)

PREFIX = f"{BENCHMARK}_matgnn_"
RESULTS = "results.json.gz"
PARTIAL_SCORES = "partial_scores.json"
INFO = "info.json"
RECORD = "record.json"
NOT_A_SUBMISSION = (
    "NOT A MATBENCH SUBMISSION. These scores come from partial copies of the Matbench tasks "
    "(official targets and folds, but not every official row has a structure here), scored "
    "with matbench's own score_array on the test rows present. matbench cannot record a fold "
    "with missing rows, so there is no results.json.gz for these tasks and the numbers are not "
    "comparable with leaderboard entries."
)


def submission_name(model: str) -> str:
    return f"{PREFIX}{model}"


@dataclass
class FoldRecord:
    """One fold's predictions of the official test ids (in the official order) and how they
    were made. ``scores`` are matbench's metrics over the rows present."""

    task: str
    fold: int
    complete_data: bool
    ids: list[str]
    predictions: list[float]
    scores: dict[str, float]
    rows: dict[str, int]
    params: dict[str, Any] = field(default_factory=dict)
    std: list[float] | None = None
    wall_time_s: float | None = None

    @classmethod
    def make(
        cls,
        data: MatbenchData,
        fold: int,
        ids: Sequence[str],
        predictions: Sequence[float],
        params: Mapping[str, Any] | None = None,
        std: Sequence[float] | None = None,
        wall_time_s: float | None = None,
    ) -> FoldRecord:
        """Check ``predictions`` (one per id of ``ids``, the fold's test ids present, in
        official order), score them with matbench's ``score_array`` and wrap them."""
        from matbench.data_ops import score_array

        rows = data.fold_rows(fold)
        if list(ids) != rows.test:
            raise MatbenchError(
                f"{data.task} fold {fold}: predictions must follow the fold's test ids "
                f"({len(rows.test)} present); got {len(ids)} ids in another order or set"
            )
        values = _python_values(predictions, data.metadata.task_type, f"{data.task} fold {fold}")
        scores = score_array(data.targets(rows.test), values, data.metadata.task_type)
        return cls(
            task=data.task,
            fold=fold,
            complete_data=data.complete,
            ids=list(ids),
            predictions=values,
            scores={k: float(v) for k, v in scores.items()},
            rows=rows.counts(),
            params=dict(params or {}),
            std=None if std is None else [float(s) for s in std],
            wall_time_s=wall_time_s,
        )


def _python_values(predictions: Sequence, task_type: str, where: str) -> list:
    """Python floats (regression) or probabilities in [0, 1] (classification), as matbench's
    ``validate`` wants them (np.float32 in a list fails it); NaN/inf refused."""
    array = np.asarray(predictions, dtype=float).reshape(-1)
    if not np.isfinite(array).all():
        raise MatbenchError(f"{where}: {int((~np.isfinite(array)).sum())} predictions are NaN/inf")
    if task_type == "classification" and ((array < 0) | (array > 1)).any():
        raise MatbenchError(f"{where}: classification predictions must be probabilities in [0, 1]")
    return [float(v) for v in array]


class SubmissionFolder:
    """The files of one submission folder (see module docstring)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def task_dir(self, task: str) -> Path:
        return self.root / task

    def fold_dir(self, task: str, fold: int) -> Path:
        return self.task_dir(task) / f"fold_{fold}"

    def record_path(self, task: str, fold: int) -> Path:
        return self.fold_dir(task, fold) / RECORD

    def tasks(self) -> list[str]:
        return sorted({p.parent.parent.name for p in self.root.glob(f"*/fold_*/{RECORD}")})

    def recorded_folds(self, task: str) -> list[int]:
        return [f for f in official_folds(task) if self.record_path(task, f).is_file()]

    def read_record(self, task: str, fold: int) -> FoldRecord:
        return FoldRecord(**json.loads(self.record_path(task, fold).read_text()))

    def write_record(self, record: FoldRecord) -> Path:
        """Write ``record.json`` of a fold; a fold already recorded is refused, not replaced."""
        path = self.record_path(record.task, record.fold)
        if path.exists():
            raise MatbenchError(
                f"{record.task} fold {record.fold} is already recorded in {path}; delete that "
                "fold folder to run it again"
            )
        _write_atomic(path, json.dumps(asdict(record), indent=1))
        return path

    def all_recorded(self, task: str) -> bool:
        return self.recorded_folds(task) == official_folds(task)

    # --- results.json.gz (complete data) -------------------------------------------------

    def write_results(self, data: MatbenchData, user_metadata: Mapping[str, Any]) -> Path:
        """Record every fold of ``data.task`` through matbench (``MatbenchTask.record``) next
        to the tasks already in ``results.json.gz``, add ``user_metadata``, write it with
        ``MatbenchBenchmark.to_file`` (gzipped) and read it back: ``is_valid`` must hold.

        Only for a complete copy with all official folds recorded."""
        from matbench.bench import MatbenchBenchmark

        if not data.complete:
            raise MatbenchError(
                f"{data.task}: partial copy ({len(data.frame)} of "
                f"{data.metadata.n_samples} rows); matbench cannot record it, so no {RESULTS}"
            )
        missing = sorted(set(official_folds(data.task)) - set(self.recorded_folds(data.task)))
        if missing:
            raise MatbenchError(f"{data.task}: folds {missing} not recorded yet")
        path = self.root / RESULTS
        earlier = read_results(path) if path.is_file() else None
        kept = [] if earlier is None else [t for t in earlier.tasks_map if t != data.task]
        benchmark = MatbenchBenchmark(autoload=False, subset=sorted([*kept, data.task]))
        for name in kept:
            benchmark.tasks_map[name].results = earlier.tasks_map[name].results
        task = data.matbench_task()
        for fold in official_folds(data.task):
            record = self.read_record(data.task, fold)
            if not record.complete_data:
                raise MatbenchError(f"{data.task} fold {fold} was recorded on a partial copy")
            task.record(fold, record.predictions, std=record.std, params=record.params)
        benchmark.tasks_map[data.task] = task
        benchmark.add_metadata(dict(user_metadata))
        plain = path.with_suffix("")  # results.json: matbench writes plain JSON
        benchmark.to_file(str(plain))
        with open(plain, "rb") as source, gzip.open(path.with_suffix(".gz.tmp"), "wb") as sink:
            sink.write(source.read())
        os.replace(path.with_suffix(".gz.tmp"), path)
        plain.unlink()
        if not read_results(path).is_valid:
            raise RuntimeError(f"{path} does not validate with matbench")
        log.info("%s: recorded all folds of %s; valid", path, data.task)
        return path

    # --- partial_scores.json (partial data) ----------------------------------------------

    def write_partial_scores(self, data: MatbenchData) -> Path:
        """Add or refresh ``data.task`` in ``partial_scores.json`` from its recorded folds."""
        path = self.root / PARTIAL_SCORES
        content = json.loads(path.read_text()) if path.is_file() else {}
        content.update(
            {"WARNING": NOT_A_SUBMISSION, "benchmark": BENCHMARK, "matbench": _version("matbench")}
        )
        tasks = content.setdefault("tasks", {})
        folds = {f: self.read_record(data.task, f) for f in self.recorded_folds(data.task)}
        tasks[data.task] = {
            "data_source": data.source,
            "rows": {"present": len(data.frame), "official": int(data.metadata.n_samples)},
            "unit": data.metadata.unit,
            "folds_recorded": sorted(folds),
            "folds": {
                f"fold_{f}": {"rows": r.rows, "scores": r.scores, "wall_time_s": r.wall_time_s}
                for f, r in folds.items()
            },
            "scores": fold_statistics([r.scores for r in folds.values()]),
        }
        content["tasks"] = dict(sorted(tasks.items()))
        _write_atomic(path, json.dumps(content, indent=1))
        return path

    def write_info(self, info: Mapping[str, Any]) -> Path:
        path = self.root / INFO
        _write_atomic(path, json.dumps(dict(info), indent=2))
        return path


def fold_statistics(scores: Sequence[Mapping[str, float]]) -> dict[str, dict[str, float]]:
    """Per metric, matbench's fold statistics (mean, max, min, std with numpy's defaults, as
    ``MatbenchTask.scores``) over the given folds."""
    from matbench.constants import FOLD_DIST_METRICS

    if not scores:
        return {}
    return {
        metric: {
            op: float(getattr(np, op)([s[metric] for s in scores])) for op in FOLD_DIST_METRICS
        }
        for metric in scores[0]
    }


def read_results(path: str | Path):
    """A ``results.json.gz`` (gzipped or plain JSON) as matbench's ``MatbenchBenchmark``;
    ``from_dict`` checks its hash and validates every task."""
    from matbench.bench import MatbenchBenchmark

    raw = Path(path).read_bytes()
    text = gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
    return MatbenchBenchmark.from_dict(json.loads(text))


def requirements(packages: Sequence[str]) -> list[str]:
    """``name==version`` of the installed ``packages`` (info.json's requirements)."""
    versions = {p: _version(p) for p in packages}
    return [f"{p}=={v}" for p, v in versions.items() if v is not None]


def _version(package: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return None


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text)
    os.replace(temporary, path)
