"""Training callbacks of our own (Lightning's cover checkpoints, early stopping, LR logging)."""

from __future__ import annotations

import time

import lightning as L


class EpochTimer(L.Callback):
    """Logs ``train_epoch_time_s``: wall time of the training batches of each epoch.

    Lightning runs the end-of-epoch validation before ``on_train_epoch_end``, so the clock
    stops when that validation starts and the validation time is not counted.
    """

    def __init__(self) -> None:
        self.started = 0.0
        self.stopped: float | None = None
        self.times: list[float] = []

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.started = time.perf_counter()
        self.stopped = None

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking and self.stopped is None:
            self.stopped = time.perf_counter()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        elapsed = (self.stopped or time.perf_counter()) - self.started
        self.times.append(elapsed)
        pl_module.log("train_epoch_time_s", elapsed, on_epoch=True, on_step=False)
