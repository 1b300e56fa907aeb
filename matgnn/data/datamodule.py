"""``CrystalDataModule``: records -> graphs (cached) with targets -> splits -> loaders."""

from __future__ import annotations

import csv
import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import lightning as L
from torch_geometric.loader import DataLoader

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
from matgnn.graphs import GraphConfig, build_graphs
from matgnn.graphs.data import CrystalGraph
from matgnn.graphs.elements import elements_of
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
        cache_dir: on-disk graph cache; ``None`` disables it.
        skip_invalid: skip bad rows (reported) instead of failing.
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
    ) -> None:
        super().__init__()
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
        self.subsets: dict[str, list[CrystalGraph]] = {}

    def setup(self, stage: str | None = None) -> None:
        if self.subsets:
            return
        records = self.source()
        graphs = self._graphs_with_targets(records)
        by_id = {g.sample_id: g for g in graphs}
        split = self._split_ids(records, by_id)
        self.subsets = {k: [by_id[i] for i in split[k]] for k in SUBSETS}
        sizes = {k: len(v) for k, v in self.subsets.items()}
        log.info("%s: %s graphs, %d rejected", records.name, sizes, len(self.rejected))
        if not self.subsets["train"] or not self.subsets["test"]:
            raise ValueError(f"{records.name}: empty train or test subset: {sizes}")

    def _split_ids(
        self, records: Records, built: Mapping[str, CrystalGraph]
    ) -> dict[str, list[str]]:
        """The split drawn over every record (so that one seed gives every model the same
        split, whatever its graphs reject), less the rejected crystals; then the learning-curve
        subset of the training crystals that were built."""
        full = self._full_split(records, built)
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
        self, records: Records, built: Mapping[str, CrystalGraph]
    ) -> dict[str, list[str]]:
        kind, seed = self.split["kind"], int(self.split["seed"])
        if kind == "holdout":
            elements = {i: elements_of([g]) for i, g in built.items()}
            try:
                return holdout_split(
                    elements,
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
        return {k: [g.sample_id for g in v] for k, v in self.subsets.items()}

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
        missing = sorted({o.target for o in self.outputs} - set(records.targets))
        if missing:
            raise ValueError(
                f"{records.name}: no target column {missing} for the task's outputs; the "
                f"source has {sorted(records.targets)}"
            )
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

    def loader(self, subset: str, shuffle: bool = False) -> DataLoader:
        return DataLoader(
            self.subsets[subset],
            batch_size=self.batch_size,
            shuffle=shuffle,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        return self.loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self.loader("val")

    def test_dataloader(self) -> DataLoader:
        return self.loader("test")
