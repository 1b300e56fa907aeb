"""Matbench v0.1 structure tasks with the official folds (Dunn et al., npj Comput. Mater. 6, 138
(2020)).

On a connected machine ``data_dir=None`` loads the file of the official package
(``matbench.data_ops.load(task)`` -> ``matminer.datasets.load_dataset``, which downloads it
once, hash-checked, to ``$MATMINER_DATA/<task>.json.gz``). Every file is read as matminer's
reader (``load_dataframe_from_json``) reads it, but with its pymatgen markers checked before
anything is decoded (:mod:`matgnn.data.sources.matminer_json`: nothing a file names is
imported). With ``data_dir`` set, a local copy: ``<data_dir>/<task>.json.gz`` (the
file matminer caches) or else the partial reconstruction
``<data_dir>/matbench_partial/<task>_partial.json.gz`` (see ``../shared/data``). Either way
the rows get matbench's ids (``mb-<task>-<n>``) and the split is the official fold of
``MatbenchTask(task).validation``, which ships inside the matbench package. Official fold
members that are absent from a partial file are left out and counted in the log.
"""

from __future__ import annotations

import bz2
import json
import logging
import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd

from matgnn.data.records import Records
from matgnn.data.sources.matminer_json import matminer_file, read_matminer_json

log = logging.getLogger(__name__)

PARTIAL_DIR = "matbench_partial"
TARGETS_DIR = "matbench_targets"
# Tasks whose official rows are the same materials, in the same order, as another task's
# (checked in ../shared/data/matbench_partial/README.md): a local copy of the first may be
# assembled from the second's structures and the official target table.
ROW_ALIGNED = {"matbench_mp_is_metal": "matbench_mp_gap", "matbench_log_kvrh": "matbench_log_gvrh"}


def structure_tasks() -> list[str]:
    """Names of the Matbench v0.1 tasks whose input is a crystal structure."""
    from matbench.metadata import mbv01_metadata

    return sorted(k for k, v in mbv01_metadata.items() if v.input_type == "structure")


def matbench(
    task: str,
    fold: int = 0,
    data_dir: str | Path | None = None,
    limit: int | None = None,
    sample: int | None = None,
    sample_seed: int = 0,
) -> Records:
    """Rows of Matbench task ``task`` with fold ``fold``'s official train and test ids.

    Args:
        task: e.g. ``"matbench_mp_e_form"`` (see :func:`structure_tasks`).
        fold: official fold, 0-4.
        data_dir: folder holding a local copy (see module docstring); ``None`` downloads.
        limit: keep only the first ``limit`` rows (smoke tests); the folds are cut to match.
        sample: keep ``sample`` rows drawn at random (seeded by ``sample_seed``, in the file's
            order): a subset with the whole set's mix of cell sizes, which the first rows of a
            file need not have; the folds are cut to match. Not together with ``limit``.
        sample_seed: the seed of ``sample``.

    Classification targets (``is_metal``) become 0/1 integers.
    """
    from matbench.metadata import mbv01_metadata
    from matbench.task import MatbenchTask

    if task not in mbv01_metadata:
        raise ValueError(f"unknown Matbench task {task!r}; structure tasks: {structure_tasks()}")
    metadata = mbv01_metadata[task]
    if metadata.input_type != "structure":
        raise ValueError(f"{task} is a composition task; matgnn models need structures")
    if limit and sample:
        raise ValueError(f"{task}: limit={limit} and sample={sample}: choose one")
    frame = load_frame(task, data_dir)
    if limit:
        frame = frame.iloc[:limit]
    if sample:
        if sample > len(frame):
            raise ValueError(f"{task}: sample={sample} of a copy with {len(frame)} rows")
        rows = np.random.default_rng(sample_seed).choice(len(frame), sample, replace=False)
        frame = frame.iloc[np.sort(rows)]
    validation = MatbenchTask(task, autoload=False).validation
    fold_key = f"fold_{fold}"
    if fold_key not in validation:
        raise ValueError(f"{task}: no fold {fold}; folds are {list(validation)}")
    present = set(frame.index)
    split = {}
    for subset in ("train", "test"):
        official = list(validation[fold_key][subset])
        split[subset] = [i for i in official if i in present]
        if len(split[subset]) < len(official):
            log.info(
                "%s %s %s: %d of %d official rows present",
                task,
                fold_key,
                subset,
                len(split[subset]),
                len(official),
            )
    targets = frame[metadata.target].to_numpy()
    targets = (
        targets.astype(np.int64)
        if metadata.task_type == "classification"
        else targets.astype(float)
    )
    return Records(
        ids=frame.index.tolist(),
        structures=frame[metadata.input_type].tolist(),
        targets={metadata.target: targets},
        name=f"{task}-fold{fold}"
        + (f"-first{limit}" if limit else "")
        + (f"-sample{sample}seed{sample_seed}" if sample else ""),
        split=split,
    )


_frames: dict[tuple[str, str | None], pd.DataFrame] | None = None


@contextmanager
def frames_kept() -> Iterator[None]:
    """Within this block :func:`load_frame` reads each (task, data_dir) once and then returns
    the same DataFrame (the Matbench runner loads one task for five folds)."""
    global _frames
    outer = _frames
    _frames = {} if outer is None else outer
    try:
        yield
    finally:
        _frames = outer


def load_frame(task: str, data_dir: str | Path | None) -> pd.DataFrame:
    """The task's DataFrame indexed by mbid: a local copy in ``data_dir`` if there is one, else
    the official loader (which downloads once to ``$MATMINER_DATA``).

    A composition task's official target table (``matbench_targets/<task>.json.bz2``: mbid,
    composition, target) is a complete local copy: its input is the composition."""
    key = (task, None if data_dir is None else str(data_dir))
    if _frames is not None and key in _frames:
        return _frames[key]
    frame = _load_frame(task, data_dir)
    if _frames is not None:
        _frames[key] = frame
    return frame


def _load_frame(task: str, data_dir: str | Path | None) -> pd.DataFrame:
    if data_dir is not None:
        folder = Path(data_dir)
        path = local_file(task, folder)
        if path is not None:
            return read_matbench_json(path, task)
        if task in ROW_ALIGNED and local_file(ROW_ALIGNED[task], folder) is not None:
            return _row_aligned_frame(task, folder)
        table = folder / TARGETS_DIR / f"{task}.json.bz2"
        if _input_type(task) == "composition" and table.is_file():
            from matbench.metadata import mbv01_metadata

            columns = [mbv01_metadata[task].input_type, mbv01_metadata[task].target]
            return read_target_table(table)[columns]
        log.warning("%s: no local copy in %s; loading through matbench/matminer", task, folder)
    try:  # where matbench.data_ops.load -> matminer's load_dataset reads it (downloaded once)
        path = matminer_file(task)
    except Exception as error:
        raise RuntimeError(
            f"{task}: no local copy in {data_dir} (looked for {task}.json.gz and "
            f"{PARTIAL_DIR}/{task}_partial.json.gz) and matminer could not load it: {error}"
        ) from error
    return read_matbench_json(path, task)


def _input_type(task: str) -> str:
    from matbench.metadata import mbv01_metadata

    return mbv01_metadata[task].input_type


def read_target_table(path: Path) -> pd.DataFrame:
    """An official target table (bz2 JSON ``{"mbid": [...], "composition": [...], <target>:
    [...], ...}``) indexed by mbid."""
    with bz2.open(path) as handle:
        return pd.DataFrame(json.load(handle)).set_index("mbid")


def local_file(task: str, data_dir: Path) -> Path | None:
    for candidate in (
        data_dir / f"{task}.json.gz",
        data_dir / PARTIAL_DIR / f"{task}_partial.json.gz",
    ):
        if candidate.is_file():
            return candidate
    return None


def read_matbench_json(path: Path, task: str) -> pd.DataFrame:
    """Read a matminer-format JSON as matminer's reader does, its markers checked first
    (:func:`~matgnn.data.sources.matminer_json.read_matminer_json`: nothing in the file is
    imported); index rows by mbid.

    The full file has a 0-based row index, which gets matbench's ids exactly as
    ``matbench.data_ops.load`` makes them; a partial reconstruction is already indexed by mbid.
    """
    from matbench.metadata import mbv01_metadata

    frame = read_matminer_json(path)
    if pd.api.types.is_integer_dtype(frame.index):
        frame.index = mbids(task, frame.index, mbv01_metadata[task].n_samples)
    frame.index.name = "mbid"
    return frame


def mbids(task: str, rows, n_samples: int) -> list[str]:
    """Matbench's ids for 0-based rows (``matbench.data_ops.load``'s rule)."""
    digits = math.floor(math.log(n_samples, 10)) + 1
    prefix = task.replace("matbench", "mb").replace("_", "-")
    return [f"{prefix}-{i + 1:0{digits}d}" for i in rows]


def _row_aligned_frame(task: str, data_dir: Path) -> pd.DataFrame:
    """Structures of the row-aligned sibling task + this task's official target table."""
    from matbench.metadata import mbv01_metadata

    sibling = ROW_ALIGNED[task]
    path = local_file(sibling, data_dir)
    table = data_dir / TARGETS_DIR / f"{task}.json.bz2"
    if path is None or not table.is_file():
        raise FileNotFoundError(f"{task}: needs {sibling}'s structures and {table} in {data_dir}")
    structures = read_matbench_json(path, sibling)
    official = read_target_table(table)
    target = mbv01_metadata[task].target
    row = {sid: int(sid.rsplit("-", 1)[1]) - 1 for sid in structures.index}
    own_ids = mbids(task, [row[s] for s in structures.index], mbv01_metadata[task].n_samples)
    frame = pd.DataFrame(
        {
            "structure": structures["structure"].to_numpy(),
            target: official.loc[own_ids, target].to_numpy(),
        },
        index=pd.Index(own_ids, name="mbid"),
    )
    log.info("%s: %d rows from %s structures and %s", task, len(frame), sibling, table.name)
    return frame
