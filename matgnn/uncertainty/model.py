""":class:`UncertainModel`: an estimator with its calibration, saved in and loaded from a
checkpoint, predicting means with stds (regression) or probabilities with entropy and mutual
information (classification).

A checkpoint carries it as ``checkpoint["uncertainty"] = {"estimator": ..., <settings>,
"calibration": {output: {...}}}``; an ensemble checkpoint also carries every member's weights
in ``checkpoint["ensemble_state_dicts"]`` (its ``state_dict`` is member 0's, so
:func:`matgnn.checkpoint.load_model` still reads it as a single model).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch_geometric.data import Batch

from matgnn.checkpoint import model_from_checkpoint, read_checkpoint
from matgnn.graphs.data import CrystalGraph
from matgnn.inference import build_named_graphs
from matgnn.outputs import ClassOutput, Output
from matgnn.outputs.table import write_level_tables
from matgnn.uncertainty import calibration as calib
from matgnn.uncertainty.estimators import Ensemble, Estimator, MCDropout, MeanVariance
from matgnn.uncertainty.summary import fields, summarize


@dataclass
class UncertainPredictions:
    """Per output: the draws and their summary over the accepted inputs, crystal by crystal.

    Attributes:
        outputs: the model's declared outputs.
        names: names of the accepted inputs, in input order.
        summaries: ``{output: {field: [M, ...]}}`` (:mod:`matgnn.uncertainty.summary`), crystal
            level; for per-atom outputs the rows are atoms, in input order.
        draws: ``{output: [S, rows, ...]}``, as the estimator drew them.
        rejected: ``{name: reason}`` of the inputs that could not be predicted.
    """

    outputs: Sequence[Output]
    names: list[str] = field(default_factory=list)
    summaries: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    draws: dict[str, np.ndarray] = field(default_factory=dict)
    rejected: dict[str, str] = field(default_factory=dict)
    atomic_numbers: list[np.ndarray] = field(default_factory=list)

    def __getitem__(self, output: str) -> dict[str, np.ndarray]:
        return self.summaries[output]

    def to_csv(
        self, path: str | Path, targets: Mapping[str, np.ndarray] | None = None
    ) -> list[Path]:
        """Write ``path``, one row per crystal, and for per-atom outputs
        ``<stem>_atoms.csv`` beside it, one row per atom (``id, atom, Z``), through
        :func:`matgnn.outputs.table.write_level_tables`; returns the files.

        Columns: per output its target columns (when ``targets`` ``{output: rows}`` are given)
        and its summary columns (``predicted_<name>``, ``std_<name>``,
        ``aleatoric_std_<name>``, ``epistemic_std_<name>`` per component;
        ``predicted_<name>``, ``probability_<name>_<class>``, ``entropy_<name>``,
        ``mutual_information_<name>`` for classifiers)."""
        return write_level_tables(path, self.outputs, lambda chosen: self._table(chosen, targets))

    def _table(
        self, outputs: list[Output], targets: Mapping[str, np.ndarray] | None
    ) -> tuple[list[str], list[list]]:
        """Header and rows of ``outputs`` (all of one level)."""
        if outputs[0].level == "atom":
            keys = [
                [sid, atom, int(z)]
                for sid, numbers in zip(self.names, self.atomic_numbers, strict=True)
                for atom, z in enumerate(numbers)
            ]
            header = ["id", "atom", "Z"]
        else:
            keys, header = [[sid] for sid in self.names], ["id"]
        columns = []
        for output in outputs:
            if targets is not None:
                rows = [output.target_values(t) for t in np.asarray(targets[output.name])]
                for j, name in enumerate(output.columns()):
                    header.append(name)
                    columns.append([row[j] for row in rows])
            for name, values in uncertainty_columns(output, self.summaries[output.name]).items():
                header.append(name)
                columns.append(values)
        return header, [[*key, *(c[k] for c in columns)] for k, key in enumerate(keys)]


def uncertainty_columns(output: Output, summary: Mapping[str, np.ndarray]) -> dict[str, list]:
    """Named columns of one output's summary (one value per crystal)."""
    if isinstance(output, ClassOutput):
        probability = summary["probability"]
        columns: dict[str, list] = {f"predicted_{output.name}": probability.argmax(-1).tolist()}
        for c, cls in enumerate(output.class_names()):
            columns[f"probability_{output.name}_{cls}"] = probability[:, c].tolist()
        columns[f"entropy_{output.name}"] = summary["entropy"].tolist()
        columns[f"mutual_information_{output.name}"] = summary["mutual_information"].tolist()
        return columns
    names = output.columns()
    columns = {}
    for key in fields(output):
        prefix = "predicted" if key == "mean" else key
        values = summary[key].reshape(len(summary[key]), -1)
        for j, name in enumerate(names):
            columns[f"{prefix}_{name}"] = values[:, j].tolist()
    return columns


