"""A Matbench v0.1 task's rows and official folds, complete or partial.

The rows come from :func:`matgnn.data.sources.matbench.load_frame`: a local copy in
``data_dir`` (matminer's own file, a partial reconstruction, or a composition task's official
target table) or, with ``data_dir=None`` on a connected machine, matbench's loader. The folds are
always the official ones shipped inside the matbench package (``MatbenchTask.validation``).

A copy is *complete* when it holds every official id of the task. Only then can matbench
record a fold (``MatbenchTask.record`` wants one prediction per official test id); a partial
copy is scored on the rows present, never recorded (:mod:`matgnn.matbench.submission`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import pandas as pd

from matgnn.data.sources.matbench import load_frame

#: the benchmark every task here belongs to
BENCHMARK = "matbench_v0.1"


class MatbenchError(ValueError):
    """A bad request to the Matbench runner, worded for one line on the terminal."""


def task_metadata(task: str):
    """matbench's metadata of ``task`` (input type, target, task type, unit, n_samples)."""
    from matbench.metadata import mbv01_metadata

    if task not in mbv01_metadata:
        raise MatbenchError(
            f"unknown Matbench task {task!r}; {BENCHMARK} has {sorted(mbv01_metadata)}"
        )
    return mbv01_metadata[task]


def official_folds(task: str) -> list[int]:
    from matbench.metadata import mbv01_validation

    task_metadata(task)
    return list(range(len(mbv01_validation.splits[task])))


def check_folds(task: str, folds) -> list[int]:
    """``folds`` as a sorted list of distinct ints, each an official fold of ``task``."""
    allowed = official_folds(task)
    chosen = [folds] if isinstance(folds, int) else list(folds)
    bad = [f for f in chosen if not isinstance(f, int) or f not in allowed]
    if bad or not chosen:
        raise MatbenchError(
            f"fold(s) {bad or chosen} out of range: {task} has folds {allowed[0]}-{allowed[-1]}"
        )
    return sorted(set(chosen))


@dataclass
class FoldRows:
    """The ids of one fold that the copy holds, and how many the official fold has."""

    train: list[str]
    test: list[str]
    official_train: int
    official_test: int

    def counts(self) -> dict[str, int]:
        return {
            "train_present": len(self.train),
            "train_official": self.official_train,
            "test_present": len(self.test),
            "test_official": self.official_test,
        }


@dataclass
class MatbenchData:
    """One task's rows (``frame``: indexed by mbid; input and target columns) and its
    official folds."""

    task: str
    frame: pd.DataFrame
    source: str

    @classmethod
    def load(cls, task: str, data_dir: str | Path | None, limit: int | None = None) -> MatbenchData:
        """Load ``task`` from ``data_dir`` (or matbench's loader when ``None``); a failure
        (no local copy and no download) is a :class:`MatbenchError` in one line. ``limit``
        keeps the first rows only, as the training source does (smoke runs)."""
        task_metadata(task)
        try:
            frame = load_frame(task, data_dir)
        except (OSError, RuntimeError) as error:
            raise MatbenchError(str(error).splitlines()[0]) from error
        if limit:
            frame = frame.iloc[: int(limit)]
        source = str(data_dir) if data_dir is not None else "matbench.data_ops.load"
        return cls(task=task, frame=frame, source=source)

    @property
    def metadata(self):
        return task_metadata(self.task)

    @property
    def validation(self):
        from matbench.metadata import mbv01_validation

        return mbv01_validation.splits[self.task]

    def fold_rows(self, fold: int) -> FoldRows:
        split = self.validation[f"fold_{fold}"]
        present = self.frame.index
        train = [i for i in split.train if i in present]
        test = [i for i in split.test if i in present]
        return FoldRows(train, test, len(split.train), len(split.test))

    @cached_property
    def complete(self) -> bool:
        """Every official id of the task is present (computed once: ``frame`` is not meant to
        change after loading)."""
        split = self.validation["fold_0"]
        official = set(split.train) | set(split.test)
        return official <= set(self.frame.index)

    def matbench_task(self):
        """matbench's own ``MatbenchTask`` with this copy as its dataset (complete copies only:
        its ``get_*_data`` and ``record`` look up every official id)."""
        from matbench.task import MatbenchTask

        if not self.complete:
            raise MatbenchError(f"{self.task}: a partial copy cannot be recorded by matbench")
        task = MatbenchTask(self.task, autoload=False)
        metadata = self.metadata
        task.df = self.frame[[metadata.input_type, metadata.target]]
        return task

    def inputs(self, ids: list[str]) -> list:
        return self.frame.loc[ids, self.metadata.input_type].tolist()

    def targets(self, ids: list[str]) -> list:
        return self.frame.loc[ids, self.metadata.target].tolist()
