"""Training callbacks of our own (Lightning's cover checkpoints, early stopping, LR logging).
Lightning's progress bar shows only where the output is live (:mod:`matgnn.terminal`);
elsewhere :class:`EpochSummary` logs one line per epoch."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

import lightning as L
import torch

from matgnn.training.allocator import RetainedMemory, retained_memory

log = logging.getLogger(__name__)


class EpochTimer(L.Callback):
    """Logs ``train_epoch_time_s``: wall time of the training batches of each epoch, and
    ``epoch_wall_time_s``: the whole epoch with its validation (and the best-checkpoint save,
    which Lightning makes at validation end by default).

    Validation inside the epoch is not counted in ``train_epoch_time_s``: Lightning runs the
    end-of-epoch validation (and any ``val_check_interval`` one) before
    ``on_train_epoch_end``, so that clock pauses from ``on_validation_start`` to
    ``on_validation_end``; ``epoch_wall_time_s`` does not pause (what a user waits for, and
    what the gaps between a reference trainer's per-epoch log lines measure).
    """

    def __init__(self) -> None:
        self.started = 0.0
        self.paused = 0.0
        self.validation_started: float | None = None
        self.times: list[float] = []

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.started = time.perf_counter()
        self.paused = 0.0

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking:
            self.validation_started = time.perf_counter()

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.validation_started is not None:
            self.paused += time.perf_counter() - self.validation_started
            self.validation_started = None

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        wall = time.perf_counter() - self.started
        elapsed = wall - self.paused
        self.times.append(elapsed)
        pl_module.log("train_epoch_time_s", elapsed, on_epoch=True, on_step=False)
        pl_module.log("epoch_wall_time_s", wall, on_epoch=True, on_step=False)


class EpochSummary(L.Callback):
    """Logs one plain line per training epoch when the trainer shows no progress bar (the
    output is not a terminal, see :func:`is_interactive`, or ``enable_progress_bar=false``):
    the epoch (from 0, as Lightning and the CSV logs count), the mean training loss, the
    validation loss and metrics of that epoch, and the epoch's wall time (validation
    included)::

        epoch 3: train_loss 0.4213, val_loss 0.5120, val_y_mae 0.3311, 12.4 s

    The line goes to the ``matgnn.training.callbacks`` logger at INFO: ``python -m
    matgnn.train`` prints it (Hydra's job logging) and keeps it in the run's ``train.log``.
    With a progress bar it does nothing.

    The training loss is the mean of the epoch's batch losses weighted by their graphs (what
    ``train_loss`` logged with ``on_epoch=True`` would be; the logged ``train_loss`` is the
    last step's), summed on the device so that no step waits for it. Under DDP the line is
    rank zero's and its training loss that of rank zero's shard. Validation metrics are shown
    only in an epoch that validated (``check_val_every_n_epoch``).
    """

    def __init__(self) -> None:
        self.active = False
        self.started = 0.0
        self.loss_sum: torch.Tensor | None = None
        self.graphs = 0
        self.validation: dict[str, float] = {}

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.active = trainer.progress_bar_callback is None and trainer.is_global_zero

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.started = time.perf_counter()
        self.loss_sum = None
        self.graphs = 0
        self.validation = {}

    def on_train_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        if not self.active:
            return
        loss = outputs.get("loss") if isinstance(outputs, Mapping) else outputs
        if not isinstance(loss, torch.Tensor):
            return  # a skipped step (training_step returned None)
        if pl_module.automatic_optimization:  # Lightning divides it for gradient accumulation
            loss = loss * trainer.accumulate_grad_batches
        graphs = int(getattr(batch, "num_graphs", 1) or 1)
        weighted = loss.detach().float() * graphs
        self.loss_sum = weighted if self.loss_sum is None else self.loss_sum + weighted
        self.graphs += graphs

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.active and not trainer.sanity_checking:
            self.validation = {
                name: float(value)
                for name, value in trainer.callback_metrics.items()
                if name.startswith("val_") and value.numel() == 1
            }

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not self.active:
            return
        parts = []
        if self.loss_sum is not None and self.graphs:
            parts.append(f"train_loss {float(self.loss_sum) / self.graphs:.4g}")
        parts += [f"{name} {value:.4g}" for name, value in self.validation.items()]
        parts.append(f"{time.perf_counter() - self.started:.1f} s")
        log.info("epoch %d: %s", trainer.current_epoch, ", ".join(parts))


class BoundRetainedMemory(L.Callback):
    """Keeps retained heap memory bounded (``retain_freed_memory=true``): after every training,
    validation and test batch, :meth:`~matgnn.training.allocator.RetainedMemory.check` hands
    freed memory back to the kernel when the resident set exceeds its limit; the trims of each
    training epoch (its training and validation batches; the sanity check's count with the
    first epoch's) are logged as ``retained_memory_trims``.

    Args:
        retained: the process's bound (:func:`matgnn.training.allocator.retained_memory`).
    """

    def __init__(self, retained: RetainedMemory) -> None:
        self.retained = retained
        self._logged = retained.trims  # trims before this trainer are not its epochs'

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.retained.check()

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, *args) -> None:
        self.retained.check()

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, *args) -> None:
        self.retained.check()

    @classmethod
    def if_retained(cls) -> list[L.Callback]:
        """``[BoundRetainedMemory]`` when this process retains freed memory
        (:func:`~matgnn.training.allocator.retained_memory`), else ``[]``: for every trainer."""
        retained = retained_memory()
        return [] if retained is None else [cls(retained)]

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        epoch = self.retained.trims - self._logged
        self._logged = self.retained.trims
        pl_module.log("retained_memory_trims", float(epoch), on_epoch=True)
