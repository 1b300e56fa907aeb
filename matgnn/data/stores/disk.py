"""On-disk graph store: graphs written once in shards, read lazily one graph at a time.

For data sets whose graphs do not fit in memory (``task.data.store=disk``). Layout::

    <cache_dir>/<key>/<dataset>.store/
        manifest.json            graph config, key, version, source fingerprint, shard list
        records.json, targets/   what the source returned, less the structures (see
                                 :mod:`matgnn.data.stores.records`)
        shard-00000.bin          the shard's graphs, one after another, each field's raw bytes
        shard-00000.npz          per graph: byte offset, every field's shape; atomic numbers
        shard-00000.json         ids, failures, field dtypes, SHA-256 of .bin and .npz

``key`` hashes the :class:`~matgnn.graphs.GraphConfig`, the matgnn version and the store
format, as the in-memory cache (:class:`~matgnn.graphs.GraphCache`) does. A shard is complete
once its JSON exists (written last, atomically, after the .bin and .npz it describes): a
killed build resumes at the first missing shard; a shard whose checksum does not verify is
reported and rebuilt, never used. Shards are built by worker processes (``workers``), each
writing its own files, so the build parallelises without a shared writer.

Why this format and not LMDB or a memory map: one graph is one ``pread`` of a contiguous byte
range, decoded by ``numpy.frombuffer`` (no pickle, no per-graph ``torch.load``), and nothing
is mapped into the process, so what a process holds is the index (a few bytes per graph) and
the batches in use; the file pages live in the operating system's page cache. LMDB and
``numpy.memmap`` serve reads from a mapping whose touched pages are counted in the reader's
RSS (shared and reclaimable, but they make each DDP rank's RSS grow with the store); that
design reason was not measured against this format here. Integer fields are stored in the
narrowest integer type that holds a shard's values (``lg_edge_index`` in int16 or int32
instead of int64) and widened on read.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import multiprocessing
import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from matgnn import __version__
from matgnn.graphs.builder import GraphBuilder
from matgnn.graphs.config import GraphConfig
from matgnn.graphs.data import ROW_FIELDS, CrystalGraph
from matgnn.graphs.structures import StructureLike

log = logging.getLogger(__name__)

FORMAT_VERSION = 2  # 2: exact_search graphs break ties in pymatgen's site-by-site order
MANIFEST = "manifest.json"
#: attributes every graph of a store shares (kept once, in the manifest)
SHARED = ("graph_fingerprint",)
#: attributes that are the graph's id (kept in the shard's id list)
NAMES = ("name",)
_INTEGERS = (np.int8, np.int16, np.int32, np.int64)


class StoreError(RuntimeError):
    """A store or shard is missing, stale or corrupt."""


def store_key(config: GraphConfig) -> str:
    blob = f"{config.fingerprint()}|{__version__}|store{FORMAT_VERSION}"
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def files_sha256(paths: Sequence[Path]) -> str:
    """One SHA-256 over the bytes of several files, in order, read in 1 MiB blocks."""
    h = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


@contextmanager
def build_lock(directory: Path) -> Iterator[None]:
    """An exclusive lock on ``<directory>.lock`` while a store is built: processes that start
    together (DDP ranks on one machine) build it once; the others wait and then open it. On
    several machines, build the store before the job (``python -m matgnn.data.stores``), as
    file locks on network file systems are not to be relied on."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    with open(directory.with_name(directory.name + ".lock"), "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _narrowest(values: np.ndarray) -> np.dtype:
    if values.size == 0:
        return np.dtype(np.int8)
    low, high = int(values.min()), int(values.max())
    for dtype in _INTEGERS:
        info = np.iinfo(dtype)
        if info.min <= low and high <= info.max:
            return np.dtype(dtype)
    return np.dtype(np.int64)


@dataclass
class FieldSpec:
    """One tensor field of a shard: its name, the dtype it has in memory and on disk, and its
    number of dimensions (the same for every graph)."""

    name: str
    dtype: str
    stored: str
    ndim: int


