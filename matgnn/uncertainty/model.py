""":class:`UncertainModel`: an estimator with its calibration, saved in and loaded from a
checkpoint, predicting means with stds (regression) or probabilities with entropy and mutual
information (classification).

A checkpoint carries it as ``checkpoint["uncertainty"] = {"estimator": ..., <settings>,
"calibration": {output: {...}}}``; an ensemble checkpoint also carries every member's weights
in ``checkpoint["ensemble_state_dicts"]`` (its ``state_dict`` is member 0's, so
:func:`matgnn.checkpoints.files.load_model` still reads it as a single model). With a latent
distance (:mod:`matgnn.uncertainty.latent`: every crystal's ``ood_score``, and the std of the
``latent_distance`` estimator) it also carries ``checkpoint["latent_distance"]``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch_geometric.data import Batch

from matgnn.checkpoints.files import model_from_checkpoint, read_checkpoint
from matgnn.graphs.data import CrystalGraph
from matgnn.models.inference import Predictions, draw_graphs, predict
from matgnn.outputs import Output
from matgnn.uncertainty.calibration import check_conformal_request, check_interval
from matgnn.uncertainty.estimators import (
    Ensemble,
    Estimator,
    LatentDistanceEstimator,
    MCDropout,
    MeanVariance,
    check_distance_outputs,
)
from matgnn.uncertainty.latent import (
    DISTANCE_KEY,
    DISTANCE_STD_KEYS,
    LatentDistance,
    distance_std,
    fit_distance_std,
)


class UncertainModel:
    """An :class:`~matgnn.uncertainty.estimators.Estimator` and its calibration.

    Args:
        estimator: draws predictions.
        calibration: ``{output name: parameters}`` (:mod:`matgnn.uncertainty.calibration`);
            empty means uncalibrated.
        latent: the latent distance to the training set (:meth:`fit_latent`), which gives
            every prediction an ``ood_score``; the ``latent_distance`` estimator needs it.
        distance_std: ``{output: [{"std": c, "constant": a, "distance": b} per component]}``
            of the distance-aware std ``sqrt((c s)^2 + a^2 + (b d)^2)`` that replaces the
            estimator's std ``s`` (:func:`~matgnn.uncertainty.latent.distance_std`), fitted on
            the validation split by :meth:`calibrate`: always for the ``latent_distance``
            estimator, with ``distance_std=True`` for the others; empty: none.
    """

    def __init__(
        self,
        estimator: Estimator,
        calibration: Mapping[str, Mapping] | None = None,
        latent: LatentDistance | None = None,
        distance_std: Mapping[str, Sequence] | None = None,
    ):
        self.estimator = estimator
        self.calibration = {k: dict(v) for k, v in (calibration or {}).items()}
        self.latent = latent
        self.distance_std = {k: [dict(p) for p in v] for k, v in (distance_std or {}).items()}

    @property
    def outputs(self) -> tuple[Output, ...]:
        return self.estimator.outputs

    def graph_config(self):
        return self.estimator.graph_config()

    @property
    def provenance(self) -> dict[str, Any]:
        return getattr(self.estimator.model, "provenance", {})

    # --- prediction (the predictor protocol of matgnn.models.inference) -----------------
    def draws(self, batch: Batch) -> dict[str, torch.Tensor]:
        """Uncalibrated draws ``{output: [S, rows, ...]}`` of one batch; with a latent
        distance also ``{DISTANCE_KEY: [1, crystals]}``."""
        device = next(self.estimator.model.parameters()).device
        batch = batch.to(device)
        draws = self.estimator.draws(batch)
        if self.latent is not None:
            draws[DISTANCE_KEY] = self.latent.distances(self.estimator.models, batch)[None]
        return draws

    def ood_scores(self, draws: Mapping[str, np.ndarray]) -> np.ndarray | None:
        """Each crystal's latent distance in units of the median validation distance
        (``None`` without a fitted latent distance)."""
        if self.latent is None or self.latent.median is None:
            return None
        return self.latent.ood_scores(_distances(draws))

    def fit_latent(
        self,
        train: Sequence[CrystalGraph],
        neighbours: int = 5,
        max_reference: int = 20000,
        seed: int = 0,
        batch_size: int = 64,
    ) -> LatentDistance:
        """Keep the latent vectors of the training crystals ``train`` (the reference of
        every later distance); :meth:`calibrate` then sets the ood score's unit on the
        validation split."""
        self.latent = LatentDistance.fit(
            self.estimator.models, train, neighbours, max_reference, seed, batch_size
        )
        return self.latent

    def raw_draws(
        self, graphs: Sequence[CrystalGraph], batch_size: int = 64, progress: bool = False
    ) -> dict:
        """Uncalibrated draws ``{output: [S, rows, ...]}`` for ``graphs`` (a split: every one
        must be predicted), in order."""
        named = [(str(k), g) for k, g in enumerate(graphs)]
        _, draws, rejected = draw_graphs(self, named, batch_size, progress)
        if rejected:
            raise ValueError(f"cannot predict {len(rejected)} graphs: {rejected}")
        return draws

    def summarize(
        self, draws: Mapping[str, np.ndarray], calibrated: bool = True
    ) -> dict[str, dict[str, np.ndarray]]:
        """The summary of every output's draws, with or without the calibration applied."""
        return {
            o.name: o.calibrated(
                self._summary(o, draws), self.calibration.get(o.name) if calibrated else None
            )
            for o in self.outputs
        }

    def _summary(self, output: Output, draws: Mapping[str, np.ndarray]) -> dict:
        """One output's uncalibrated summary; with a distance-aware std (:attr:`distance_std`)
        the std is ``sqrt((c s)^2 + a^2 + (b d)^2)``, its aleatoric part
        ``sqrt((c s_aleatoric)^2 + a^2)`` and its epistemic part
        ``sqrt((c s_epistemic)^2 + (b d)^2)``."""
        summary = output.summarize_draws(draws[output.name])
        if self.estimator.name == LatentDistanceEstimator.name and not self.distance_std:
            raise ValueError(
                "latent_distance: the distance std is fitted on the validation split by "
                "calibrate(); this model has none"
            )
        parameters = self.distance_std.get(output.name)
        if parameters is None:
            return summary
        mean = np.asarray(summary["mean"])
        distance = _distances(draws)
        own_std = self.estimator.name != LatentDistanceEstimator.name
        # each part keeps its own terms: the total all three, the aleatoric part the floor
        parts = {"std": ("constant", "distance"), "aleatoric_std": ("constant",),
                 "epistemic_std": ("distance",)}  # fmt: skip
        width = int(np.prod(mean.shape[1:]))  # components per row (also with no row)
        # a component the estimator fixes (std 0, e.g. by symmetry) stays fixed
        spread = np.asarray(summary["std"]).reshape(len(mean), width) > 0
        out = dict(summary)
        for key, kept in parts.items():
            own = np.asarray(summary[key], dtype=float).reshape(len(mean), width)
            columns = []
            for j, fitted in enumerate(parameters):
                chosen = {k: fitted[k] if k in kept or k == "std" else 0.0 for k in fitted}
                value = distance_std(distance, chosen, own[:, j])
                columns.append(np.where(spread[:, j], value, 0.0) if own_std else value)
            out[key] = np.stack(columns, axis=1).reshape(mean.shape)
        return out

    def _fit_distance_std(self, graphs: Sequence[CrystalGraph], draws: Mapping) -> None:
        """Fit :attr:`distance_std` of every output on the validation ``graphs``."""
        distance = _distances(draws)
        own_std = self.estimator.name != LatentDistanceEstimator.name
        self.distance_std = {}
        for o in self.outputs:
            summary = o.summarize_draws(draws[o.name])
            mean = np.asarray(summary["mean"])
            residual = (targets(graphs, o).reshape(mean.shape) - mean).reshape(len(mean), -1)
            std = np.asarray(summary["std"]).reshape(len(mean), -1)
            fitted = []
            for j in range(residual.shape[1]):
                rows = std[:, j] > 0 if own_std else np.ones(len(mean), dtype=bool)
                if rows.sum() < 2:  # a component the estimator fixes: nothing to fit
                    fitted.append(dict.fromkeys(DISTANCE_STD_KEYS, 0.0))
                    continue
                own = std[rows, j] if own_std else None
                fitted.append(fit_distance_std(distance[rows], residual[rows, j], own))
            self.distance_std[o.name] = fitted

    def predict_graphs(
        self,
        graphs: Sequence[CrystalGraph],
        batch_size: int = 64,
        calibrated: bool = True,
        names: Sequence[str] | None = None,
        draws: dict | None = None,
    ) -> Predictions:
        """Predict graphs (named ``names``, default: their ``sample_id`` or position; ``draws``:
        their raw draws, when already computed)."""
        draws = draws if draws is not None else self.raw_draws(graphs, batch_size)
        if names is None:
            names = [getattr(g, "sample_id", k) for k, g in enumerate(graphs)]
        result = Predictions(
            outputs=self.outputs,
            names=[str(n) for n in names],
            draws=draws,
            summaries=self.summarize(draws, calibrated),
            atomic_numbers=[g.atomic_numbers.numpy() for g in graphs],
            ood_score=self.ood_scores(draws),
        )
        # a run's own splits: named in the table's unseen_elements column, not warned about
        result.check_elements((self.provenance or {}).get("elements"), graphs, warn=False)
        return result

    def predict(
        self, structures: Sequence[Any], names: Sequence[str] | None = None, batch_size: int = 64
    ) -> Predictions:
        """Build each input's graph and predict; invalid inputs are collected in ``rejected``
        (:func:`matgnn.models.inference.predict`, the loop every predictor shares)."""
        return predict(self, structures, names, batch_size)

    # --- calibration -------------------------------------------------------------------
    def calibrate(
        self,
        graphs: Sequence[CrystalGraph],
        batch_size: int = 64,
        draws: dict | None = None,
        coverage: float | None = None,
        interval: str = "normalized",
        distance_std: bool = False,
    ) -> dict:
        """Fit the calibration of every output on ``graphs`` (the validation split, with
        targets; ``draws``: their raw draws, when already computed) and keep it; returns the
        parameters. ``coverage``: also intervals of that nominal coverage for every output that
        supports them (regression; a task with none is refused), of kind ``interval``
        (:data:`~matgnn.uncertainty.calibration.INTERVALS`). ``distance_std``: first replace
        every std by a distance-aware one (:attr:`distance_std`; always for the
        ``latent_distance`` estimator), which needs :meth:`fit_latent` before."""
        if coverage is not None:
            check_conformal_request(coverage, self.outputs)
            check_interval(interval)
        if not graphs:
            raise ValueError(
                "calibration needs a validation split, and this one is empty (set a validation "
                "fraction, e.g. task.data.split.val > 0, or calibrate=false)"
            )
        draws = draws if draws is not None else self.raw_draws(graphs, batch_size)
        if self.latent is not None:
            self.latent.fit_scale(np.asarray(draws[DISTANCE_KEY])[0])
        self.distance_std = {}
        if distance_std or self.estimator.name == LatentDistanceEstimator.name:
            if self.latent is None:
                raise ValueError(
                    "a distance-aware std (latent_distance, or distance_std) needs the latent "
                    "distance: fit_latent on the training split first"
                )
            check_distance_outputs(self.outputs)
            self._fit_distance_std(graphs, draws)
        summaries = self.summarize(draws, calibrated=False)
        self.calibration = {}
        for o in self.outputs:
            if coverage is not None and o.supports_conformal:
                fitted = o.fit_calibration(
                    summaries[o.name], targets(graphs, o), coverage=coverage, interval=interval
                )
            else:  # the two-argument call an Output subclass may still override
                fitted = o.fit_calibration(summaries[o.name], targets(graphs, o))
            self.calibration[o.name] = fitted
        return self.calibration

    # --- checkpoint --------------------------------------------------------------------
    def settings(self) -> dict:
        settings = {**self.estimator.settings(), "calibration": self.calibration}
        if self.distance_std:
            settings["distance_std"] = self.distance_std
        return settings

    def save(self, checkpoint: Mapping[str, Any], path: str | Path) -> Path:
        """``checkpoint`` (member 0's, a dict) with this estimator and calibration, and for an
        ensemble every member's weights, saved to ``path``."""
        data = dict(checkpoint)
        data["uncertainty"] = self.settings()
        data.pop("latent_distance", None)
        if self.latent is not None:
            data["latent_distance"] = self.latent.state()
        if len(self.estimator.models) > 1:  # an ensemble: every member's weights
            data["ensemble_state_dicts"] = [
                {f"model.{k}": v for k, v in m.state_dict().items()} for m in self.estimator.models
            ]
        path = Path(path)
        torch.save(data, path)
        return path


def _distances(draws: Mapping[str, np.ndarray]) -> np.ndarray:
    """The latent distances among ``draws`` (none when no crystal was drawn)."""
    return np.asarray(draws.get(DISTANCE_KEY, np.empty((1, 0))), dtype=float)[0]


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
    latent = checkpoint.get("latent_distance")
    settings = checkpoint["uncertainty"]
    if settings.get("distance_std") and latent is None:
        raise ValueError(
            "this checkpoint has a distance-aware std but no latent_distance to measure it with"
        )
    return UncertainModel(
        estimator_from_checkpoint(checkpoint),
        settings.get("calibration"),
        LatentDistance.from_state(latent) if latent is not None else None,
        settings.get("distance_std"),
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
    if kind == "latent_distance":
        return LatentDistanceEstimator(models[0])
    raise ValueError(
        f"unknown uncertainty estimator {kind!r}: one of ensemble, mc_dropout, mean_variance, "
        "latent_distance"
    )


__all__ = [
    "UncertainModel",
    "build_estimator",
    "ensemble_from_checkpoints",
    "load_uncertain_model",
    "model_for_prediction",
]
