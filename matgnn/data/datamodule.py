"""``CrystalDataModule``: records -> graphs (cached) with targets -> seeded splits -> loaders."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from pathlib import Path

import lightning as L
import numpy as np
import torch
from torch_geometric.loader import DataLoader

from matgnn.data.records import Records
from matgnn.graphs import GraphConfig, build_graphs
from matgnn.graphs.data import CrystalGraph

log = logging.getLogger(__name__)


class CrystalDataModule(L.LightningDataModule):
    """Graphs with targets, split by a seeded random permutation.

    Rows whose structure cannot be built, or whose target is NaN/inf, are reported by id and
    skipped (``skip_invalid=True``) or raise a ``ValueError`` naming the first one.

    Args:
        source: callable returning :class:`Records` (a Hydra ``_partial_`` loader).
        graph: the model's graph config (``model.graph_config()``).
        task_type: ``"regression"`` (float targets) or ``"classification"`` (int labels).
        split: fractions ``train``, ``val``, ``test`` and ``seed``.
        batch_size: graphs per batch.
        num_workers: DataLoader workers.
        cache_dir: on-disk graph cache; ``None`` disables it.
        skip_invalid: skip bad rows (reported) instead of failing.
    """

    def __init__(
        self,
        source: Callable[[], Records],
        graph: GraphConfig,
        task_type: str = "regression",
        split: Mapping[str, float] | None = None,
        batch_size: int = 64,
        num_workers: int = 0,
        cache_dir: str | Path | None = None,
        skip_invalid: bool = True,
    ) -> None:
        super().__init__()
        self.source = source
        self.graph = graph
        self.task_type = task_type
        self.split = dict(split or {"train": 0.8, "val": 0.1, "test": 0.1, "seed": 0})
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
        order = np.random.default_rng(int(self.split.get("seed", 0))).permutation(len(graphs))
        n_train = math.floor(self.split["train"] * len(graphs))
        n_val = math.floor(self.split["val"] * len(graphs))
        bounds = {"train": (0, n_train), "val": (n_train, n_train + n_val)}
        bounds["test"] = (n_train + n_val, len(graphs))
        self.subsets = {k: [graphs[i] for i in order[a:b]] for k, (a, b) in bounds.items()}
        sizes = {k: len(v) for k, v in self.subsets.items()}
        log.info("%s: %s graphs, %d rejected", records.name, sizes, len(self.rejected))

    def _graphs_with_targets(self, records: Records) -> list[CrystalGraph]:
        targets = np.asarray(records.targets)
        bad_target = {
            sid: f"target is {value}"
            for sid, value in zip(records.ids, targets.reshape(len(targets), -1), strict=True)
            if not np.isfinite(value).all()
        }
        if bad_target and not self.skip_invalid:
            sid, why = next(iter(bad_target.items()))
            raise ValueError(f"{records.name}: {sid}: {why}")
        keep = [i for i, sid in enumerate(records.ids) if sid not in bad_target]
        built = build_graphs(
            [records.structures[i] for i in keep],
            self.graph,
            ids=[records.ids[i] for i in keep],
            cache_dir=self.cache_dir,
            dataset=records.name,
            skip_invalid=self.skip_invalid,
        )
        self.rejected = {**bad_target, **built.failures}
        for sid, why in self.rejected.items():
            log.warning("%s: rejected %s: %s", records.name, sid, why)
        row = {sid: i for i, sid in enumerate(records.ids)}
        dtype = torch.long if self.task_type == "classification" else torch.get_default_dtype()
        graphs = []
        for sid, graph in zip(built.ids, built.graphs, strict=True):
            value = torch.as_tensor(targets[row[sid]], dtype=dtype)
            graph.y = value.reshape(1, -1) if value.ndim else value.reshape(1)
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
