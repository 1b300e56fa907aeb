"""Training callbacks of our own (Lightning's cover checkpoints, early stopping, LR logging)."""

from __future__ import annotations

import time

import lightning as L


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
