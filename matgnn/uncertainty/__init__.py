"""Predictive uncertainty for every model and task: estimators (deep ensembles, MC dropout,
mean-variance heads), calibration on the validation split (std scaling, temperature), and
evaluation (uncertainty-toolbox metrics, coverage, error-std rank correlation, plots).

Train with ``python -m matgnn.train ... uncertainty=<ensemble|mc_dropout|mean_variance>``; the
run's ``checkpoints/best.ckpt`` then carries the estimator and its calibration, read by
:func:`load_uncertain_model` and ``matgnn-predict``.
"""

from matgnn.uncertainty.estimators import Ensemble, Estimator, MCDropout, MeanVariance
from matgnn.uncertainty.model import (
    UncertainModel,
    build_estimator,
    ensemble_from_checkpoints,
    load_uncertain_model,
)
from matgnn.uncertainty.summary import summarize

__all__ = [
    "Ensemble",
    "Estimator",
    "MCDropout",
    "MeanVariance",
    "UncertainModel",
    "build_estimator",
    "ensemble_from_checkpoints",
    "load_uncertain_model",
    "summarize",
]