class UncertainModel:
    """An :class:`~matgnn.uncertainty.estimators.Estimator` and its calibration.

    Args:
        estimator: draws predictions.
        calibration: ``{output name: parameters}`` (:mod:`matgnn.uncertainty.calibration`);
            empty means uncalibrated.
    """

    def __init__(self, estimator: Estimator, calibration: Mapping[str, Mapping] | None = None):
        self.estimator = estimator
        self.calibration = {k: dict(v) for k, v in (calibration or {}).items()}

    @property
    def outputs(self) -> tuple[Output, ...]:
        return self.estimator.outputs

    def graph_config(self):
        return self.estimator.graph_config()

    # --- prediction --------------------------------------------------------------------
    def raw_draws(
        self, graphs: Sequence[CrystalGraph], batch_size: int = 64, progress: bool = False
    ) -> dict:
        """Uncalibrated draws ``{output: [S, rows, ...]}`` for ``graphs``, in order (with a
        progress bar over the batches when ``progress``)."""
        from tqdm import tqdm

        chunks: dict[str, list[torch.Tensor]] = {o.name: [] for o in self.outputs}
        device = next(self.estimator.model.parameters()).device
        starts = range(0, len(graphs), batch_size)
        for start in tqdm(starts, desc=self.estimator.name, disable=not progress, leave=False):
            batch = Batch.from_data_list(list(graphs[start : start + batch_size])).to(device)
            for name, value in self.estimator.draws(batch).items():
                chunks[name].append(value)
        return {
            name: torch.cat(values, dim=1).numpy() if values else np.empty((0, 0))
            for name, values in chunks.items()
        }

    def summarize(
        self, draws: Mapping[str, np.ndarray], calibrated: bool = True
    ) -> dict[str, dict[str, np.ndarray]]:
        """The summary of every output's draws, with or without the calibration applied."""
        return {
            o.name: calib.apply(
                o,
                summarize(o, draws[o.name]),
                self.calibration.get(o.name) if calibrated else None,
            )
            for o in self.outputs
        }

    def predict_graphs(
        self,
        graphs: Sequence[CrystalGraph],
        batch_size: int = 64,
        calibrated: bool = True,
        names: Sequence[str] | None = None,
        draws: dict | None = None,
    ) -> UncertainPredictions:
        """Predict graphs (named ``names``, default: their ``sample_id`` or position; ``draws``:
        their raw draws, when already computed)."""
        draws = draws if draws is not None else self.raw_draws(graphs, batch_size)
        return self.predictions(graphs, draws, self.summarize(draws, calibrated), names)

    def predictions(
        self,
        graphs: Sequence[CrystalGraph],
        draws: dict,
        summaries: dict[str, dict[str, np.ndarray]],
        names: Sequence[str] | None = None,
    ) -> UncertainPredictions:
        """:class:`UncertainPredictions` of ``graphs`` from their draws and summaries."""
        if names is None:
            names = [getattr(g, "sample_id", k) for k, g in enumerate(graphs)]
        return UncertainPredictions(
            outputs=self.outputs,
            names=[str(n) for n in names],
            summaries=summaries,
            draws=draws,
            atomic_numbers=[g.atomic_numbers.numpy() for g in graphs],
        )

    def predict(
        self, structures: Sequence[Any], names: Sequence[str] | None = None, batch_size: int = 64
    ) -> UncertainPredictions:
        """Build each input's graph and predict; invalid inputs are collected in ``rejected``
        (as :func:`matgnn.inference.predict` does)."""
        graphs, rejected = build_named_graphs(structures, names, self.graph_config())
        try:
            draws = self.raw_draws([g for _, g in graphs], batch_size)
        except ValueError:  # e.g. an element outside the CGCNN table: find which, one by one
            kept = []
            for name, graph in graphs:
                try:
                    with torch.no_grad():
                        self.estimator.model(Batch.from_data_list([graph]))
                except ValueError as exc:
                    rejected[name] = str(exc)
                else:
                    kept.append((name, graph))
            graphs = kept
            draws = self.raw_draws([g for _, g in graphs], batch_size)
        result = self.predict_graphs(
            [g for _, g in graphs], names=[n for n, _ in graphs], draws=draws
        )
        result.rejected = rejected
        return result

    # --- calibration -------------------------------------------------------------------
    def calibrate(
        self, graphs: Sequence[CrystalGraph], batch_size: int = 64, draws: dict | None = None
    ) -> dict:
        """Fit one calibration parameter per output on ``graphs`` (the validation split, with
        targets; ``draws``: their raw draws, when already computed) and keep it; returns the
        parameters."""
        if not graphs:
            raise ValueError(
                "calibration needs a validation split, and this one is empty (set a validation "
                "fraction, e.g. task.data.split.val > 0, or calibrate=false)"
            )
        draws = draws if draws is not None else self.raw_draws(graphs, batch_size)
        summaries = self.summarize(draws, calibrated=False)
        self.calibration = {
            o.name: calib.fit(o, summaries[o.name], targets(graphs, o)) for o in self.outputs
        }
        return self.calibration

    # --- checkpoint --------------------------------------------------------------------
    def settings(self) -> dict:
        return {**self.estimator.settings(), "calibration": self.calibration}

    def save(self, checkpoint: Mapping[str, Any], path: str | Path) -> Path:
        """``checkpoint`` (member 0's, a dict) with this estimator and calibration, and for an
        ensemble every member's weights, saved to ``path``."""
        data = dict(checkpoint)
        data["uncertainty"] = self.settings()
        if isinstance(self.estimator, Ensemble):
            data["ensemble_state_dicts"] = [
                {f"model.{k}": v for k, v in m.state_dict().items()} for m in self.estimator.models
            ]
        path = Path(path)
        torch.save(data, path)
        return path