@dataclass
class Shard:
    """One shard's index: what :meth:`GraphStore.read` needs to decode its graphs.

    Shapes:
        offsets ``[G + 1]`` byte offsets of the graphs in the .bin file; shapes ``[G, D]`` the
        shapes of every field (D = the sum of the fields' ndim); atoms_offsets ``[G + 1]``
        into atomic_numbers ``[sum N]`` (uint8).
    """

    number: int
    ids: list[str]
    failures: dict[str, str]
    fingerprint: str
    fields: list[FieldSpec]
    offsets: np.ndarray
    shapes: np.ndarray
    atomic_numbers: np.ndarray
    atoms_offsets: np.ndarray


@dataclass
class ShardWork:
    """What one build task writes: shard ``number`` of the rows ``rows``."""

    number: int
    rows: list[int]


def _graph_arrays(graph: CrystalGraph) -> dict[str, np.ndarray]:
    arrays = {}
    for key, value in graph.items():
        if key in SHARED or key in NAMES:
            continue
        if not isinstance(value, torch.Tensor):
            raise StoreError(
                f"{graph.get('name')}: graph field {key!r} is a {type(value).__name__}; the "
                "disk store holds tensors (and the shared graph fingerprint) only"
            )
        arrays[key] = value.detach().cpu().numpy()
    return arrays


def write_shard(
    directory: Path,
    number: int,
    ids: Sequence[str],
    graphs: Sequence[CrystalGraph],
    failures: dict[str, str],
    fingerprint: str = "",
) -> dict[str, Any]:
    """Write shard ``number`` (``.bin`` and ``.npz`` first, the ``.json`` that marks it
    complete last, each through a temporary file and an atomic rename); returns its JSON.
    ``fingerprint`` names the structures the store is built from (checked when a store whose
    manifest was lost is resumed)."""
    arrays = [_graph_arrays(g) for g in graphs]
    names = sorted(arrays[0]) if arrays else []
    for sid, fields in zip(ids, arrays, strict=True):
        if sorted(fields) != names:
            raise StoreError(f"{sid}: graph fields {sorted(fields)} differ from {names}")
        for name in names:  # one layout per field: the index stores shapes, not dtypes
            first, value = arrays[0][name], fields[name]
            if value.ndim != first.ndim or value.dtype != first.dtype:
                raise StoreError(
                    f"{sid}: graph field {name!r} is {value.dtype} with {value.ndim} dims; "
                    f"{ids[0]}'s is {first.dtype} with {first.ndim}"
                )
    specs = []
    for name in names:
        dtype = arrays[0][name].dtype
        stored = (
            _narrowest(np.concatenate([a[name].ravel() for a in arrays]))
            if np.issubdtype(dtype, np.integer)
            else dtype
        )
        specs.append(FieldSpec(name, dtype.str, np.dtype(stored).str, arrays[0][name].ndim))
    stem = directory / f"shard-{number:05d}"
    offsets = np.zeros(len(arrays) + 1, dtype=np.int64)
    shapes = np.zeros((len(arrays), sum(s.ndim for s in specs)), dtype=np.int64)
    atoms = []
    tmp_bin = stem.with_suffix(".bin.tmp")
    with open(tmp_bin, "wb") as handle:
        for g, fields in enumerate(arrays):
            column = 0
            for spec in specs:
                value = fields[spec.name]
                shapes[g, column : column + spec.ndim] = value.shape
                column += spec.ndim
                handle.write(np.ascontiguousarray(value, dtype=spec.stored).tobytes())
            offsets[g + 1] = handle.tell()
            atoms.append(fields["atomic_numbers"].astype(np.uint8))
    counts = np.array([len(a) for a in atoms], dtype=np.int64)
    atoms_offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    tmp_npz = stem.with_suffix(".npz.tmp")
    with open(tmp_npz, "wb") as handle:
        np.savez(
            handle,
            offsets=offsets,
            shapes=shapes,
            atomic_numbers=np.concatenate(atoms) if atoms else np.zeros(0, np.uint8),
            atoms_offsets=atoms_offsets,
        )
    os.replace(tmp_bin, stem.with_suffix(".bin"))
    os.replace(tmp_npz, stem.with_suffix(".npz"))
    meta = {
        "format": FORMAT_VERSION,
        "number": number,
        "ids": list(ids),
        "failures": failures,
        "fingerprint": fingerprint,
        "fields": [vars(s) for s in specs],
        "bytes": int(offsets[-1]),
        "sha256": files_sha256([stem.with_suffix(".bin"), stem.with_suffix(".npz")]),
    }
    tmp_json = stem.with_suffix(".json.tmp")
    tmp_json.write_text(json.dumps(meta))
    os.replace(tmp_json, stem.with_suffix(".json"))
    return meta


