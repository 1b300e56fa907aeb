"""EpochTimer counts the training batches of an epoch and not its validation; the progress bar
is shown on a terminal only, and elsewhere EpochSummary logs one plain line per epoch."""

from __future__ import annotations

import io
import logging
import re
import sys

import lightning as L
import pytest
import torch
from lightning.pytorch.demos.boring_classes import BoringModel

from matgnn.terminal import is_interactive, is_terminal
from matgnn.train import compose_config
from matgnn.training import callbacks, run
from matgnn.training.callbacks import EpochSummary, EpochTimer
from tests.training.test_train import matgnn_train


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


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_only_a_terminal_is_interactive(monkeypatch):
    assert is_interactive(Terminal())
    assert not is_interactive(io.StringIO())  # a file, a pipe
    closed = io.StringIO()
    closed.close()
    assert not is_interactive(closed)  # isatty raises
    monkeypatch.setattr(sys, "stdout", None)  # pythonw, a detached process
    assert not is_interactive()


def test_a_notebook_shows_a_bar_only_as_a_widget(monkeypatch):
    import importlib.util

    kernel_stream = type("OutStream", (io.StringIO,), {"__module__": "ipykernel.iostream"})()
    real = importlib.util.find_spec

    def without_widgets(name, *args):
        return None if name == "ipywidgets" else real(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", without_widgets)
    assert not is_interactive(kernel_stream)  # tqdm would print a line per step
    assert not is_terminal(kernel_stream)  # a text bar (matminer's) never asks for a widget
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *args: object())
    assert is_interactive(kernel_stream)


@pytest.mark.parametrize(
    ("override", "terminal", "bar"),
    [(None, True, True), (None, False, False), ("true", False, True), ("false", True, False)],
)
def test_the_progress_bar_is_shown_on_a_terminal_unless_the_config_says(
    monkeypatch, tmp_path, override, terminal, bar
):
    monkeypatch.setattr(run, "is_interactive", lambda: terminal)
    extra = [] if override is None else [f"+trainer.enable_progress_bar={override}"]
    cfg = compose_config(*extra, output_dir=tmp_path)
    trainer = run.build_trainer(cfg)
    assert (trainer.progress_bar_callback is not None) == bar
    assert any(isinstance(c, EpochSummary) for c in trainer.callbacks)


class LossModel(BoringModel):
    """BoringModel that logs ``val_loss`` and remembers its training losses."""

    def __init__(self) -> None:
        super().__init__()
        self.losses: list[float] = []

    def training_step(self, batch, batch_idx):
        output = super().training_step(batch, batch_idx)
        self.losses.append(output["loss"].item())
        return output

    def validation_step(self, batch, batch_idx):
        self.log("val_loss", self.step(batch))


def summary_lines(caplog, tmp_path, bar: bool, **options) -> tuple[list[str], LossModel]:
    model = LossModel()
    trainer = L.Trainer(
        max_epochs=3,
        limit_train_batches=4,
        limit_val_batches=1,
        num_sanity_val_steps=1,
        callbacks=[EpochSummary()],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=bar,
        enable_model_summary=False,
        default_root_dir=tmp_path,
        **options,
    )
    with caplog.at_level(logging.INFO, logger=callbacks.__name__):
        trainer.fit(model)
    return [r.getMessage() for r in caplog.records if r.name == callbacks.__name__], model


def test_epoch_summary_logs_one_line_per_epoch_without_a_progress_bar(caplog, tmp_path):
    lines, model = summary_lines(caplog, tmp_path, bar=False, accumulate_grad_batches=2)
    assert [line.split(":")[0] for line in lines] == ["epoch 0", "epoch 1", "epoch 2"]
    # the mean of the epoch's losses, not Lightning's accumulation-divided ones
    means = torch.tensor(model.losses).reshape(3, 4).mean(dim=1)
    for line, mean in zip(lines, means, strict=True):
        assert re.fullmatch(r"epoch \d: train_loss \S+, val_loss \S+, \d+\.\d s", line), line
        assert float(line.split("train_loss ")[1].split(",")[0]) == pytest.approx(
            float(mean), rel=1e-3
        )


def test_epoch_summary_shows_validation_only_in_epochs_that_validated(caplog, tmp_path):
    lines, _ = summary_lines(caplog, tmp_path, bar=False, check_val_every_n_epoch=2)
    assert ["val_loss" in line for line in lines] == [False, True, False]


def test_epoch_summary_is_quiet_beside_a_progress_bar(caplog, tmp_path):
    assert summary_lines(caplog, tmp_path, bar=True)[0] == []


def test_training_into_a_log_writes_one_line_per_epoch_and_no_progress_bar(tmp_path):
    """``python -m matgnn.train > log``: stdout and stderr are pipes, not a terminal."""
    result = matgnn_train(tmp_path, "trainer.max_epochs=2", "run_name=piped", bar_off=False)
    printed = result.stdout + result.stderr
    assert "\r" not in printed and "it/s" not in printed  # no progress bar
    epochs = re.findall(r"\] - epoch (\d+): train_loss .*, val_loss .* s$", result.stdout, re.M)
    assert epochs == ["0", "1"]
    assert len(result.stdout.splitlines()) <= 20  # was 24 (+5 per epoch) with the bar
    run_log = (tmp_path / "outputs/mp_sample_eform/cgcnn/piped/train.log").read_text()
    assert len(re.findall(r"\] - epoch \d+: ", run_log)) == 2  # the run folder keeps them
