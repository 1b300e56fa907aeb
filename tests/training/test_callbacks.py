"""EpochTimer counts the training batches of an epoch and not its validation."""

from __future__ import annotations

import lightning as L
import pytest
from lightning.pytorch.demos.boring_classes import BoringModel

from matgnn.training import callbacks
from matgnn.training.callbacks import EpochTimer


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def perf_counter(self) -> float:
        return self.now


@pytest.mark.parametrize("val_check_interval", [1.0, 1])  # end of epoch; after every batch
def test_epoch_timer_excludes_validation(monkeypatch, tmp_path, val_check_interval):
    clock = FakeClock()
    monkeypatch.setattr(callbacks, "time", clock)

    class Model(BoringModel):
        def training_step(self, batch, batch_idx):
            clock.now += 1.0  # one "second" per training batch
            return super().training_step(batch, batch_idx)

        def validation_step(self, batch, batch_idx):
            clock.now += 100.0  # validation must not be counted
            return super().validation_step(batch, batch_idx)

    timer = EpochTimer()
    trainer = L.Trainer(
        max_epochs=2,
        limit_train_batches=3,
        limit_val_batches=2,
        num_sanity_val_steps=1,
        val_check_interval=val_check_interval,
        callbacks=[timer],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        default_root_dir=tmp_path,
    )
    trainer.fit(Model())
    assert timer.times == [3.0, 3.0]
    assert trainer.callback_metrics["train_epoch_time_s"].item() == 3.0
