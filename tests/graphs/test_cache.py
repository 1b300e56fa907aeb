"""The disk cache reloads identical graphs and never uses a stale or corrupt file."""

from __future__ import annotations

import json
import logging

import pytest
import torch

from matgnn.graphs import GraphConfig, build_graphs
from matgnn.graphs import cache as cache_module
from matgnn.graphs.cache import GraphCache

CONFIG = GraphConfig(mode="knn", line_graph=True, keep_ties=True, grow_cutoff=True)


def assert_same(a, b) -> None:
    assert a.keys() == b.keys()
    for key in a.keys():
        if isinstance(a[key], torch.Tensor):
            assert torch.equal(a[key], b[key]), key
        else:
            assert a[key] == b[key], key


def count_builds(monkeypatch) -> list[int]:
    calls = [0]
    original = cache_module.GraphBuilder.__call__

    def counting(self, *args, **kwargs):
        calls[0] += 1
        return original(self, *args, **kwargs)

    monkeypatch.setattr(cache_module.GraphBuilder, "__call__", counting)
    return calls


def test_reload_gives_identical_graphs(mp_structures, tmp_path, monkeypatch) -> None:
    calls = count_builds(monkeypatch)
    first = build_graphs(mp_structures[:5], CONFIG, cache_dir=tmp_path, progress=False)
    assert calls[0] == 5
    second = build_graphs(mp_structures[:5], CONFIG, cache_dir=tmp_path, progress=False)
    assert calls[0] == 5  # nothing rebuilt
    assert second.ids == first.ids
    for a, b in zip(first.graphs, second.graphs, strict=True):
        assert_same(a, b)


def test_key_follows_config_and_version(tmp_path) -> None:
    a = GraphCache(tmp_path, CONFIG, "d")
    b = GraphCache(
        tmp_path,
        GraphConfig(mode="knn", line_graph=True, keep_ties=True, grow_cutoff=True, cutoff=7.0),
        "d",
    )
    assert a.key != b.key
    assert a.key == GraphCache(tmp_path, GraphConfig.from_dict(CONFIG.to_dict()), "d").key


def test_key_follows_the_package_and_format_versions(tmp_path, monkeypatch) -> None:
    """A new matgnn release or cache format never reads graphs built by the old one."""
    key = GraphCache(tmp_path, CONFIG, "d").key
    monkeypatch.setattr(cache_module, "__version__", cache_module.__version__ + ".post1")
    released = GraphCache(tmp_path, CONFIG, "d").key
    monkeypatch.setattr(cache_module, "FORMAT_VERSION", cache_module.FORMAT_VERSION + 1)
    reformatted = GraphCache(tmp_path, CONFIG, "d").key
    assert len({key, released, reformatted}) == 3


def test_stale_cache_is_rebuilt(mp_structures, tmp_path, monkeypatch, caplog) -> None:
    build_graphs(mp_structures[:3], CONFIG, cache_dir=tmp_path, progress=False)
    calls = count_builds(monkeypatch)
    with caplog.at_level(logging.WARNING):
        rebuilt = build_graphs(mp_structures[1:4], CONFIG, cache_dir=tmp_path, progress=False)
    assert calls[0] == 3
    assert "stale cache" in caplog.text
    assert len(rebuilt.graphs) == 3


def test_corrupt_cache_is_detected(mp_structures, tmp_path, monkeypatch, caplog) -> None:
    build_graphs(mp_structures[:3], CONFIG, cache_dir=tmp_path, progress=False)
    cache = GraphCache(tmp_path, CONFIG, "dataset")
    blob = bytearray(cache.data_path.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    cache.data_path.write_bytes(bytes(blob))
    calls = count_builds(monkeypatch)
    with caplog.at_level(logging.WARNING):
        build_graphs(mp_structures[:3], CONFIG, cache_dir=tmp_path, progress=False)
    assert calls[0] == 3 and "checksum mismatch" in caplog.text
    meta = json.loads(cache.meta_path.read_text())
    meta["version"] = "0.0.0"
    cache.meta_path.write_text(json.dumps(meta))
    with pytest.raises(cache_module.CacheError, match="stale"):
        cache.load(meta["fingerprint"])


def test_invalid_structures_are_reported_by_id(mp_structures, tmp_path) -> None:
    from pymatgen.core import Lattice, Structure

    bad = Structure(Lattice.cubic(4.0), ["Na", "Cl"], [[0, 0, 0], [0.01, 0, 0]])
    structures = [mp_structures[0], bad, mp_structures[1]]
    with pytest.raises(ValueError, match=r"^bad-1: overlapping"):
        build_graphs(structures, CONFIG, ids=["a", "bad-1", "c"], progress=False)
    built = build_graphs(
        structures,
        CONFIG,
        ids=["a", "bad-1", "c"],
        skip_invalid=True,
        cache_dir=tmp_path,
        progress=False,
    )
    assert built.ids == ["a", "c"] and list(built.failures) == ["bad-1"]
    again = build_graphs(
        structures,
        CONFIG,
        ids=["a", "bad-1", "c"],
        skip_invalid=True,
        cache_dir=tmp_path,
        progress=False,
    )
    assert again.failures == built.failures
