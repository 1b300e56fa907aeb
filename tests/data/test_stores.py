"""The on-disk graph store: the same graphs as building them in memory, resumable and verified
building in worker processes, records read back without loading the source, lazy subsets."""

from __future__ import annotations

import functools
import json
import logging

import numpy as np
import pytest
import torch
from pymatgen.core import Lattice, Structure
from torch_geometric.data import Batch

from matgnn.data import CrystalDataModule, Records
from matgnn.data.samples import mp_sample_structures
from matgnn.data.stores import GraphStore, StoredSubset, disk
from matgnn.data.stores.records import NotLoaded, load_records, save_records, source_key
from matgnn.graphs import GraphConfig, build_graphs
from matgnn.graphs.cache import structures_fingerprint
from matgnn.outputs import ScalarOutput

CALLS: list[int] = []


def sample_source(limit: int, broken: bool = False) -> Records:
    """A real source of ``limit`` MP sample crystals with a made-up-free target: the number
    of atoms per cell (a property of the structure itself, so no label is invented)."""
    CALLS.append(limit)
    ids, structures = mp_sample_structures(limit)
    if broken:  # two atoms on one site: the builder refuses it
        structures = [*structures[:-1], Structure(Lattice.cubic(3), ["Na", "Cl"], [[0] * 3] * 2)]
    targets = {"n": np.array([float(len(s)) for s in structures])}
    return Records(list(ids), structures, targets, name=f"sample{limit}")


def assert_same_graph(a, b) -> None:
    assert sorted(a.keys()) == sorted(b.keys())
    for key in a.keys():
        if isinstance(a[key], torch.Tensor):
            assert a[key].dtype == b[key].dtype, key
            assert torch.equal(a[key], b[key]), key
        else:
            assert a[key] == b[key], key


def flip_a_byte(path, at: int) -> None:
    """Damage a stored file in place (same size): byte ``at`` inverted."""
    data = bytearray(path.read_bytes())
    data[at] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.fixture(scope="module")
def sample():
    ids, structures = mp_sample_structures(24)
    return list(ids), structures


@pytest.mark.parametrize("preset", ["alignn", "potnet", "matformer"])
def test_store_reads_back_exactly_the_graphs_built_in_memory(sample, preset, tmp_path):
    ids, structures = sample
    config = GraphConfig.preset(preset)
    fingerprint = structures_fingerprint(structures, ids)
    store = GraphStore.at(tmp_path, config, "sample").build(
        structures, ids, fingerprint, shard_size=7, progress=False
    )
    reference = build_graphs(structures, config, ids=ids, progress=False)
    assert store.ids == reference.ids and len(store) == len(ids)
    for index, graph in enumerate(reference.graphs):
        assert_same_graph(store.read(index), graph)
        assert np.array_equal(store.atomic_numbers(index), graph.atomic_numbers.numpy())
    # narrow integers on disk: the line graph of 24 small cells fits in int16
    fields = {f.name: f for f in store.shards[0].fields}
    assert (
        np.dtype(fields["lg_edge_index" if preset == "alignn" else "edge_index"].stored).itemsize
        < 8
    )


def test_two_build_processes_write_the_same_shards_as_one(sample, tmp_path):
    ids, structures = sample
    config = GraphConfig.preset("cgcnn")
    fingerprint = structures_fingerprint(structures, ids)
    one = GraphStore.at(tmp_path / "one", config, "s").build(
        structures, ids, fingerprint, shard_size=5, progress=False
    )
    two = GraphStore.at(tmp_path / "two", config, "s").build(
        structures, ids, fingerprint, shard_size=5, workers=2, progress=False
    )
    for a in one.shards:
        for suffix in (".bin", ".npz"):
            name = f"shard-{a.number:05d}{suffix}"
            assert (one.directory / name).read_bytes() == (two.directory / name).read_bytes()
    assert two.ids == ids


