"""A run reports the epoch of the checkpoint it tested: logged as ``tested_epoch``, read back
by :func:`~matgnn.training.run_logs.training_summary`, and found for older logs from the
checkpoint or the monitored metric (never from a validation MAE curve the checkpoint callback
did not watch)."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest
import torch

from matgnn.train import run
from matgnn.training import run_logs
from matgnn.training.run_logs import monitored_best_epoch, read_logs, run_monitor, training_summary
from tests.training.test_train import train_config


def test_a_run_logs_the_epoch_of_the_checkpoint_it_tested(tmp_path):
    metrics = run(train_config(tmp_path, "cgcnn", "trainer.max_epochs=4"))
    best = torch.load(tmp_path / "checkpoints" / "best.ckpt", weights_only=True)["epoch"]
    assert metrics["tested_epoch"] == best
    assert json.loads((tmp_path / "test_metrics.json").read_text())["tested_epoch"] == best
    frame = read_logs(tmp_path)
    assert monitored_best_epoch(frame, "val_loss") == best  # the callback's own pick
    assert training_summary(tmp_path)["best_epoch"] == best
    # an older run (no tested_epoch logged): the best checkpoint, then the monitored metric
    for version in (tmp_path / "logs").glob("version_*/metrics.csv"):
        pd.read_csv(version).drop(columns="tested_epoch").to_csv(version, index=False)
    assert run_logs.tested_epoch(tmp_path) == best
    shutil.rmtree(tmp_path / "checkpoints")
    assert run_monitor(tmp_path) == ("val_loss", "min")
    assert run_logs.tested_epoch(tmp_path) == best


def test_the_monitored_best_is_the_first_best_of_the_watched_metric():
    frame = pd.DataFrame(
        {
            "epoch": [0, 0, 1, 1, 2, 2, 3],
            "val_loss": [3.0, None, 1.0, None, 1.0, None, None],
            "val_y_mae": [None, 0.9, None, 0.5, None, 0.2, None],  # its low point is epoch 2
            "val_auc": [0.5, None, 0.9, None, 0.7, None, None],
        }
    )
    assert monitored_best_epoch(frame, "val_loss", "min") == 1  # a tie keeps the first
    assert monitored_best_epoch(frame, "val_auc", "max") == 1
    assert monitored_best_epoch(frame, "val_missing") is None
    with pytest.raises(ValueError, match="choose min or max"):
        monitored_best_epoch(frame, "val_loss", "lowest")
