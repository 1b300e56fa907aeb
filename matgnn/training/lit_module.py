"""``CrystalLitModule``: one LightningModule for every model and task."""

from __future__ import annotations

import csv
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
import torchmetrics
from hydra.utils import instantiate
from torch import Tensor

from matgnn.heads.normalizer import composition_counts
from matgnn.training.losses import REGRESSION_LOSSES, SPECTRUM_LOSSES, earth_movers_distance
from matgnn.training.plots import dos_plot, parity_plot

TASK_TYPES = ("regression", "classification", "dos")

TestRow = tuple[str, np.ndarray, np.ndarray]


def distributed() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_initialized()


def gather_rows(rows: list[TestRow]) -> list[TestRow]:
    """Every process's test rows, on every process (DDP); one row per id.

    Under DDP each process tests a shard, and ``DistributedSampler`` pads the shards to equal
    length by repeating crystals: the repeats are dropped so the predictions CSV has each test
    crystal once. Without a process group this returns ``rows`` unchanged.
    """
    if not distributed():
        return rows
    shards: list[list[TestRow] | None] = [None] * torch.distributed.get_world_size()
    torch.distributed.all_gather_object(shards, rows)
    unique: dict[str, TestRow] = {}
    for shard in shards:
        for row in shard or []:
            unique.setdefault(row[0], row)
    return list(unique.values())


class EarthMoversDistance(torchmetrics.Metric):
    """Mean per-crystal Wasserstein-1 distance (in bins) of area-normalised spectra."""

    def __init__(self) -> None:
        super().__init__()
        self.add_state(
            "total", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum"
        )
        self.add_state("count", default=torch.tensor(0), dist_reduce_fx="sum")

    def update(self, prediction: Tensor, target: Tensor) -> None:
        self.total += earth_movers_distance(prediction, target).double() * target.size(0)
        self.count += target.size(0)

    def compute(self) -> Tensor:
        return self.total / self.count


def task_metrics(task_type: str) -> dict[str, torchmetrics.Metric]:
    if task_type == "regression":
        return {
            "mae": torchmetrics.MeanAbsoluteError(),
            "rmse": torchmetrics.MeanSquaredError(squared=False),
            "r2": torchmetrics.R2Score(),
        }
    if task_type == "classification":
        return {
            "accuracy": torchmetrics.Accuracy(task="binary"),
            "roc_auc": torchmetrics.AUROC(task="binary"),
            "f1": torchmetrics.F1Score(task="binary"),
        }
    return {
        "mae": torchmetrics.MeanAbsoluteError(),
        "rmse": torchmetrics.MeanSquaredError(squared=False),
        "emd": EarthMoversDistance(),
    }