def targets(graphs: Sequence[CrystalGraph], output: Output) -> np.ndarray:
    """The stored targets of ``output`` over ``graphs``, rows concatenated."""
    return torch.cat([g[output.key] for g in graphs]).double().numpy()


def estimator_from_checkpoint(checkpoint: Mapping[str, Any]) -> Estimator:
    """The estimator a checkpoint's ``uncertainty`` settings describe."""
    settings = checkpoint["uncertainty"]
    states = checkpoint.get("ensemble_state_dicts") or [checkpoint["state_dict"]]
    models = [model_from_checkpoint({**checkpoint, "state_dict": s}).eval() for s in states]
    return build_estimator(settings, models)


def has_uncertainty(checkpoint: Mapping[str, Any]) -> bool:
    return "uncertainty" in checkpoint


def load_uncertain_model(path: str | Path) -> UncertainModel:
    """The :class:`UncertainModel` stored in a checkpoint written by a run with
    ``uncertainty=<estimator>`` (safe load, ``weights_only=True``)."""
    checkpoint = read_checkpoint(path)
    if not has_uncertainty(checkpoint):
        raise ValueError(
            f"{path}: this checkpoint has no uncertainty estimator (train with "
            "uncertainty=ensemble|mc_dropout|mean_variance)"
        )
    return uncertain_model_from_checkpoint(checkpoint)


def uncertain_model_from_checkpoint(checkpoint: Mapping[str, Any]) -> UncertainModel:
    """The :class:`UncertainModel` of a checkpoint dict that has ``uncertainty`` settings."""
    return UncertainModel(
        estimator_from_checkpoint(checkpoint), checkpoint["uncertainty"].get("calibration")
    )


def model_for_prediction(checkpoint: Mapping[str, Any], uncertainty: bool = True):
    """The :class:`UncertainModel` of a checkpoint with an estimator (when ``uncertainty``),
    else its single :class:`~matgnn.models.CrystalModel` in eval mode."""
    if uncertainty and has_uncertainty(checkpoint):
        return uncertain_model_from_checkpoint(checkpoint)
    return model_from_checkpoint(dict(checkpoint)).eval()


def ensemble_from_checkpoints(paths: Sequence[str | Path]) -> UncertainModel:
    """An uncalibrated ensemble of separately trained checkpoints (same task, same graph
    config; anything else is refused in words). Calibrate it with
    :meth:`UncertainModel.calibrate` on validation graphs, then :meth:`UncertainModel.save`."""
    models = [model_from_checkpoint(read_checkpoint(p)).eval() for p in paths]
    return UncertainModel(Ensemble(models))


def build_estimator(settings: Mapping[str, Any], models: Sequence) -> Estimator:
    """An estimator from run settings (``cfg.uncertainty``) and trained models."""
    kind = settings.get("estimator")
    if kind == "ensemble":
        return Ensemble(models)
    if len(models) != 1:
        raise ValueError(f"{kind} uses one model, got {len(models)}")
    if kind == "mc_dropout":
        return MCDropout(
            models[0], passes=int(settings.get("passes", 30)), seed=int(settings.get("seed", 0))
        )
    if kind == "mean_variance":
        return MeanVariance(models[0])
    raise ValueError(
        f"unknown uncertainty estimator {kind!r}: one of ensemble, mc_dropout, mean_variance"
    )


__all__ = [
    "UncertainModel",
    "UncertainPredictions",
    "build_estimator",
    "ensemble_from_checkpoints",
    "load_uncertain_model",
    "model_for_prediction",
]
