"""``CrystalLitModule``: one LightningModule for every model and every declared output."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
import torchmetrics
from hydra.utils import instantiate
from torch import Tensor
from torch_geometric.data import Batch

from matgnn.checkpoints.files import stamp
from matgnn.checkpoints.migrations import described
from matgnn.data.splits import split_sha256
from matgnn.data.stores import light
from matgnn.graphs.elements import elements_of
from matgnn.heads.normalizer import composition_counts
from matgnn.models import assembly
from matgnn.models.inference import split_rows
from matgnn.outputs import write_prediction_tables
from matgnn.terminal import is_interactive
from matgnn.training.feature_cache import (
    attach_backbone_features,
    backbone_fingerprint,
    why_not_cached,
)
from matgnn.training.finetune import (
    FineTuning,
    copy_normalization,
    freeze,
    frozen_modules,
    parameter_groups,
)

log = logging.getLogger(__name__)

#: one test crystal: (id, atomic numbers, {output: target}, {output: presented prediction})
TestRow = tuple[str, np.ndarray, dict[str, np.ndarray], dict[str, np.ndarray]]


def distributed() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_initialized()


def gather_rows(rows: list[TestRow]) -> list[TestRow]:
    """Every process's test rows, on every process (DDP); one row per id.

    Under DDP each process tests its own shard (the data module's test loader does not pad
    shards with repeats; any repeat a padding sampler would add is dropped here all the same),
    so the predictions CSV has each test crystal once. Without a process group this returns
    ``rows`` unchanged.
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


class WeightedMean(torchmetrics.Metric):
    """The mean of values weighted by their counts (a batch's loss by its crystals), summed
    over every DDP rank. A NaN stays NaN: torchmetrics' ``MeanMetric`` drops NaNs by default,
    and with ``nan_strategy="disable"`` it also drops the weights (torchmetrics 1.9)."""

    full_state_update = False

    def __init__(self) -> None:
        super().__init__()
        self.add_state("total", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, value: Tensor, weight: float | Tensor) -> None:
        self.total += value.detach().double().sum() * float(weight)
        self.count += float(weight)

    def compute(self) -> Tensor:
        return (self.total / self.count).float()