class CrystalLitModule(L.LightningModule):
    """Loss, metrics, normaliser fitting and optimisation around a :class:`CrystalModel`.

    Regression losses are computed in normalised units (divided by the head's fitted std);
    metrics are in physical units. Classification uses cross-entropy on the logits (metrics on
    the probability of class 1). ``dos`` tasks compare ``[B, K]`` spectra from a
    :class:`~matgnn.heads.VectorHead` with a spectral loss (:mod:`matgnn.training.losses`).
    The checkpoint carries the resolved model config, so :func:`matgnn.training.load_model`
    rebuilds the model from it alone.

    Args:
        model: resolved model config (a ``configs/model/*.yaml`` node as a dict).
        task_type: ``"regression"``, ``"classification"`` or ``"dos"``.
        loss: ``"mae"``, ``"mse"`` or ``"huber"`` (regression); ``"mse"``, ``"mae"``,
            ``"emd"`` or ``"cosine"`` (dos); classification uses cross-entropy.
        optimizer: Hydra config of a ``_partial_`` optimizer (default AdamW, lr 1e-3).
        scheduler: Hydra config of a ``_partial_`` scheduler or ``None``; ``OneCycleLR`` gets
            ``total_steps`` from the trainer.
        element_reference: fit per-element reference values before mean/std.
        target_name: column name for prediction files and plots.
        output_dir: where the test predictions CSV and parity (or DOS) plot go.
        grid: the spectrum's x values for the DOS plot (default: bin numbers).
        monitor: the metric a ``ReduceLROnPlateau`` schedule watches.
    """

    def __init__(
        self,
        model: Mapping[str, Any],
        task_type: str = "regression",
        loss: str = "mae",
        optimizer: Mapping[str, Any] | None = None,
        scheduler: Mapping[str, Any] | None = None,
        element_reference: bool = False,
        target_name: str = "target",
        output_dir: str | None = None,
        grid: list[float] | None = None,
        monitor: str = "val_loss",
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        if task_type not in TASK_TYPES:
            raise ValueError(f"task_type must be one of {TASK_TYPES}, got {task_type!r}")
        allowed = {"regression": REGRESSION_LOSSES, "dos": SPECTRUM_LOSSES}.get(task_type)
        if allowed is not None and loss not in allowed:
            raise ValueError(f"{task_type} loss must be one of {sorted(allowed)}, got {loss!r}")
        self.model = instantiate(model)
        self.task_type = task_type
        metrics = task_metrics(task_type)
        self.metrics = torch.nn.ModuleDict(
            {
                stage: torchmetrics.MetricCollection({k: m.clone() for k, m in metrics.items()})
                for stage in ("train_", "val_", "test_")
            }
        )
        self._test_rows: list[TestRow] = []

    def fit_normalizer(self, graphs: list) -> None:
        """Fit the main head's normaliser on the training graphs (regression only)."""
        if self.task_type != "regression":
            return
        targets = torch.cat([g.y for g in graphs]).to(torch.float64)
        self.model.heads["y"].normalizer.fit(
            targets, composition_counts(graphs), element_reference=self.hparams.element_reference
        )

    def forward(self, batch) -> dict[str, Tensor]:
        return self.model(batch)

    def _step(self, batch, stage: str) -> tuple[Tensor, Tensor]:
        """Loss of one batch (logged, metrics updated) and the main output."""
        prediction = self.model(batch)["y"]
        target = batch.y
        if self.task_type == "regression":
            std = self.model.heads["y"].normalizer.std
            if prediction.ndim == 1:
                std = std.squeeze(-1)
            loss = REGRESSION_LOSSES[self.hparams.loss](prediction / std, target / std)
            self.metrics[f"{stage}_"].update(prediction.detach().flatten(), target.flatten())
        elif self.task_type == "dos":
            loss = SPECTRUM_LOSSES[self.hparams.loss](prediction, target)
            # MAE and RMSE average over every bin of every crystal; EMD needs [B, K]
            self.metrics[f"{stage}_"].update(prediction.detach(), target)
        else:
            loss = F.cross_entropy(prediction, target)
            probability = prediction.detach().softmax(-1)[:, 1]
            self.metrics[f"{stage}_"].update(probability, target)
        self.log(f"{stage}_loss", loss, batch_size=target.size(0), prog_bar=stage != "test")
        return loss, prediction

    def training_step(self, batch, batch_idx: int) -> Tensor:
        return self._step(batch, "train")[0]

    def validation_step(self, batch, batch_idx: int) -> None:
        self._step(batch, "val")

    def test_step(self, batch, batch_idx: int) -> None:
        prediction = self._step(batch, "test")[1].detach().cpu()
        if self.task_type == "classification":
            prediction = prediction.softmax(-1)[:, 1]
        for sid, t, p in zip(batch.sample_id, batch.y.cpu(), prediction, strict=True):
            self._test_rows.append(
                (sid, t.flatten().double().numpy(), p.flatten().double().numpy())
            )

    def _log_metrics(self, stage: str) -> None:
        collection = self.metrics[f"{stage}_"]
        self.log_dict({f"{stage}_{k}": v for k, v in collection.compute().items()}, prog_bar=True)
        collection.reset()

    def on_train_epoch_end(self) -> None:
        self._log_metrics("train")

    def on_validation_epoch_end(self) -> None:
        self._log_metrics("val")

    def on_test_epoch_start(self) -> None:
        self._test_rows = []

    def on_test_epoch_end(self) -> None:
        self._log_metrics("test")
        rows = gather_rows(self._test_rows)
        if not rows or self.hparams.output_dir is None or not self.trainer.is_global_zero:
            return
        out = Path(self.hparams.output_dir)
        out.mkdir(parents=True, exist_ok=True)
        name = self.hparams.target_name
        ids = [r[0] for r in rows]
        target = np.stack([r[1] for r in rows])
        prediction = np.stack([r[2] for r in rows])
        columns = (
            [name] if target.shape[1] == 1 else [f"{name}_{k}" for k in range(target.shape[1])]
        )
        with open(out / "test_predictions.csv", "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["id", *columns, *(f"predicted_{c}" for c in columns)])
            for sid, t, p in zip(ids, target, prediction, strict=True):
                writer.writerow([sid, *t.tolist(), *p.tolist()])
        if self.task_type == "regression":
            for k, column in enumerate(columns):
                suffix = "" if len(columns) == 1 else f"_{column}"
                parity_plot(
                    target[:, k], prediction[:, k], out / f"test_parity{suffix}.png", column
                )
        elif self.task_type == "dos":
            grid = np.asarray(self.hparams.grid or np.arange(target.shape[1]), dtype=float)
            dos_plot(grid, target, prediction, ids, out / "test_dos.png")

    def configure_optimizers(self):
        config = self.hparams.optimizer or {
            "_target_": "torch.optim.AdamW",
            "_partial_": True,
            "lr": 1e-3,
        }
        optimizer = instantiate(config)(self.parameters())
        if not self.hparams.scheduler:
            return optimizer
        factory = instantiate(self.hparams.scheduler)
        kwargs = {}
        one_cycle = getattr(factory, "func", None) is torch.optim.lr_scheduler.OneCycleLR
        if one_cycle:
            kwargs["total_steps"] = int(self.trainer.estimated_stepping_batches)
        scheduler = factory(optimizer, **kwargs)
        # OneCycle is defined in optimiser steps; every other schedule here counts epochs
        # (MultiStepLR milestones, ExponentialLR gamma per epoch, ReduceLROnPlateau).
        interval = "step" if one_cycle else "epoch"
        return {
            "optimizer": optimizer,
            "lr_scheduler": {
                "scheduler": scheduler,
                "interval": interval,
                "monitor": self.hparams.monitor,
            },
        }