def test_a_killed_or_corrupted_build_resumes_with_the_missing_shards_only(
    sample, tmp_path, monkeypatch, caplog
):
    ids, structures = sample
    config = GraphConfig.preset("cgcnn")
    fingerprint = structures_fingerprint(structures, ids)
    store = GraphStore.at(tmp_path, config, "s")
    store.build(structures, ids, fingerprint, shard_size=5, progress=False)
    reference = [store.read(i) for i in range(len(store))]
    store.close()
    # killed while writing shard 1 (no JSON yet) and shard 3's bytes damaged afterwards
    (store.directory / "shard-00001.json").unlink()
    flip_a_byte(store.directory / "shard-00003.bin", 10)
    written, complete = [], []
    original = disk.write_shard

    def spy(directory, number, *args):
        # while shards are replaced the manifest must not call the store complete
        complete.append(json.loads((directory / disk.MANIFEST).read_text())["complete"])
        written.append(number)
        return original(directory, number, *args)

    monkeypatch.setattr(disk, "write_shard", spy)
    with pytest.raises(disk.StoreError, match="shard-00001: shard missing"):
        GraphStore.at(tmp_path, config, "s").open(fingerprint)
    with caplog.at_level(logging.WARNING):
        again = GraphStore.at(tmp_path, config, "s").build(
            structures, ids, fingerprint, shard_size=5, progress=False
        )
    assert sorted(written) == [1, 3] and complete == [False, False]
    assert "checksum mismatch" in caplog.text
    for index, graph in enumerate(reference):
        assert_same_graph(again.read(index), graph)


def test_shards_left_by_a_build_of_other_structures_are_not_taken_over(sample, tmp_path):
    """The manifest lost (deleted by hand), shards of another build in the folder: a shard is
    kept only if it holds the rows now asked for, of the same structures."""
    ids, structures = sample
    config = GraphConfig.preset("cgcnn")
    store = GraphStore.at(tmp_path, config, "s")
    store.build(structures[:10], ids[:10], "old", shard_size=5, progress=False)
    store.close()
    (store.directory / disk.MANIFEST).unlink()
    rebuilt = GraphStore.at(tmp_path, config, "s").build(
        structures[10:20], ids[10:20], "new", shard_size=5, progress=False
    )
    assert rebuilt.ids == ids[10:20]
    assert {s.fingerprint for s in rebuilt.shards} == {"new"}


def test_a_graph_field_of_another_layout_is_refused_by_id(sample, tmp_path):
    ids, structures = sample
    graphs = build_graphs(structures[:2], GraphConfig.preset("cgcnn"), ids=ids[:2]).graphs
    graphs[1].cell_offset = graphs[1].cell_offset.float()
    with pytest.raises(disk.StoreError, match=rf"{ids[1]}: graph field 'cell_offset' is float32"):
        disk.write_shard(tmp_path, 0, ids[:2], graphs, {})


def test_other_structures_make_the_store_stale_and_it_is_rebuilt(sample, tmp_path, caplog):
    ids, structures = sample
    config = GraphConfig.preset("cgcnn")
    store = GraphStore.at(tmp_path, config, "s")
    store.build(structures, ids, structures_fingerprint(structures, ids), progress=False)
    changed = [structures[1], *structures[1:]]
    with pytest.raises(disk.StoreError, match="stale"):
        GraphStore.at(tmp_path, config, "s").open(structures_fingerprint(changed, ids))
    with caplog.at_level(logging.WARNING):
        rebuilt = GraphStore.at(tmp_path, config, "s").build(
            changed, ids, structures_fingerprint(changed, ids), progress=False
        )
    assert "stale graph store" in caplog.text
    assert_same_graph(rebuilt.read(0), build_graphs([changed[0]], config, ids=[ids[0]]).graphs[0])


def test_invalid_structures_are_kept_as_failures_named_by_id(tmp_path):
    records = sample_source(6, broken=True)
    config = GraphConfig.preset("cgcnn")
    store = GraphStore.at(tmp_path, config, "s").build(
        records.structures, records.ids, "x", shard_size=4, progress=False
    )
    assert list(store.failures) == [records.ids[-1]] and len(store) == 5
    with pytest.raises(ValueError, match=records.ids[-1]):
        GraphStore.at(tmp_path, config, "s").build(
            records.structures, records.ids, "y", shard_size=4, skip_invalid=False, progress=False
        )


def disk_module(tmp_path, limit=30, **split):
    return CrystalDataModule(
        functools.partial(sample_source, limit),
        GraphConfig.preset("cgcnn"),
        [ScalarOutput("n")],
        split={"seed": 3, **split},
        batch_size=8,
        cache_dir=tmp_path,
        store="disk",
        shard_size=8,
    )


def test_disk_data_module_gives_the_memory_module_s_subsets_and_batches(tmp_path):
    memory = CrystalDataModule(
        functools.partial(sample_source, 30),
        GraphConfig.preset("cgcnn"),
        [ScalarOutput("n")],
        split={"seed": 3},
        batch_size=8,
    )
    memory.setup()
    stored = disk_module(tmp_path)
    stored.setup()
    assert stored.split_ids() == memory.split_ids()
    for subset in ("train", "val", "test"):
        assert isinstance(stored.subsets[subset], StoredSubset)
        a = Batch.from_data_list(list(memory.subsets[subset]))
        b = Batch.from_data_list(list(stored.subsets[subset]))
        assert a.sample_id == b.sample_id
        for key in ("atomic_numbers", "edge_index", "cell_offset", "pos", "target_n", "batch"):
            assert torch.equal(a[key], b[key]), key
        light = stored.subsets[subset].light()
        assert [g.sample_id for g in light] == a.sample_id
        assert torch.equal(torch.cat([g.atomic_numbers for g in light]), a.atomic_numbers)


def test_a_second_run_reads_records_and_graphs_back_without_loading_the_source(tmp_path):
    first = disk_module(tmp_path, 20)
    CALLS.clear()
    first.setup()
    assert CALLS == [20]
    second = disk_module(tmp_path, 20)
    second.setup()
    assert CALLS == [20], "the source was loaded again"
    assert second.split_ids() == first.split_ids()
    assert isinstance(second.graph_store, GraphStore)
    holdout = disk_module(tmp_path, 20, kind="holdout", group="element", test=0.2)
    holdout.setup()  # elements from the store's index
    assert CALLS == [20] and len(holdout.subsets["test"]) >= 4


def test_source_key_follows_arguments_and_data_files(tmp_path):
    data = tmp_path / "data.csv"
    data.write_text("a")
    key = source_key(functools.partial(sample_source, 3, broken=False))
    assert key == source_key(functools.partial(sample_source, 3, broken=False))
    assert key != source_key(functools.partial(sample_source, 4, broken=False))
    with_file = source_key(functools.partial(sample_source, str(data)))
    data.write_text("ab")  # the file changed: another key
    assert with_file != source_key(functools.partial(sample_source, str(data)))
    assert source_key(lambda: sample_source(3)) is None


def test_records_round_trip_without_structures_and_with_ragged_targets(tmp_path):
    records = Records(
        ["a", "b"],
        ["x", "y"],
        {"s": np.array([1.0, 2.0]), "atoms": [np.ones((2, 3)), np.zeros((1, 3))]},
        name="demo",
        split={"train": ["a"], "test": ["b"]},
        dropped={"c": "why"},
    )
    save_records(tmp_path, "k1", records, "fp")
    back, fingerprint = load_records(tmp_path, "k1")
    assert fingerprint == "fp" and back.ids == ["a", "b"] and back.split == records.split
    assert isinstance(back.structures, NotLoaded) and back.dropped == {"c": "why"}
    assert np.array_equal(back.targets["s"], [1.0, 2.0])
    assert [a.shape for a in back.targets["atoms"]] == [(2, 3), (1, 3)]
    with pytest.raises(RuntimeError, match="not loaded"):
        back.structures[0]
    assert load_records(tmp_path, "other") is None
    # saved again (e.g. by another rank), replaced whole, no leftovers beside it
    save_records(tmp_path, "k1", records, "fp2")
    assert load_records(tmp_path, "k1")[1] == "fp2"
    assert [p.name for p in (tmp_path / "records").iterdir()] == ["demo-k1"]


def _save_and_read(args) -> list[str]:
    folder, records, rounds = args
    seen = []
    for number in range(rounds):
        save_records(folder, "k", records, "fp")
        loaded = load_records(folder, "k")
        if loaded is not None:  # none while another process swaps the folder: load the source
            back, _ = loaded
            complete = len(back.targets["s"]) == len(back.ids) == len(records.ids)
            seen.append("ok" if complete else f"torn at round {number}")
    return seen


def test_records_saved_by_several_processes_at_once_are_read_whole_or_not_at_all(tmp_path):
    import multiprocessing

    ids = [f"id{i}" for i in range(20_000)]
    records = Records(ids, ids, {"s": np.arange(20_000.0)}, name="many")
    with multiprocessing.get_context("fork").Pool(3) as pool:
        seen = [s for one in pool.map(_save_and_read, [(tmp_path, records, 8)] * 3) for s in one]
    assert seen and set(seen) == {"ok"}
    assert [p.name for p in (tmp_path / "records").iterdir()] == ["many-k"]


def test_disk_store_needs_a_cache_dir_and_a_known_kind():
    with pytest.raises(ValueError, match="cache_dir"):
        CrystalDataModule(lambda: None, GraphConfig.preset("cgcnn"), [], store="disk")
    with pytest.raises(ValueError, match="store must be one of"):
        CrystalDataModule(lambda: None, GraphConfig.preset("cgcnn"), [], store="lmdb")


class FakeStrategy:
    def __init__(self) -> None:
        self.barriers: list[str] = []

    def barrier(self, name: str | None = None) -> None:
        self.barriers.append(str(name))


class FakeTrainer:
    def __init__(self, world_size: int, rank: int, local_rank: int = 0) -> None:
        self.world_size, self.global_rank, self.local_rank = world_size, rank, local_rank
        self.strategy = FakeStrategy()


def test_only_the_first_process_of_a_machine_hashes_the_store(tmp_path, monkeypatch):
    data = disk_module(tmp_path, 12)
    data.setup()
    hashed = []
    original = disk.files_sha256
    monkeypatch.setattr(disk, "files_sha256", lambda p: hashed.append(p) or original(p))
    for local_rank in (1, 0):
        again = disk_module(tmp_path, 12)
        again.trainer = FakeTrainer(2, local_rank, local_rank)
        again.setup()
        assert bool(hashed) == (local_rank == 0)
        assert again.trainer.strategy.barriers == ["matgnn-graph-store"]  # the others wait


def test_a_store_that_fails_its_check_is_marked_incomplete_for_the_unchecking(sample, tmp_path):
    ids, structures = sample
    store = GraphStore.at(tmp_path, GraphConfig.preset("cgcnn"), "s")
    store.build(structures, ids, "fp", shard_size=5, progress=False)
    store.close()
    flip_a_byte(store.directory / "shard-00002.bin", 3)
    with pytest.raises(disk.StoreError, match="checksum"):
        GraphStore.at(tmp_path, GraphConfig.preset("cgcnn"), "s").open_verified("fp")
    # a process that does not hash (another DDP rank) is now refused, not handed the shard
    with pytest.raises(disk.StoreError, match="no complete graph store"):
        GraphStore.at(tmp_path, GraphConfig.preset("cgcnn"), "s").open_verified("fp", False)
    rebuilt = GraphStore.at(tmp_path, GraphConfig.preset("cgcnn"), "s").build(
        structures, ids, "fp", shard_size=5, progress=False
    )
    assert rebuilt.ids == ids


def test_a_rebuild_after_a_failed_check_hashes_each_intact_shard_once(
    sample, tmp_path, monkeypatch
):
    ids, structures = sample
    store = GraphStore.at(tmp_path, GraphConfig.preset("cgcnn"), "s")
    store.build(structures, ids, "fp", shard_size=5, progress=False)
    store.close()
    hashed = []
    original = disk.files_sha256
    monkeypatch.setattr(disk, "files_sha256", lambda p: hashed.append(p[0].name) or original(p))
    # files written within the last 2 s are hashed every time (a same-size rewrite within the
    # timestamp tick would keep their stat): these were just written
    for _ in range(2):
        GraphStore.at(tmp_path, GraphConfig.preset("cgcnn"), "s").open("fp").close()
    assert hashed.count("shard-00000.bin") == 2
    hashed.clear()
    monkeypatch.setattr(disk, "_SETTLED_S", 0.0)  # as if they had been written long ago
    flip_a_byte(store.directory / "shard-00002.bin", 3)
    with pytest.raises(disk.StoreError, match="shard-00002: checksum"):
        GraphStore.at(tmp_path, GraphConfig.preset("cgcnn"), "s").open_verified("fp")
    assert hashed == ["shard-00000.bin", "shard-00001.bin", "shard-00002.bin"]
    GraphStore.at(tmp_path, GraphConfig.preset("cgcnn"), "s").build(
        structures, ids, "fp", shard_size=5, progress=False
    )
    intact = [h for h in hashed if h != "shard-00002.bin"]
    assert sorted(intact) == [f"shard-0000{n}.bin" for n in (0, 1, 3, 4)]  # once each
    # a shard written again after its check is hashed again (and found out)
    hashed.clear()
    flip_a_byte(store.directory / "shard-00004.bin", 3)
    with pytest.raises(disk.StoreError, match="shard-00004: checksum"):
        GraphStore.at(tmp_path, GraphConfig.preset("cgcnn"), "s").open_verified("fp")
    assert hashed[-1] == "shard-00004.bin"


def test_validation_and_test_shards_count_every_crystal_once_under_ddp(tmp_path):
    data = disk_module(tmp_path, 31)
    data.setup()
    for subset in ("val", "test"):
        seen = []
        for rank in (0, 1):
            data.trainer = FakeTrainer(2, rank)
            seen += [sid for batch in data.loader(subset) for sid in batch.sample_id]
        assert sorted(seen) == sorted(data.split_ids()[subset])
    # more processes than crystals: refused in words (a process without one would hang)
    data.trainer = FakeTrainer(len(data.subsets["val"]) + 1, 0)
    with pytest.raises(ValueError, match=r"the val split has \d+ crystal\(s\), fewer than"):
        data.loader("val")
