"""``CrystalDataModule``: records -> graphs (cached) with targets -> splits -> loaders."""

from __future__ import annotations

import csv
import logging
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

import lightning as L
from torch.utils.data import RandomSampler
from torch_geometric.loader import DataLoader

from matgnn.data.batching import CappedBatchSampler, feature_rows
from matgnn.data.records import Records
from matgnn.data.splits import (
    SPLIT_KINDS,
    SUBSETS,
    carve_validation,
    check_split,
    holdout_split,
    limit_train,
    random_split,
    read_split_file,
    write_split_file,
)
from matgnn.data.stores import STORE_KINDS, GraphStore, StoredSubset, StoreError
from matgnn.data.stores.records import NotLoaded, load_records, save_records, source_key
from matgnn.graphs import GraphConfig, build_graphs
from matgnn.graphs.cache import structures_fingerprint
from matgnn.graphs.data import CrystalGraph
from matgnn.graphs.elements import elements_of, symbols_of
from matgnn.outputs import Output

log = logging.getLogger(__name__)


class CrystalDataModule(L.LightningDataModule):
    """Graphs with targets, split three ways, batched by PyG loaders.

    ``split.kind`` chooses the split:

    * ``random`` (default): seeded permutation into ``train``/``val``/``test`` fractions.
    * ``source``: the source's own split (:attr:`Records.split`: official Matbench folds,
      CDVAE/JARVIS/Chen split files). If it has no ``val``, a seeded ``val`` fraction of
      ``train`` is held out.
    * ``file``: a split file at ``split.path`` (see :mod:`matgnn.data.splits`), e.g. the
      ``split.json`` every training run writes.
    * ``holdout``: out of distribution: ``test`` holds whole chemical systems
      (``group: chemsys``) or every crystal with a held-out element (``group: element``),
      at least a ``test`` fraction; ``val`` is a random fraction of the rest
      (:func:`~matgnn.data.splits.holdout_split`; drawn over the crystals whose graphs built).

    Each graph gets one target field per declared output (``graph[output.key]``, e.g.
    ``target_formation_energy_per_atom``), read from the records' column ``output.target``.
    Rows whose structure cannot be built, or whose target any output refuses (NaN/inf, wrong
    shape, a per-atom target whose length is not the number of atoms, a label out of range),
    are reported by id and skipped (``skip_invalid=True``) or raise a ``ValueError`` naming
    the first one.

    Args:
        source: callable returning :class:`Records` (a Hydra ``_partial_`` loader).
        graph: the model's graph config (``model.graph_config()``).
        outputs: the model's declared outputs (``model.outputs``).
        split: ``kind`` (random, source, file, holdout), fractions ``train`` and ``val``,
            ``seed``, ``path`` (for ``file``), ``group`` and ``test`` (for ``holdout``);
            ``train_size`` (an int) keeps that many seeded training crystals (``train_seed``,
            default ``seed``; nested for one seed) and leaves ``val`` and ``test`` unchanged,
            for learning curves.
        batch_size: graphs per batch.
        num_workers: DataLoader workers.
        cache_dir: on-disk graph cache (and graph store); ``None`` disables it.
        skip_invalid: skip bad rows (reported) instead of failing.
        store: ``memory`` (default): every graph built (or loaded from the cache) into a list;
            ``disk``: graphs written once to an on-disk store under ``cache_dir``
            (:mod:`matgnn.data.stores.disk`) and read lazily, one graph per item, so that
            neither a process nor a DDP rank holds the data set; the source's records (less
            the structures) are kept next to it and a later run does not load the source.
        store_workers: processes that build the store's missing shards.
        shard_size: graphs per store shard (the unit of resuming a killed build).
        verify_store: check every shard's SHA-256 when the store is opened (by the first
            process on each machine; the other DDP ranks wait for it and read the same files).
        max_batch_rows: the most feature rows (atoms + bonds, and angles, atom pairs or
            CHGNet bond-graph entries where the graph has them) in one training batch, which
            bounds a step's activation memory whatever the cell sizes; ``batch_size`` is then
            the average number of crystals per batch, not the most
            (:class:`~matgnn.data.batching.CappedBatchSampler`; the same number of batches
            every epoch; every crystal once per epoch, under DDP too). ``None``: batches of
            ``batch_size`` crystals. Validation and test batches are not capped (they keep
            no activations for a backward pass).
    """

    def __init__(
        self,
        source: Callable[[], Records],
        graph: GraphConfig,
        outputs: Sequence[Output],
        split: Mapping[str, Any] | None = None,
        batch_size: int = 64,
        num_workers: int = 0,
        cache_dir: str | Path | None = None,
        skip_invalid: bool = True,
        store: str = "memory",
        store_workers: int = 1,
        shard_size: int = 1000,
        verify_store: bool = True,
        max_batch_rows: int | None = None,
    ) -> None:
        super().__init__()
        if max_batch_rows is not None and int(max_batch_rows) < 1:
            raise ValueError(f"task.data.max_batch_rows must be positive, got {max_batch_rows}")
        self.max_batch_rows = None if max_batch_rows is None else int(max_batch_rows)
        if store not in STORE_KINDS:
            raise ValueError(f"task.data.store must be one of {STORE_KINDS}, got {store!r}")
        if store == "disk" and cache_dir is None:
            raise ValueError("task.data.store=disk keeps the graphs under cache_dir: set one")
        self.store = store
        self.store_workers = int(store_workers)
        self.shard_size = int(shard_size)
        self.verify_store = bool(verify_store)
        self.graph_store: GraphStore | None = None
        self.source = source
        self.graph = graph
        self.outputs = tuple(outputs)
        self.split = {"kind": "random", "train": 0.8, "val": 0.1, "seed": 0, **(split or {})}
        if self.split["kind"] not in SPLIT_KINDS:
            raise ValueError(f"split.kind must be one of {SPLIT_KINDS}, got {self.split['kind']!r}")
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.cache_dir = cache_dir
        self.skip_invalid = skip_invalid
        self.rejected: dict[str, str] = {}
        self.subsets: dict[str, Sequence[CrystalGraph]] = {}

    def setup(self, stage: str | None = None) -> None:
        if self.subsets:
            return
        if self.store == "disk":
            records = self._setup_disk()
        else:
            records = self.source()
            graphs = self._graphs_with_targets(records)
            by_id = {g.sample_id: g for g in graphs}
            split = self._split_ids(
                records, by_id, lambda: {i: elements_of([g]) for i, g in by_id.items()}
            )
            self.subsets = {k: [by_id[i] for i in split[k]] for k in SUBSETS}
        sizes = {k: len(v) for k, v in self.subsets.items()}
        log.info("%s: %s graphs, %d rejected", records.name, sizes, len(self.rejected))
        if not self.subsets["train"] or not self.subsets["test"]:
            raise ValueError(f"{records.name}: empty train or test subset: {sizes}")

    def _split_ids(
        self,
        records: Records,
        built: Collection[str],
        elements: Callable[[], Mapping[str, Sequence[str]]],
    ) -> dict[str, list[str]]:
        """The split drawn over every record (so that one seed gives every model the same
        split, whatever its graphs reject), less the rejected crystals; then the learning-curve
        subset of the training crystals that were built. ``elements()`` gives the element
        symbols of every built crystal (asked for by hold-out splits only)."""
        full = self._full_split(records, elements)
        split = {k: [i for i in v if i in built] for k, v in full.items()}
        size = self.split.get("train_size")
        if size is None:
            return split
        seed = self.split.get("train_seed")
        seed = int(self.split["seed"] if seed is None else seed)
        try:
            return limit_train(split, int(size), seed)
        except ValueError as error:
            raise ValueError(f"{records.name}: {error}") from None

    def _full_split(
        self, records: Records, elements: Callable[[], Mapping[str, Sequence[str]]]
    ) -> dict[str, list[str]]:
        kind, seed = self.split["kind"], int(self.split["seed"])
        if kind == "holdout":
            try:
                return holdout_split(
                    elements(),
                    str(self.split.get("group", "chemsys")),
                    float(self.split.get("test", 0.1)),
                    float(self.split["val"]),
                    seed,
                )
            except ValueError as error:
                raise ValueError(f"{records.name}: {error}") from None
        if kind == "random":
            return random_split(
                list(records.ids), float(self.split["train"]), float(self.split["val"]), seed
            )
        if kind == "source":
            if records.split is None:
                raise ValueError(
                    f"{records.name}: split.kind=source, but the source defines no split"
                )
            split = records.split
        else:
            split = read_split_file(self.split["path"])
        check_split(split, records.name)
        return carve_validation(split, float(self.split["val"]), seed)

    def split_ids(self) -> dict[str, list[str]]:
        """The ids of each subset."""
        return {
            k: v.ids if isinstance(v, StoredSubset) else [g.sample_id for g in v]
            for k, v in self.subsets.items()
        }

    def save_split(self, path: str | Path) -> None:
        """Write the ids of each subset (JSON) so that ``split.kind=file`` can reuse them."""
        write_split_file(self.split_ids(), path)

    def save_rejected(self, path: str | Path) -> None:
        """Write the crystals left out and why (CSV ``id,reason``); nothing when none were."""
        if not self.rejected:
            return
        with open(path, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["id", "reason"])
            writer.writerows(self.rejected.items())

    def _target_problems(self, records: Records, rows, num_atoms=None) -> dict[str, str]:
        """``{id: reason}`` for the rows whose target some output refuses."""
        problems = {}
        for k, i in enumerate(rows):
            for output in self.outputs:
                atoms = None if num_atoms is None else num_atoms[k]
                problem = output.target_problem(records.targets[output.target][i], atoms)
                if problem:
                    problems[records.ids[i]] = problem
                    break
        return problems

    def _fail_or_report(self, records: Records, problems: dict[str, str]) -> None:
        if problems and not self.skip_invalid:
            sid, why = next(iter(problems.items()))
            raise ValueError(f"{records.name}: {sid}: {why}")

    def _graphs_with_targets(self, records: Records) -> list[CrystalGraph]:
        self._check_target_columns(records)
        bad_target = self._target_problems(records, range(len(records.ids)))
        self._fail_or_report(records, bad_target)
        keep = [i for i, sid in enumerate(records.ids) if sid not in bad_target]
        built = build_graphs(
            [records.structures[i] for i in keep],
            self.graph,
            ids=[records.ids[i] for i in keep],
            cache_dir=self.cache_dir,
            dataset=records.name,
            skip_invalid=self.skip_invalid,
        )
        row = {sid: i for i, sid in enumerate(records.ids)}
        rows = [row[sid] for sid in built.ids]
        bad_atoms = self._target_problems(records, rows, [g.num_nodes for g in built.graphs])
        self._fail_or_report(records, bad_atoms)
        self.rejected = {**records.dropped, **bad_target, **built.failures, **bad_atoms}
        for sid, why in self.rejected.items():
            log.warning("%s: rejected %s: %s", records.name, sid, why)
        graphs = []
        for sid, graph in zip(built.ids, built.graphs, strict=True):
            if sid in bad_atoms:
                continue
            for output in self.outputs:
                graph[output.key] = output.target_tensor(records.targets[output.target][row[sid]])
            graph.sample_id = sid
            graphs.append(graph)
        return graphs

    def _setup_disk(self) -> Records:
        """Records (read back from the store's manifest, or loaded from the source and the
        store built or finished), the rejections, the split and lazily read subsets.

        Under DDP the first process of each machine checks the store (SHA-256 with
        ``verify_store``) and builds what is missing; the others wait for it (a barrier) and
        then open the store without hashing it again."""
        trainer = getattr(self, "trainer", None)
        if trainer is not None and trainer.world_size > 1:
            first = trainer.local_rank == 0
            if first:
                records, store = self._records_and_store(self.verify_store)
            trainer.strategy.barrier("matgnn-graph-store")
            if not first:
                records, store = self._records_and_store(False)
        else:
            records, store = self._records_and_store(self.verify_store)
        return self._finish_disk(records, store)

    def _records_and_store(self, verify: bool) -> tuple[Records, GraphStore]:
        key = source_key(self.source)
        loaded = load_records(self.cache_dir, key) if key else None
        store = None
        if loaded is not None:
            records, fingerprint = loaded
            self._check_target_columns(records)
            store = GraphStore.at(self.cache_dir, self.graph, f"store-{fingerprint[:16]}")
            try:
                store.open_verified(fingerprint, verify=verify)
                log.info("%s: records and graphs from the store %s", records.name, store.directory)
            except StoreError as exc:
                log.info("%s; loading the source", exc)
                store = None
        if store is None:
            records = self.source()
            fingerprint = structures_fingerprint(records.structures, records.ids)
            self._check_target_columns(records)
            store = GraphStore.at(self.cache_dir, self.graph, f"store-{fingerprint[:16]}")
            try:
                store.open_verified(fingerprint, verify=verify)
            except StoreError as exc:
                log.info("%s; building", exc)
                store.build(
                    records.structures,
                    [str(i) for i in records.ids],
                    fingerprint,
                    shard_size=self.shard_size,
                    workers=self.store_workers,
                    skip_invalid=True,  # failures are kept in the store; refused below
                    verify=verify,
                )
            if key:
                save_records(self.cache_dir, key, records, fingerprint)
            records = Records(
                records.ids,
                NotLoaded(records.name, len(records.ids)),
                records.targets,
                records.name,
                records.split,
                records.dropped,
            )  # the structures are not held while training
        return records, store

    def _finish_disk(self, records: Records, store: GraphStore) -> Records:
        self.graph_store = store
        if store.failures and not self.skip_invalid:
            sid, why = next(iter(store.failures.items()))
            raise ValueError(f"{records.name}: {sid}: {why}")
        bad_target = self._target_problems(records, range(len(records.ids)))
        self._fail_or_report(records, bad_target)
        position = {sid: i for i, sid in enumerate(store.ids)}
        row = {str(sid): i for i, sid in enumerate(records.ids)}
        atoms = store.num_atoms()
        kept = [sid for sid in store.ids if sid not in bad_target and sid in row]
        bad_atoms = self._target_problems(
            records, [row[s] for s in kept], [int(atoms[position[s]]) for s in kept]
        )
        self._fail_or_report(records, bad_atoms)
        self.rejected = {**records.dropped, **bad_target, **store.failures, **bad_atoms}
        for sid, why in self.rejected.items():
            log.warning("%s: rejected %s: %s", records.name, sid, why)
        good = [sid for sid in kept if sid not in bad_atoms]

        def elements() -> dict[str, list[str]]:
            return {s: symbols_of(store.atomic_numbers(position[s])) for s in good}

        split = self._split_ids(records, set(good), elements)
        self.subsets = {
            k: StoredSubset(
                store,
                [position[s] for s in split[k]],
                {
                    o.key: [o.target_tensor(records.targets[o.target][row[s]]) for s in split[k]]
                    for o in self.outputs
                },
            )
            for k in SUBSETS
        }
        return records

    def _check_target_columns(self, records: Records) -> None:
        missing = sorted({o.target for o in self.outputs} - set(records.targets))
        if missing:
            raise ValueError(
                f"{records.name}: no target column {missing} for the task's outputs; the "
                f"source has {sorted(records.targets)}"
            )

    def loader(self, subset: str, shuffle: bool = False) -> DataLoader:
        """The subset's loader. Under DDP, validation and test shards are disjoint and not
        padded (:class:`~lightning.pytorch.overrides.distributed.UnrepeatedDistributedSampler`),
        so every crystal counts exactly once in the metrics; training keeps Lightning's
        ``DistributedSampler``."""
        sampler = None
        trainer = getattr(self, "trainer", None)
        if subset != "train" and trainer is not None and trainer.world_size > 1:
            if len(self.subsets[subset]) < trainer.world_size:
                # a process without a crystal would wait forever in the metrics' sync
                raise ValueError(
                    f"the {subset} split has {len(self.subsets[subset])} crystal(s), fewer "
                    f"than the {trainer.world_size} DDP processes: every process needs one "
                    "(enlarge the split or run fewer processes)"
                )
            from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler

            sampler = UnrepeatedDistributedSampler(
                self.subsets[subset],
                num_replicas=trainer.world_size,
                rank=trainer.global_rank,
                shuffle=False,
            )
        return DataLoader(
            self.subsets[subset],
            batch_size=self.batch_size,
            shuffle=shuffle and sampler is None,
            sampler=sampler,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        if self.max_batch_rows is None:
            return self.loader("train", shuffle=True)
        subset = self.subsets["train"]
        if isinstance(subset, StoredSubset):
            rows, names = subset.feature_rows(), subset.ids
        else:
            rows = [feature_rows(g) for g in subset]
            names = [g.sample_id for g in subset]
        # Lightning's DDP re-creates the batch sampler with its DistributedSampler in place of
        # the RandomSampler (CappedBatchSampler shards the batches by itself)
        batches = CappedBatchSampler(
            RandomSampler(subset),
            self.batch_size,
            False,
            rows,
            self.max_batch_rows,
            names=names,
        )
        return DataLoader(
            subset,
            batch_sampler=batches,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def val_dataloader(self) -> DataLoader:
        return self.loader("val")

    def test_dataloader(self) -> DataLoader:
        return self.loader("test")
