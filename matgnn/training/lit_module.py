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
from matgnn.training.plots import parity_plot

REGRESSION_LOSSES = {"mae": F.l1_loss, "mse": F.mse_loss, "huber": F.huber_loss}


class CrystalLitModule(L.LightningModule):
    """Loss, metrics, normaliser fitting and optimisation around a :class:`CrystalModel`.

    Regression losses are computed in normalised units (divided by the head's fitted std);
    metrics are in physical units. The checkpoint carries the resolved model config, so
    :func:`matgnn.training.load_model` rebuilds the model from it alone.

    Args:
        model: resolved model config (a ``configs/model/*.yaml`` node as a dict).
        task_type: ``"regression"`` or ``"classification"``.
        loss: ``"mae"``, ``"mse"`` or ``"huber"`` (regression); classification uses
            cross-entropy.
        optimizer: Hydra config of a ``_partial_`` optimizer (default AdamW, lr 1e-3).
        scheduler: Hydra config of a ``_partial_`` scheduler or ``None``; ``OneCycleLR`` gets
            ``total_steps`` from the trainer.
        element_reference: fit per-element reference values before mean/std.
        target_name: column name for prediction files and plots.
        output_dir: where the test predictions CSV and parity plot go.
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
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.model = instantiate(model)
        self.task_type = task_type
        if task_type == "regression" and loss not in REGRESSION_LOSSES:
            raise ValueError(f"loss must be one of {sorted(REGRESSION_LOSSES)}, got {loss!r}")
        if task_type == "regression":
            metrics = {
                "mae": torchmetrics.MeanAbsoluteError(),
                "rmse": torchmetrics.MeanSquaredError(squared=False),
                "r2": torchmetrics.R2Score(),
            }
        else:
            metrics = {
                "accuracy": torchmetrics.Accuracy(task="binary"),
                "roc_auc": torchmetrics.AUROC(task="binary"),
                "f1": torchmetrics.F1Score(task="binary"),
            }
        self.metrics = torch.nn.ModuleDict(
            {
                stage: torchmetrics.MetricCollection({k: m.clone() for k, m in metrics.items()})
                for stage in ("train_", "val_", "test_")
            }
        )
        self._test_rows: list[tuple[str, float, float]] = []

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
            self._test_rows.append((sid, float(t.flatten()[0]), float(p.flatten()[0])))

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
        if not self._test_rows or self.hparams.output_dir is None:
            return
        out = Path(self.hparams.output_dir)
        out.mkdir(parents=True, exist_ok=True)
        name = self.hparams.target_name
        with open(out / "test_predictions.csv", "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["id", name, f"predicted_{name}"])
            writer.writerows(self._test_rows)
        if self.task_type == "regression":
            target = np.array([r[1] for r in self._test_rows])
            prediction = np.array([r[2] for r in self._test_rows])
            parity_plot(target, prediction, out / "test_parity.png", name)

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
        if getattr(factory, "func", None) is torch.optim.lr_scheduler.OneCycleLR:
            kwargs["total_steps"] = int(self.trainer.estimated_stepping_batches)
        scheduler = factory(optimizer, **kwargs)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }
