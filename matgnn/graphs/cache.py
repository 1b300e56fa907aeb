"""Build a dataset's graphs once and reload them: an on-disk cache keyed by the graph config.

Layout: ``<cache_dir>/<key>/<dataset>.pt`` plus ``<dataset>.json``, where ``key`` hashes the
:class:`GraphConfig`, the matgnn version and the storage format. The JSON records the key, the
dataset fingerprint (ids and structure contents), the number of graphs and the SHA-256 of the
``.pt`` file. A cache whose key or fingerprint differs is *stale*, one whose checksum or
contents do not verify is *corrupt*; both are reported with a warning and rebuilt, never used.
Graphs are stored collated (one tensor per field) and loaded with ``weights_only=True``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from pymatgen.core import Structure
from torch_geometric.data.collate import collate
from torch_geometric.data.separate import separate
from tqdm.auto import tqdm

from matgnn import __version__
from matgnn.graphs.builder import GraphBuilder
from matgnn.graphs.config import GraphConfig
from matgnn.graphs.data import CrystalGraph
from matgnn.graphs.site_descriptors import OXIDATION_PROPERTY, SITE_PROPERTY
from matgnn.graphs.structures import StructureLike

log = logging.getLogger(__name__)
FORMAT_VERSION = 3  # 2: graphs carry graph_fingerprint; 3: exact_search ties in site order


class CacheError(RuntimeError):
    """A cache file is stale or corrupt."""


def structures_fingerprint(structures: Sequence[StructureLike], ids: Sequence[str]) -> str:
    """Hash of the ids and (for pymatgen structures) lattice, coordinates, species and the site
    properties a graph can depend on (the prototype site labels and oxidation states of
    :mod:`matgnn.graphs.site_descriptors`; structures without them hash as before)."""
    h = hashlib.sha256()
    for sid, s in zip(ids, structures, strict=True):
        h.update(str(sid).encode())
        if isinstance(s, Structure):
            h.update(np.asarray(s.lattice.matrix, dtype=np.float64).tobytes())
            h.update(np.asarray(s.frac_coords, dtype=np.float64).tobytes())
            h.update(np.asarray(s.atomic_numbers, dtype=np.int64).tobytes())
            for key in (SITE_PROPERTY, OXIDATION_PROPERTY):
                if key in s.site_properties:
                    h.update(f"{key}={s.site_properties[key]}".encode())
        else:
            h.update(str(s).encode())
    return h.hexdigest()


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@dataclass
class BuiltGraphs:
    """Graphs of the structures that could be built, and why the others could not."""

    graphs: list[CrystalGraph]
    ids: list[str]
    failures: dict[str, str] = field(default_factory=dict)


class GraphCache:
    """On-disk store of one dataset's graphs for one graph config."""

    def __init__(self, cache_dir: str | Path, config: GraphConfig, dataset: str) -> None:
        self.config = config
        blob = f"{config.fingerprint()}|{__version__}|{FORMAT_VERSION}"
        self.key = hashlib.sha256(blob.encode()).hexdigest()[:16]
        self.directory = Path(cache_dir) / self.key
        self.data_path = self.directory / f"{dataset}.pt"
        self.meta_path = self.directory / f"{dataset}.json"

    def load(self, fingerprint: str) -> BuiltGraphs:
        """Load the cached graphs; raise :class:`CacheError` if absent, stale or corrupt."""
        if not (self.data_path.is_file() and self.meta_path.is_file()):
            raise CacheError(f"no cache at {self.data_path}")
        try:
            meta = json.loads(self.meta_path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise CacheError(f"corrupt cache metadata {self.meta_path}: {exc}") from None
        expected = {
            "key": self.key,
            "version": __version__,
            "format": FORMAT_VERSION,
            "fingerprint": fingerprint,
        }
        stale = {k: (meta.get(k), v) for k, v in expected.items() if meta.get(k) != v}
        if stale:
            raise CacheError(f"stale cache {self.data_path}: {stale}")
        if file_sha256(self.data_path) != meta.get("sha256"):
            raise CacheError(f"corrupt cache {self.data_path}: checksum mismatch")
        try:
            payload = torch.load(self.data_path, weights_only=True)
            batch = CrystalGraph.from_dict(payload["data"])
            slices = payload["slices"]
            graphs = [
                separate(CrystalGraph, batch=batch, idx=i, slice_dict=slices, decrement=False)
                for i in range(meta["num_graphs"])
            ]
        except Exception as exc:
            raise CacheError(f"corrupt cache {self.data_path}: {exc}") from None
        return BuiltGraphs(graphs, list(meta["ids"]), dict(meta.get("failures", {})))

    def save(self, built: BuiltGraphs, fingerprint: str) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        if built.graphs:
            data, slices, _ = collate(CrystalGraph, built.graphs, increment=False, add_batch=False)
            payload = {"data": data.to_dict(), "slices": slices}
        else:
            payload = {"data": {}, "slices": {}}
        tmp = self.data_path.with_suffix(".pt.tmp")
        torch.save(payload, tmp)
        os.replace(tmp, self.data_path)
        meta = {
            "key": self.key,
            "version": __version__,
            "format": FORMAT_VERSION,
            "fingerprint": fingerprint,
            "config": self.config.to_dict(),
            "num_graphs": len(built.graphs),
            "ids": built.ids,
            "failures": built.failures,
            "sha256": file_sha256(self.data_path),
        }
        tmp_meta = self.meta_path.with_suffix(".json.tmp")
        tmp_meta.write_text(json.dumps(meta))
        os.replace(tmp_meta, self.meta_path)


def build_graphs(
    structures: Sequence[StructureLike],
    config: GraphConfig,
    ids: Sequence[str] | None = None,
    cache_dir: str | Path | None = None,
    dataset: str = "dataset",
    skip_invalid: bool = False,
    progress: bool = True,
) -> BuiltGraphs:
    """Build (or reload from ``cache_dir``) the graphs of many structures.

    Args:
        structures: anything :func:`~matgnn.graphs.build_graph` accepts.
        config: the graph config (part of the cache key).
        ids: one id per structure (default: its position); used in error messages.
        cache_dir: directory of the on-disk cache; ``None`` disables caching.
        dataset: file name of this dataset inside the cache.
        skip_invalid: record invalid structures in ``failures`` (id -> reason) instead of
            raising on the first.
        progress: show a progress bar when the output is a terminal (``False``: never); logs
            and notebooks without widgets get none.
    """
    ids = [str(i) for i in (ids if ids is not None else range(len(structures)))]
    if len(ids) != len(structures):
        raise ValueError(f"{len(ids)} ids for {len(structures)} structures")
    cache = GraphCache(cache_dir, config, dataset) if cache_dir is not None else None
    fingerprint = structures_fingerprint(structures, ids) if cache else ""
    if cache is not None:
        try:
            built = cache.load(fingerprint)
            if built.failures and not skip_invalid:
                first = next(iter(built.failures.items()))
                raise ValueError(f"{first[0]}: {first[1]}")
            return built
        except CacheError as exc:
            if cache.data_path.exists():
                log.warning("%s; rebuilding", exc)
    builder = GraphBuilder(config)
    built = BuiltGraphs([], [])
    for sid, structure in tqdm(
        list(zip(ids, structures, strict=True)),
        disable=None if progress else True,  # None: only on a terminal
        desc=f"graphs ({dataset})",
        unit="structure",
    ):
        try:
            built.graphs.append(builder(structure, name=sid))
            built.ids.append(sid)
        except ValueError as exc:
            if not skip_invalid:
                raise
            built.failures[sid] = str(exc)
    if built.failures:
        log.warning(
            "%d of %d structures rejected, e.g. %s",
            len(built.failures),
            len(structures),
            next(iter(built.failures.values())),
        )
    if cache is not None:
        cache.save(built, fingerprint)
    return built