#: shards this process has verified: stem -> (the files' stat, their SHA-256). Opening a store
#: and then rebuilding the shards that failed hashes every intact shard once, not twice; a
#: file written since (new device, inode, size or times) is hashed again.
_VERIFIED: dict[str, tuple[tuple[int, ...], str]] = {}
#: a file modified this recently when hashed is not remembered (as git's racy-clean rule): a
#: rewrite of the same size within the file system's timestamp tick would keep its stat
_SETTLED_S = 2.0


def _stat(paths: Sequence[Path]) -> tuple[int, ...]:
    """The files' identity and times: (device, inode, size, mtime, ctime) of each, in order."""
    return tuple(
        value
        for s in map(os.stat, paths)
        for value in (s.st_dev, s.st_ino, s.st_size, s.st_mtime_ns, s.st_ctime_ns)
    )


def _verify(stem: Path, paths: Sequence[Path], sha256: str) -> None:
    """:class:`StoreError` unless the files hash to ``sha256`` (skipped if this process hashed
    them, unchanged and settled since, to that value)."""
    stat = _stat(paths)
    if _VERIFIED.get(str(stem)) == (stat, sha256):
        return
    hashed_at = time.time_ns()
    if files_sha256(paths) != sha256:
        raise StoreError(f"{stem}: checksum mismatch")
    newest = max(stat[3::5] + stat[4::5])  # every file's mtime and ctime
    if hashed_at - newest > _SETTLED_S * 1e9 and _stat(paths) == stat:
        _VERIFIED[str(stem)] = (stat, sha256)


def read_shard_index(directory: Path, number: int, verify: bool = True) -> Shard:
    """Shard ``number``'s index; :class:`StoreError` if it is missing or does not verify."""
    stem = directory / f"shard-{number:05d}"
    paths = [stem.with_suffix(".bin"), stem.with_suffix(".npz")]
    json_path = stem.with_suffix(".json")
    if not json_path.is_file() or not all(p.is_file() for p in paths):
        raise StoreError(f"{stem}: shard missing or incomplete")
    try:
        meta = json.loads(json_path.read_text())
        if meta.get("format") != FORMAT_VERSION or meta.get("number") != number:
            raise StoreError(
                f"{json_path}: format {meta.get('format')}, number {meta.get('number')}"
            )
        if paths[0].stat().st_size != meta["bytes"]:
            raise StoreError(
                f"{paths[0]}: {paths[0].stat().st_size} bytes, expected {meta['bytes']}"
            )
        if verify:
            _verify(stem, paths, meta["sha256"])
        with np.load(paths[1], allow_pickle=False) as index:
            shard = Shard(
                number=number,
                ids=[str(i) for i in meta["ids"]],
                failures={str(k): str(v) for k, v in meta["failures"].items()},
                fingerprint=str(meta.get("fingerprint", "")),
                fields=[FieldSpec(**f) for f in meta["fields"]],
                offsets=index["offsets"],
                shapes=index["shapes"],
                atomic_numbers=index["atomic_numbers"],
                atoms_offsets=index["atoms_offsets"],
            )
    except StoreError:
        raise
    except Exception as exc:  # unreadable JSON or index: corrupt
        raise StoreError(f"{stem}: corrupt shard: {exc}") from None
    if not (len(shard.ids) + 1 == len(shard.offsets) == len(shard.atoms_offsets)):
        raise StoreError(
            f"{stem}: corrupt shard: index lengths differ from its {len(shard.ids)} ids"
        )
    return shard