class CrystalLitModule(L.LightningModule):
    """Losses, metrics, normaliser fitting and optimisation for a
    :class:`~matgnn.models.CrystalModel` and its declared outputs.

    Everything that depends on the kind of target is asked of the model's outputs
    (:mod:`matgnn.outputs`): the loss is ``sum_k weight_k * output_k.compute_loss(...)``, each
    output logs its own metrics as ``<stage>_<output>_<metric>`` (``val_band_gap_mae``), and the
    test set's predictions of every output go to one CSV (plus per-atom rows in a second file)
    with each output's own plots. The total loss is logged as ``<stage>_loss``.

    ``setup("fit")`` prepares the model from the data module's training split, as
    schnetpack's ``AtomisticTask`` does: fine-tuning transfer and element check, the backbone's
    input statistics and every head's target normalisation, freezing, and the data part of the
    provenance (split hash and sizes, training elements). At test time each output's trivial
    baselines are logged next to its metrics.

    The checkpoint carries the assembled model config (registry data: graph, backbone, heads,
    outputs), the provenance, the recipe (described) and the format version, so
    :func:`matgnn.load_model` rebuilds the model from the file alone.

    Args:
        model: assembled model config (:func:`matgnn.models.assembly.assemble`).
        optimizer: Hydra config of a ``_partial_`` optimizer (default AdamW, lr 1e-3); from the
            run's own YAML, recorded in the checkpoint as a description only.
        scheduler: Hydra config of a ``_partial_`` scheduler or ``None``; ``OneCycleLR`` gets
            ``total_steps`` from the trainer.
        output_dir: where the test predictions CSV and plots go.
        monitor: the metric a ``ReduceLROnPlateau`` schedule watches.
        provenance: what the model is trained on (task, targets, data source, seed); the split
            and the elements are added in ``setup("fit")``.
        finetuning: how to start from a checkpoint, freeze and scale the backbone's learning
            rate (:class:`~matgnn.training.finetune.FineTuning`; ``None``: from scratch).
    """

    def __init__(
        self,
        model: Mapping[str, Any],
        optimizer: Mapping[str, Any] | None = None,
        scheduler: Mapping[str, Any] | None = None,
        output_dir: str | None = None,
        monitor: str = "val_loss",
        provenance: Mapping[str, Any] | None = None,
        finetuning: FineTuning | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["optimizer", "scheduler", "finetuning", "provenance"])
        self.model = assembly.build(model)
        self.outputs = self.model.outputs
        self.optimizer_config = dict(optimizer) if optimizer else None
        self.scheduler_config = dict(scheduler) if scheduler else None
        self.provenance: dict[str, Any] = dict(provenance or {})
        self.finetuning = finetuning or FineTuning()
        self.metrics = torch.nn.ModuleDict(
            {
                f"{stage}_{output.name}": torchmetrics.MetricCollection(output.metrics())
                for stage in ("train", "val", "test")
                for output in self.outputs
            }
        )
        self.loss_means = torch.nn.ModuleDict({stage: WeightedMean() for stage in ("val", "test")})
        self._test_rows: list[TestRow] = []
        self._prepared = False
        self._weights_epoch: int | None = None  # the epoch the current weights were saved at
        #: (subsets, cache_dir) whose frozen backbone features are cached
        self._feature_source: tuple[Mapping[str, Sequence], str | Path | None] | None = None

    @property
    def backbone_lr_scale(self) -> float:
        return self.finetuning.backbone_lr_scale

    def setup(self, stage: str) -> None:
        if stage != "fit" or self._prepared:
            return
        data = getattr(self.trainer, "datamodule", None)
        if data is None or not hasattr(data, "subsets"):
            raise ValueError(
                "CrystalLitModule prepares itself (normalisers, fine-tuning, provenance) from a "
                "matgnn data module: trainer.fit(module, datamodule=...); with other dataloaders "
                "call module.prepare({'train': graphs, ...}) before fitting"
            )
        self.prepare(data.subsets, data.split_ids(), getattr(data, "cache_dir", None))

    def prepare(
        self,
        subsets: Mapping[str, Sequence],
        split: Mapping[str, Sequence[str]] | None = None,
        cache_dir: str | Path | None = None,
    ) -> None:
        """Fine-tuning transfer, normalisers, freezing, the frozen backbone's features and
        provenance from the data (what ``setup("fit")`` does; callable without a trainer).
        ``cache_dir``: where the frozen backbone's features are kept between runs."""
        started = self.finetuning.start(self.model, {k: light(v) for k, v in subsets.items()})
        self.fit_normalizer(subsets["train"])
        if started is not None and self.finetuning.keep_normalization:
            copy_normalization(self.model, started[0], started[1].copied_heads)
        frozen = freeze(self.model, self.finetuning.freeze)
        if frozen:
            log.info("frozen: %d backbone tensors", len(frozen))
        self._cache_features(subsets, cache_dir)
        if split is not None:
            self.provenance["split_sha256"] = split_sha256(split)
            self.provenance["split_sizes"] = {k: len(v) for k, v in split.items()}
        self.provenance["elements"] = elements_of(light(subsets["train"]))
        self._prepared = True

    def _cache_features(
        self, subsets: Mapping[str, Sequence], cache_dir: str | Path | None
    ) -> None:
        """Put the frozen backbone's features on the graphs (``finetune.cache_features``)."""
        setting = self.finetuning.cache_features
        if setting == "false":
            return
        reason = why_not_cached(self.model.backbone, subsets)
        if reason is not None:
            if setting == "true":
                raise ValueError(f"finetune.cache_features=true: {reason}")
            if self.finetuning.freeze == "backbone":
                log.info("backbone features not cached: %s", reason)
            return
        self._feature_source = (subsets, cache_dir)
        attach_backbone_features(
            self.model,
            subsets,
            self.hparams["model"]["backbone"],
            cache_dir,
            show_progress=is_interactive(),
        )

    def _refresh_cached_features(self) -> None:
        """Compute the cached features again when the backbone's weights changed since (a
        checkpoint loaded by the trainer: a resumed run, the best checkpoint for testing)."""
        fingerprint = self.model.cached_features_fingerprint
        if fingerprint is None or self._feature_source is None:
            return
        config = self.hparams["model"]["backbone"]
        if backbone_fingerprint(self.model.backbone, config, self.model.graph_fingerprint) == (
            fingerprint
        ):
            return
        log.info("the backbone's weights changed since its features were cached: computing again")
        subsets, cache_dir = self._feature_source
        attach_backbone_features(self.model, subsets, config, cache_dir)

    def on_fit_start(self) -> None:
        self._refresh_cached_features()

    def on_test_start(self) -> None:
        self._refresh_cached_features()

    def on_train_epoch_start(self) -> None:
        # frozen parts keep their pretrained batch-norm statistics (fine-tuning)
        for module in frozen_modules(self.model):
            module.eval()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self._weights_epoch = checkpoint.get("epoch")

    def on_fit_end(self) -> None:
        # the weights are the last trained epoch's, until a checkpoint is loaded for testing
        self._weights_epoch = self.current_epoch - 1 if self.current_epoch > 0 else None

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        hyper = checkpoint.setdefault("hyper_parameters", {})
        hyper["provenance"] = self.provenance
        hyper["recipe"] = described(
            {"optimizer": self.optimizer_config, "scheduler": self.scheduler_config}
        )
        stamp(checkpoint)

    def fit_normalizer(self, graphs: Sequence) -> None:
        """Fit the backbone's input statistics and each output's head normalisation on the
        training graphs (a stored subset streams: the backbone reads the graphs if it keeps
        input statistics, the heads only the atomic numbers and targets held in memory)."""
        self.model.backbone.fit_to_training_data(graphs)
        graphs = light(graphs)
        compositions = composition_counts(graphs)
        for output in self.outputs:
            targets = torch.cat([g[output.key] for g in graphs])
            output.fit(self.model.heads[output.name], targets, compositions)

    def forward(self, batch) -> dict[str, Tensor]:
        return self.model(batch)

    def weighted_loss(self, predictions: dict[str, Tensor], batch) -> Tensor:
        """``sum_k weight_k * loss_k`` over the outputs, each loss in its output's units."""
        return sum(
            output.weight
            * output.compute_loss(
                predictions[output.name], batch[output.key], self.model.heads[output.name]
            )
            for output in self.outputs
        )

    def _step(self, batch, stage: str) -> tuple[Tensor, dict[str, Tensor]]:
        """Weighted loss of one batch (logged, metrics updated) and the raw outputs."""
        try:
            predictions = self.model(batch)
        except ValueError as exc:  # a refusal inside the model: name the crystals at fault
            at_fault = self._refused_graphs(batch)
            if not at_fault:
                raise
            shown = ", ".join(at_fault[:5]) + (", ..." if len(at_fault) > 5 else "")
            raise ValueError(f"{shown} ({stage}): {exc}") from None
        total = self.weighted_loss(predictions, batch)
        for output in self.outputs:
            inputs = output.metric_inputs(predictions[output.name].detach(), batch[output.key])
            self.metrics[f"{stage}_{output.name}"].update(*inputs)
        if stage == "train":
            self.log("train_loss", total, batch_size=batch.num_graphs, prog_bar=True)
        else:
            # the mean over every crystal of every rank (DDP): a metric whose sums are synced.
            # (Lightning's own sync_dist mean truncates the summed batch sizes, an integer,
            # when it divides by the world size on gloo: 7 crystals on 2 ranks counted as 6.)
            mean = self.loss_means[stage]
            mean.update(total.detach(), batch.num_graphs)
            self.log(f"{stage}_loss", mean, prog_bar=stage != "test")
        return total, predictions

    def _refused_graphs(self, batch) -> list[str]:
        """The names of the batch's graphs that the model refuses on their own (a ``ValueError``
        in eval mode, without gradients): run only after the batch failed."""
        was_training = self.model.training
        self.model.eval()
        names = []
        try:
            with torch.no_grad():
                for k, graph in enumerate(batch.to_data_list()):
                    try:
                        self.model(Batch.from_data_list([graph]))
                    except ValueError:
                        names.append(str(graph.name) if "name" in graph else f"graph {k}")
        finally:
            self.model.train(was_training)
        return names

    def training_step(self, batch, batch_idx: int) -> Tensor:
        return self._step(batch, "train")[0]

    def validation_step(self, batch, batch_idx: int) -> None:
        self._step(batch, "val")

    def test_step(self, batch, batch_idx: int) -> None:
        predictions = self._step(batch, "test")[1]
        columns = {}
        for output in self.outputs:
            presented = output.present(predictions[output.name].detach()).cpu().double()
            target = batch[output.key].cpu().double()
            columns[output.name] = (
                split_rows(target, batch, output.level),
                split_rows(presented, batch, output.level),
            )
        numbers = split_rows(batch.atomic_numbers.cpu(), batch, "atom")
        for k, sid in enumerate(batch.sample_id):
            self._test_rows.append(
                (
                    sid,
                    numbers[k].numpy(),
                    {name: t[k].numpy() for name, (t, _) in columns.items()},
                    {name: p[k].numpy() for name, (_, p) in columns.items()},
                )
            )

    def _log_metrics(self, stage: str) -> None:
        for output in self.outputs:
            collection = self.metrics[f"{stage}_{output.name}"]
            values = collection.compute()
            self.log_dict(
                {f"{stage}_{output.name}_{k}": v for k, v in values.items()}, prog_bar=True
            )
            collection.reset()

    def on_train_epoch_end(self) -> None:
        self._log_metrics("train")

    def on_validation_epoch_end(self) -> None:
        self._log_metrics("val")

    def on_test_epoch_start(self) -> None:
        self._test_rows = []

    def on_test_epoch_end(self) -> None:
        self._log_metrics("test")
        if self._weights_epoch is not None:  # what a table reports as the best epoch
            self.log("tested_epoch", float(self._weights_epoch), sync_dist=True)
        self._log_baselines()
        rows = gather_rows(self._test_rows)
        if not rows or self.hparams.output_dir is None or not self.trainer.is_global_zero:
            return
        self.write_test_outputs(rows, Path(self.hparams.output_dir))

    def _log_baselines(self) -> None:
        """Each output's trivial baselines on the test split (fitted on the training split)."""
        subsets = getattr(getattr(self.trainer, "datamodule", None), "subsets", None) or {}
        if not subsets.get("train") or not subsets.get("test"):
            return
        for output in self.outputs:
            train = torch.cat([g[output.key] for g in light(subsets["train"])]).double()
            test = torch.cat([g[output.key] for g in light(subsets["test"])]).double()
            for name, value in output.baselines(train, test).items():
                self.log(f"test_{output.name}_{name}", value)

    def write_test_outputs(self, rows: list[TestRow], directory: Path) -> None:
        """``test_predictions.csv`` (and ``test_predictions_atoms.csv`` for per-atom outputs)
        plus each output's plots."""
        directory.mkdir(parents=True, exist_ok=True)
        ids = [r[0] for r in rows]
        targets = {o.name: [r[2][o.name] for r in rows] for o in self.outputs}
        predictions = {o.name: [r[3][o.name] for r in rows] for o in self.outputs}
        write_prediction_tables(
            directory / "test_predictions.csv",
            self.outputs,
            ids,
            predictions,
            targets,
            atomic_numbers=[r[1] for r in rows],
        )
        for output in self.outputs:
            if output.level == "crystal":
                output.plot(
                    ids,
                    np.stack(targets[output.name]),
                    np.stack(predictions[output.name]),
                    directory,
                    "test",
                )

    def configure_optimizers(self):
        config = self.optimizer_config or {
            "_target_": "torch.optim.AdamW",
            "_partial_": True,
            "lr": 1e-3,
        }
        factory = instantiate(config)
        lr = factory.keywords.get("lr", 1e-3)
        groups = parameter_groups(self.model, lr, self.backbone_lr_scale)
        optimizer = factory(groups)
        if not self.scheduler_config:
            return optimizer
        factory = instantiate(self.scheduler_config)
        kwargs = {}
        one_cycle = getattr(factory, "func", None) is torch.optim.lr_scheduler.OneCycleLR
        if one_cycle:
            kwargs["total_steps"] = int(self.trainer.estimated_stepping_batches)
            # one peak per group, in the groups' ratio (fine-tuning: backbone vs heads)
            peak = factory.keywords.get("max_lr", lr)
            kwargs["max_lr"] = [peak * group["lr"] / lr for group in groups]
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
