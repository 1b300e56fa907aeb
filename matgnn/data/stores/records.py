"""What a source returned, less its structures: kept next to the disk graph store so that a
run whose graphs are stored does not load (and hold) every structure again.

``<cache_dir>/records/<name>-<source key>/records.json`` holds the ids, the split, the rows the
source dropped and the structures' fingerprint (which names the graph store); each target
column is an ``.npy`` file (ragged per-atom columns: values and row lengths). Nothing is
pickled. The source key (:func:`source_key`) hashes the loader (module, name, arguments) and
the size and modification time of every file its path arguments name, so changed data files
or arguments load the source again.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from matgnn.data.records import Records

FORMAT_VERSION = 1
MAX_FILES = 20_000  # files stat-ed under one path argument before giving up on the key


class NotLoaded(Sequence):
    """The structures of records read back from a store manifest: not in memory."""

    def __init__(self, name: str, length: int) -> None:
        self.name, self.length = name, length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index):  # type: ignore[override]
        raise RuntimeError(
            f"{self.name}: structures are not loaded (the records were read back from the "
            "graph store); load the source itself to get them"
        )


def _path_stats(value: str) -> list[Any] | None:
    path = Path(value)
    if not path.exists():
        return None
    if path.is_file():
        stat = path.stat()
        return [str(path.resolve()), stat.st_size, stat.st_mtime_ns]
    stats = []
    for count, (root, _, files) in enumerate(os.walk(path)):
        for name in sorted(files):
            stat = os.stat(os.path.join(root, name))
            stats.append(
                [os.path.relpath(os.path.join(root, name), path), stat.st_size, stat.st_mtime_ns]
            )
        if count > MAX_FILES or len(stats) > MAX_FILES:
            return None  # too many files to stat: no key
    return [str(path.resolve()), sorted(stats)]


def source_key(source: Callable[[], Records]) -> str | None:
    """A hash of a ``functools.partial`` loader (its function, arguments, and the files its
    string arguments name); ``None`` for anything else (the source is then always loaded)."""
    if not isinstance(source, functools.partial):
        return None
    func = source.func
    described: dict[str, Any] = {
        "func": f"{getattr(func, '__module__', '')}.{getattr(func, '__qualname__', repr(func))}",
        "args": [repr(a) for a in source.args],
        "keywords": {k: repr(v) for k, v in sorted(source.keywords.items())},
    }
    files = {}
    for name, value in [*enumerate(source.args), *source.keywords.items()]:
        if isinstance(value, (str, os.PathLike)) and str(value):
            stats = _path_stats(str(value))
            if stats is None and Path(value).exists():
                return None
            if stats is not None:
                files[str(name)] = stats
    described["files"] = files
    blob = json.dumps(described, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _folder(cache_dir: str | Path, name: str, key: str) -> Path:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
    return Path(cache_dir) / "records" / f"{safe}-{key}"


def save_records(cache_dir: str | Path, key: str, records: Records, fingerprint: str) -> None:
    """Write ``records`` less the structures. Safe when several processes (DDP ranks) save
    the same records at once: each writes a folder of its own, which replaces the published
    one in one rename; a reader sees a complete folder or none (and then loads the source)."""
    folder = _folder(cache_dir, records.name, key)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.new-"))
    try:
        _write_records(staging, key, records, fingerprint)
        _publish(staging, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _write_records(folder: Path, key: str, records: Records, fingerprint: str) -> None:
    columns = {}
    for number, (column, values) in enumerate(records.targets.items()):
        stem = f"target{number}"
        if isinstance(values, np.ndarray) and values.dtype != object:
            np.save(folder / f"{stem}.npy", values, allow_pickle=False)
            columns[column] = {"kind": "array", "file": f"{stem}.npy"}
        else:
            rows = [np.asarray(v) for v in values]
            lengths = np.array([len(r) for r in rows], dtype=np.int64)
            flat = np.concatenate(rows) if rows else np.zeros(0)
            np.save(folder / f"{stem}.npy", flat, allow_pickle=False)
            np.save(folder / f"{stem}.lengths.npy", lengths, allow_pickle=False)
            columns[column] = {"kind": "ragged", "file": f"{stem}.npy"}
    meta = {
        "format": FORMAT_VERSION,
        "key": key,
        "name": records.name,
        "ids": list(records.ids),
        "split": None if records.split is None else {k: list(v) for k, v in records.split.items()},
        "dropped": dict(records.dropped),
        "fingerprint": fingerprint,
        "targets": columns,
    }
    (folder / "records.json").write_text(json.dumps(meta))


def _publish(staging: Path, folder: Path, attempts: int = 10) -> None:
    """Rename ``staging`` to ``folder``, replacing an older ``folder``. Processes racing to
    publish the same records each retire what is there and rename theirs in; one that finds a
    complete folder in place when its rename fails leaves it (the records are the same)."""
    for _ in range(attempts):
        if folder.exists():
            retired = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.old-"))
            with contextlib.suppress(FileNotFoundError):  # another process retired it first
                os.rename(folder, retired / "records")
            shutil.rmtree(retired, ignore_errors=True)
        try:
            os.rename(staging, folder)
            return
        except OSError:
            if (folder / "records.json").is_file():  # published by another process
                return
    raise OSError(f"could not publish the records in {folder} after {attempts} attempts")


def _ragged(flat: np.ndarray, lengths: np.ndarray) -> Iterator[np.ndarray]:
    start = 0
    for length in lengths:
        yield flat[start : start + int(length)]
        start += int(length)


def load_records(cache_dir: str | Path, key: str) -> tuple[Records, str] | None:
    """``(records without structures, structures fingerprint)`` saved under ``key``, or
    ``None`` when there are none (or they cannot be read: the source is loaded again)."""
    base = Path(cache_dir) / "records"
    if not base.is_dir():
        return None
    for folder in sorted(base.glob(f"*-{key}")):
        try:
            meta = json.loads((folder / "records.json").read_text())
            if meta.get("format") != FORMAT_VERSION or meta.get("key") != key:
                continue
            targets: dict[str, Any] = {}
            for column, spec in meta["targets"].items():
                values = np.load(folder / spec["file"], allow_pickle=False)
                if spec["kind"] == "ragged":
                    lengths = np.load(
                        folder / spec["file"].replace(".npy", ".lengths.npy"), allow_pickle=False
                    )
                    values = list(_ragged(values, lengths))
                targets[column] = values
            records = Records(
                ids=meta["ids"],
                structures=NotLoaded(meta["name"], len(meta["ids"])),
                targets=targets,
                name=meta["name"],
                split=meta["split"],
                dropped=meta["dropped"],
            )
            return records, str(meta["fingerprint"])
        except (OSError, ValueError, KeyError, json.JSONDecodeError):
            continue
    return None