# --- building ---------------------------------------------------------------------------------

# the structures a forked build worker reads (set in the parent before the pool starts)
_BUILD: dict[str, Any] = {}


def _build_shard(work: ShardWork) -> tuple[int, int]:
    directory: Path = _BUILD["directory"]
    structures: Sequence[StructureLike] = _BUILD["structures"]
    ids: Sequence[str] = _BUILD["ids"]
    builder = GraphBuilder(_BUILD["config"])
    graphs, built_ids, failures = [], [], {}
    for row in work.rows:
        sid = ids[row]
        try:
            graphs.append(builder(structures[row], name=sid))
            built_ids.append(sid)
        except ValueError as exc:
            if not _BUILD["skip_invalid"]:
                raise ValueError(str(exc)) from None
            failures[sid] = str(exc)
    write_shard(directory, work.number, built_ids, graphs, failures, _BUILD["fingerprint"])
    return work.number, len(work.rows)


def _init_worker() -> None:
    torch.set_num_threads(1)


@dataclass
class GraphStore:
    """The on-disk graphs of one data set for one graph config (see the module docstring).

    Args:
        directory: the store's folder (``<cache_dir>/<key>/<dataset>.store``; see
            :meth:`at`).
        config: the graph config the graphs are built with.
    """

    directory: Path
    config: GraphConfig
    shards: list[Shard] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)
    fingerprint: str = ""
    _positions: np.ndarray | None = None  # [num graphs, 2]: shard, row in shard
    _files: dict[int, int] = field(default_factory=dict, repr=False)  # shard -> fd

    @classmethod
    def at(cls, cache_dir: str | Path, config: GraphConfig, dataset: str) -> GraphStore:
        return cls(Path(cache_dir) / store_key(config) / f"{dataset}.store", config)

    # --- manifest ----------------------------------------------------------------------------
    def manifest(self) -> dict[str, Any] | None:
        path = self.directory / MANIFEST
        if not path.is_file():
            return None
        try:
            return json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise StoreError(f"corrupt store manifest {path}: {exc}") from None

    def expected(self, fingerprint: str, num_rows: int, shard_size: int) -> dict[str, Any]:
        return {
            "key": store_key(self.config),
            "version": __version__,
            "format": FORMAT_VERSION,
            "config": self.config.to_dict(),
            "fingerprint": fingerprint,
            "rows": num_rows,
            "shard_size": shard_size,
        }

    # --- building ----------------------------------------------------------------------------
    def build(
        self,
        structures: Sequence[StructureLike],
        ids: Sequence[str],
        fingerprint: str,
        shard_size: int = 1000,
        workers: int = 1,
        skip_invalid: bool = True,
        progress: bool = True,
        verify: bool = True,
    ) -> GraphStore:
        """Build the shards that are missing or do not verify (all of them the first time),
        in ``workers`` processes, then open the store.

        A store built for other structures (``fingerprint``), another number of rows or
        another shard size is stale: reported and rebuilt from scratch.
        """
        if shard_size < 1:
            raise ValueError(f"store shard_size must be >= 1, got {shard_size}")
        with build_lock(self.directory):
            try:  # another process may have built it while this one waited
                return self.open(fingerprint, verify=verify)
            except StoreError:
                pass
            self._build(
                structures, ids, fingerprint, shard_size, workers, skip_invalid, progress, verify
            )
        return self.open(fingerprint, verify=False)

    def _build(
        self, structures, ids, fingerprint, shard_size, workers, skip_invalid, progress, verify
    ) -> None:
        expected = self.expected(fingerprint, len(ids), shard_size)
        try:
            manifest = self.manifest()
        except StoreError as exc:
            log.warning("%s; rebuilding", exc)
            manifest = None
        if manifest is not None and {k: manifest.get(k) for k in expected} != expected:
            stale = {k: manifest.get(k) for k in expected if manifest.get(k) != expected[k]}
            log.warning(
                "stale graph store %s (differs in %s); rebuilding", self.directory, sorted(stale)
            )
            self._clear()
            manifest = None
        self.directory.mkdir(parents=True, exist_ok=True)
        if manifest is None:
            self._write_manifest({**expected, "complete": False})
        chunks = [
            ShardWork(n, list(range(start, min(start + shard_size, len(ids)))))
            for n, start in enumerate(range(0, len(ids), shard_size))
        ]
        todo = []
        for work in chunks:
            try:
                shard = read_shard_index(self.directory, work.number, verify=verify)
                # a shard kept from an earlier build (its manifest lost) must hold these rows
                # of these structures
                held = [*shard.ids, *shard.failures]
                if shard.fingerprint != fingerprint or sorted(held) != sorted(
                    str(ids[r]) for r in work.rows
                ):
                    raise StoreError(
                        f"{self.directory}: shard {work.number} holds other structures"
                    )
            except StoreError as exc:
                if (self.directory / f"shard-{work.number:05d}.json").exists():
                    log.warning("%s; rebuilding it", exc)
                todo.append(work)
        if todo and manifest is not None and manifest.get("complete"):
            # no reader may open the store while shards are being replaced
            self._write_manifest({**expected, "complete": False})
        if todo:
            log.info(
                "graph store %s: building %d of %d shards in %d process(es)",
                self.directory,
                len(todo),
                len(chunks),
                workers,
            )
        self._run(todo, structures, ids, fingerprint, workers, skip_invalid, progress)
        self._write_manifest({**expected, "shards": len(chunks), "complete": True})

    def _write_manifest(self, values: dict[str, Any]) -> None:
        """Replace the manifest in one rename (a reader sees the old one or the new one)."""
        tmp = self.directory / f"{MANIFEST}.{os.getpid()}.tmp"
        tmp.write_text(json.dumps(values))
        os.replace(tmp, self.directory / MANIFEST)

    def _run(self, todo, structures, ids, fingerprint, workers, skip_invalid, progress) -> None:
        _BUILD.update(
            directory=self.directory,
            fingerprint=fingerprint,
            structures=structures,
            ids=list(ids),
            config=self.config,
            skip_invalid=skip_invalid,
        )
        bar = tqdm(
            total=sum(len(w.rows) for w in todo),
            disable=None if progress else True,
            desc=f"graph store ({self.directory.name})",
            unit="structure",
        )
        try:
            if workers <= 1 or len(todo) <= 1:
                for work in todo:
                    bar.update(_build_shard(work)[1])
            else:
                context = multiprocessing.get_context("fork")
                with context.Pool(workers, initializer=_init_worker) as pool:
                    for _, rows in pool.imap_unordered(_build_shard, todo):
                        bar.update(rows)
        finally:
            bar.close()
            _BUILD.clear()

    def _clear(self) -> None:
        for path in self.directory.glob("shard-*"):
            path.unlink()
        (self.directory / MANIFEST).unlink(missing_ok=True)

    # --- reading -----------------------------------------------------------------------------
    def open_verified(self, fingerprint: str | None = None, verify: bool = True) -> GraphStore:
        """:meth:`open` under the build lock. A store that fails to open (a shard that does not
        verify, say) is marked incomplete before the lock is released, so that no process
        opening it afterwards without checking (``verify=False``) takes it."""
        with build_lock(self.directory):
            try:
                return self.open(fingerprint, verify=verify)
            except StoreError:
                try:
                    manifest = self.manifest()
                except StoreError:
                    manifest = None
                if manifest is not None and manifest.get("complete"):
                    self._write_manifest({**manifest, "complete": False})
                raise

    def open(self, fingerprint: str | None = None, verify: bool = True) -> GraphStore:
        """Read the manifest and every shard's index (checked by SHA-256 with ``verify``);
        :class:`StoreError` if the store is incomplete, stale (``fingerprint`` given and
        different) or corrupt."""
        manifest = self.manifest()
        if manifest is None or not manifest.get("complete"):
            raise StoreError(f"no complete graph store at {self.directory}")
        expected = {"key": store_key(self.config), "version": __version__, "format": FORMAT_VERSION}
        if fingerprint is not None:
            expected["fingerprint"] = fingerprint
        stale = {k: manifest.get(k) for k in expected if manifest.get(k) != expected[k]}
        if stale:
            raise StoreError(f"stale graph store {self.directory}: differs in {sorted(stale)}")
        self.close()
        self.shards = [
            read_shard_index(self.directory, n, verify) for n in range(manifest["shards"])
        ]
        self.fingerprint = manifest["fingerprint"]
        self.ids = [i for s in self.shards for i in s.ids]
        self.failures = {k: v for s in self.shards for k, v in s.failures.items()}
        self._positions = np.concatenate(
            [
                np.stack([np.full(len(s.ids), s.number), np.arange(len(s.ids))], axis=1)
                for s in self.shards
            ]
            or [np.zeros((0, 2), dtype=np.int64)]
        ).astype(np.int64)
        return self

    def __len__(self) -> int:
        return len(self.ids)

    def _fd(self, shard: int) -> int:
        fd = self._files.get(shard)
        if fd is None:
            fd = os.open(self.directory / f"shard-{shard:05d}.bin", os.O_RDONLY)
            self._files[shard] = fd
        return fd

    def read(self, index: int) -> CrystalGraph:
        """Graph ``index`` (in the store's order, :attr:`ids`): one ``pread`` and a decode."""
        shard_number, row = (int(v) for v in self._positions[index])
        shard = self.shards[shard_number]
        start, end = int(shard.offsets[row]), int(shard.offsets[row + 1])
        data = os.pread(self._fd(shard_number), end - start, start)
        if len(data) != end - start:
            raise StoreError(f"{self.directory}: shard {shard_number} truncated at graph {row}")
        graph = CrystalGraph()
        position, column = 0, 0
        for spec in shard.fields:
            shape = tuple(int(v) for v in shard.shapes[row, column : column + spec.ndim])
            column += spec.ndim
            stored = np.dtype(spec.stored)
            size = int(np.prod(shape, dtype=np.int64)) * stored.itemsize
            value = np.frombuffer(
                data, dtype=stored, count=size // stored.itemsize, offset=position
            )
            position += size
            graph[spec.name] = torch.from_numpy(value.astype(np.dtype(spec.dtype)).reshape(shape))
        graph.name = shard.ids[row]
        graph.graph_fingerprint = self.config.fingerprint()
        return graph

    def atomic_numbers(self, index: int) -> np.ndarray:
        """Graph ``index``'s atomic numbers from the index in memory (no read)."""
        shard_number, row = (int(v) for v in self._positions[index])
        shard = self.shards[shard_number]
        return shard.atomic_numbers[shard.atoms_offsets[row] : shard.atoms_offsets[row + 1]]

    def num_atoms(self) -> np.ndarray:
        """``[num graphs]`` atoms of every graph."""
        return np.concatenate([np.diff(s.atoms_offsets) for s in self.shards] or [np.zeros(0)])

    def feature_rows(self) -> np.ndarray:
        """``[num graphs]`` feature rows of every graph (atoms plus the rows of its index
        fields, :data:`~matgnn.graphs.data.ROW_FIELDS`), from the shapes in the index (no
        read)."""
        counts = []
        for shard in self.shards:
            rows = np.diff(shard.atoms_offsets).astype(np.int64)
            column = 0
            for spec in shard.fields:
                if spec.name in ROW_FIELDS:
                    rows = rows + shard.shapes[:, column + ROW_FIELDS[spec.name]].astype(np.int64)
                column += spec.ndim
            counts.append(rows)
        return np.concatenate(counts or [np.zeros(0, dtype=np.int64)])

    def close(self) -> None:
        for fd in self._files.values():
            os.close(fd)
        self._files = {}

    def __getstate__(self) -> dict[str, Any]:  # DataLoader workers (spawn) reopen the files
        state = dict(self.__dict__)
        state["_files"] = {}
        return state

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # interpreter shutdown
            pass
