"""``StoredSubset``: one subset (train, val or test) of a disk graph store, read lazily."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from matgnn.data.stores.disk import GraphStore
from matgnn.graphs.data import CrystalGraph


class StoredSubset(Dataset, Sequence):
    """Graphs ``positions`` of ``store`` with their targets: a ``Sequence`` of
    :class:`~matgnn.graphs.CrystalGraph` whose items are read from disk when asked for (each
    DDP rank asks only for its sampler's share), so nothing iterates the whole subset into
    memory.

    Args:
        store: the opened store.
        positions: each graph's index in ``store``, in subset order.
        targets: ``{graph field: one target per graph}`` (already as
            :meth:`~matgnn.outputs.Output.target_tensor` made them), in subset order.
    """

    def __init__(
        self, store: GraphStore, positions: Sequence[int], targets: Mapping[str, Sequence[Tensor]]
    ) -> None:
        self.store = store
        self.positions = [int(p) for p in positions]
        self.targets = {k: list(v) for k, v in targets.items()}
        for key, values in self.targets.items():
            if len(values) != len(self.positions):
                raise ValueError(f"{key}: {len(values)} targets for {len(self.positions)} graphs")

    def __len__(self) -> int:
        return len(self.positions)

    def __getitem__(self, index):  # type: ignore[override]
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        index = int(index)
        if index < 0:
            index += len(self)
        graph = self.store.read(self.positions[index])
        for key, values in self.targets.items():
            graph[key] = values[index]
        graph.sample_id = graph.name
        return graph

    def __iter__(self) -> Iterator[CrystalGraph]:
        for index in range(len(self)):
            yield self[index]

    @property
    def ids(self) -> list[str]:
        return [self.store.ids[p] for p in self.positions]

    def feature_rows(self) -> np.ndarray:
        """Feature rows of every graph, in subset order, from the store's index (no read)."""
        return self.store.feature_rows()[np.asarray(self.positions, dtype=np.int64)]

    def light(self) -> LightGraphs:
        """The same graphs with only their atomic numbers, ids and targets, from the index in
        memory (no read): for statistics over the training split."""
        return LightGraphs(self)


class LightGraphs(Sequence):
    """Graphs of a :class:`StoredSubset` holding only ``atomic_numbers``, ``sample_id`` and
    the targets (what normalisers, element checks and baselines read)."""

    def __init__(self, subset: StoredSubset) -> None:
        self.subset = subset

    def __len__(self) -> int:
        return len(self.subset)

    def __getitem__(self, index):  # type: ignore[override]
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        position = self.subset.positions[index]
        graph = CrystalGraph(
            atomic_numbers=torch.from_numpy(
                self.subset.store.atomic_numbers(position).astype("int64")
            )
        )
        for key, values in self.subset.targets.items():
            graph[key] = values[index]
        graph.sample_id = self.subset.store.ids[position]
        return graph

    def __iter__(self) -> Iterator[CrystalGraph]:
        for index in range(len(self)):
            yield self[index]


def light(graphs: Sequence[Any]) -> Sequence[Any]:
    """``graphs`` as light graphs when they are a stored subset, else unchanged."""
    return graphs.light() if isinstance(graphs, StoredSubset) else graphs
