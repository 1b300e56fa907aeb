"""Training batches capped in size, so that one step's memory is bounded.

The activations a message-passing model keeps for its backward pass grow with the rows of its
feature tensors: one row per atom and per bond, and also one per angle (ALIGNN's line graph),
per atom pair (PotNet) or per CHGNet bond-graph entry. Sixty-four crystals of two atoms and
sixty-four of forty atoms differ in that by a factor of hundreds, so a number of crystals per
batch bounds nothing; ``task.data.max_batch_rows`` does (:class:`CappedBatchSampler`).
"""

from __future__ import annotations

import heapq
import logging
import math
from collections.abc import Iterator, Sequence

import numpy as np
from torch.utils.data import BatchSampler, DistributedSampler, Sampler

from matgnn.graphs.data import ROW_FIELDS, CrystalGraph

log = logging.getLogger(__name__)


def feature_rows(graph: CrystalGraph) -> int:
    """Atoms plus the rows of every index field of :data:`ROW_FIELDS` that ``graph`` has."""
    rows = int(graph.num_nodes)
    for key, dim in ROW_FIELDS.items():
        value = getattr(graph, key, None)
        if value is not None:
            rows += int(value.size(dim))
    return rows


class CappedBatchSampler(BatchSampler):
    """Batches of at most ``max_rows`` feature rows (:func:`feature_rows`), the same number of
    batches in every epoch.

    The number of batches ``B`` is fixed by the data: ``max(ceil(N / batch_size),
    ceil(R / (max_rows - r_max)))`` for ``N`` crystals holding ``R`` rows in all and ``r_max``
    in the largest. Each epoch the crystals, in the order ``sampler`` draws them, go one by
    one to the batch holding the fewest rows so far (ties: the lowest batch). That batch holds
    at most ``R / B`` rows before, so at most ``R / B + r_max <= max_rows`` after: the cap
    holds for every batch by construction. A batch holds ``N / B <= batch_size`` crystals on
    average, not at most (small crystals go together). A fixed ``B`` keeps step-based learning
    rate schedules (OneCycle) valid; the batches are yielded in the order they were opened.

    Under DDP Lightning re-creates this object with its ``DistributedSampler`` as ``sampler``.
    The batches are then made over the whole data set, ``B x world`` of them from one seeded
    permutation (``seed + epoch``, the same on every process), and process ``rank`` takes
    batches ``rank, rank + world, ...``: every process steps ``B`` times and every crystal is
    in exactly one batch (Lightning's own sampler would pad with repeats).

    Args:
        sampler: the order of the crystals (``RandomSampler`` for training), or a
            ``DistributedSampler`` (its ``num_replicas``, ``rank``, ``shuffle``, ``seed`` and
            ``epoch`` are used; its own shares are not).
        batch_size: crystals per batch on average (at least ``N / batch_size`` batches).
        drop_last: must be ``False`` (nothing is dropped).
        rows: feature rows of every crystal of the data set, by data set index.
        max_rows: the cap.
        names: the crystals' ids, to name one that alone exceeds the cap.
    """

    def __init__(
        self,
        sampler: Sampler[int] | Sequence[int],
        batch_size: int,
        drop_last: bool,
        rows: Sequence[int],
        max_rows: int,
        names: Sequence[str] | None = None,
    ) -> None:
        super().__init__(sampler, batch_size, drop_last)
        if drop_last:
            raise ValueError("CappedBatchSampler drops nothing: drop_last must be False")
        self.rows = np.asarray(rows, dtype=np.int64)
        self.max_rows = int(max_rows)
        n = len(self.rows)
        if n == 0:
            raise ValueError("max_batch_rows: no crystals to batch")
        largest = int(self.rows.argmax())
        self.largest = int(self.rows[largest])
        if self.largest > self.max_rows:
            name = names[largest] if names is not None else f"crystal {largest}"
            raise ValueError(
                f"task.data.max_batch_rows={self.max_rows}: {name} alone has {self.largest} "
                "feature rows (atoms + bonds + angles/pairs); raise the cap above it or leave "
                "the crystal out"
            )
        self.world, self.rank = 1, 0
        if isinstance(sampler, DistributedSampler):
            if not _indexes_the_dataset(sampler):
                raise TypeError(
                    f"CappedBatchSampler packs the data set's own indices; "
                    f"{type(sampler).__name__} draws positions in another sampler"
                )
            self.world, self.rank = int(sampler.num_replicas), int(sampler.rank)
            size = len(sampler.dataset)  # type: ignore[arg-type]
        else:
            size = len(sampler) if hasattr(sampler, "__len__") else n  # type: ignore[arg-type]
        if size != n:
            raise ValueError(f"max_batch_rows: {n} row counts for a data set of {size} crystals")
        if n < self.world:
            raise ValueError(
                f"max_batch_rows: {n} training crystals for {self.world} processes: every "
                "process needs a batch"
            )
        total = int(self.rows.sum())
        # the bound R / K + r_max <= max_rows needs K >= R / (max_rows - r_max) batches in all;
        # with max_rows == r_max no K does (n + 1 is refused below)
        per_rows = (
            math.ceil(total / (self.max_rows - self.largest))
            if self.max_rows > self.largest
            else n + 1
        )
        self.num_batches = max(
            math.ceil(n / (batch_size * self.world)), math.ceil(per_rows / self.world)
        )
        if self.num_batches * self.world > n:
            raise ValueError(
                f"task.data.max_batch_rows={self.max_rows}: {n} crystals with {total} feature "
                f"rows (the largest {self.largest}) need {self.num_batches * self.world} "
                f"batches of at most {self.max_rows} rows"
                f"{' over all processes' if self.world > 1 else ''}, more than there are "
                "crystals; raise the cap"
            )

        self._logged = False

    def _order(self) -> list[int]:
        """This epoch's order of the data set's indices (the same on every DDP process)."""
        sampler = self.sampler
        if isinstance(sampler, DistributedSampler):
            # torch's own order for this seed and epoch: the whole data set as one process
            # would draw it (no padding: one process needs none), so every process agrees
            whole = DistributedSampler(
                sampler.dataset,
                num_replicas=1,
                rank=0,
                shuffle=sampler.shuffle,
                seed=sampler.seed,
            )
            whole.set_epoch(sampler.epoch)
            return [int(i) for i in whole]
        return [int(i) for i in sampler]

    def batches(self) -> list[list[int]]:
        """This epoch's batches for this process."""
        count = self.num_batches * self.world
        heap = [(0, b) for b in range(count)]  # (rows so far, batch); a list of zeros is a heap
        batches: list[list[int]] = [[] for _ in range(count)]
        for index in self._order():
            load, b = heapq.heappop(heap)
            batches[b].append(index)
            heapq.heappush(heap, (load + int(self.rows[index]), b))
        return batches[self.rank :: self.world]

    def __iter__(self) -> Iterator[list[int]]:
        if not self._logged:  # once, by the sampler that is iterated (not the one DDP replaces)
            self._logged = True
            log.info(
                "training batches capped at %d feature rows: %d batches per epoch for process "
                "%d of %d (%d crystals, %d rows, the largest %d)",
                self.max_rows, self.num_batches, self.rank, self.world, len(self.rows),
                int(self.rows.sum()), self.largest,
            )  # fmt: skip
        yield from self.batches()

    def __len__(self) -> int:
        return self.num_batches


def _indexes_the_dataset(sampler: DistributedSampler) -> bool:
    """Whether ``sampler`` draws indices of its data set (torch's ``DistributedSampler``), not
    positions in a wrapped sampler (Lightning's ``DistributedSamplerWrapper`` and the like)."""
    from lightning.fabric.utilities.distributed import DistributedSamplerWrapper
    from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSamplerWrapper

    return not isinstance(sampler, (DistributedSamplerWrapper, UnrepeatedDistributedSamplerWrapper))
