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


def test_testing_a_checkpoint_logs_that_checkpoints_epoch(tmp_path):
    """trainer.test(ckpt_path=...) of an earlier checkpoint logs that checkpoint's epoch, not
    the last trained one (what the run's own test could not show when best = last)."""
    from matgnn.training.run import build_data, build_module, build_trainer, model_config

    cfg = train_config(tmp_path, "cgcnn", "trainer.max_epochs=2")
    run(cfg)
    earlier = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    assert earlier["epoch"] == 1
    earlier["epoch"] = 0  # as if saved at the end of the first epoch
    torch.save(earlier, tmp_path / "earlier.ckpt")
    model = model_config(cfg)
    module = build_module(cfg, model, resuming=False)
    data = build_data(cfg, module.model.graph_config(), module.outputs)
    module.prepare(data.subsets, data.split_ids())
    (results,) = build_trainer(cfg).test(
        module, datamodule=data, ckpt_path=str(tmp_path / "earlier.ckpt"), weights_only=True
    )
    assert results["tested_epoch"] == 0


def test_run_monitor_reads_the_runs_config(tmp_path):
    (tmp_path / ".hydra").mkdir()
    (tmp_path / ".hydra" / "config.yaml").write_text(
        "task:\n  monitor: val_is_metal_roc_auc\n  monitor_mode: max\n"
    )
    assert run_monitor(tmp_path) == ("val_is_metal_roc_auc", "max")
    stored = tmp_path / "stored"  # a results folder keeps it as config.yaml
    stored.mkdir()
    (stored / "config.yaml").write_text("task:\n  monitor: val_phdos_mae\n  monitor_mode: min\n")
    assert run_monitor(stored) == ("val_phdos_mae", "min")


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
