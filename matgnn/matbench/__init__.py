"""Matbench v0.1 runs: the official folds, matbench's recording, a submission folder and the
leaderboard table.

* :mod:`matgnn.matbench.runner`: ``python -m matgnn.matbench model=<m> task=matbench_<t>``;
* :mod:`matgnn.matbench.data`: a task's rows (complete or partial copy) and official folds;
* :mod:`matgnn.matbench.submission`: fold records, ``results.json.gz``, ``partial_scores.json``;
* :mod:`matgnn.matbench.leaderboard`: our scores next to the leaderboard's.
"""

from matgnn.matbench.data import MatbenchData, MatbenchError
from matgnn.matbench.submission import FoldRecord, SubmissionFolder, read_results

__all__ = ["FoldRecord", "MatbenchData", "MatbenchError", "SubmissionFolder", "read_results"]
