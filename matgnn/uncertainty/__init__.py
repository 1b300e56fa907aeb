"""Predictive uncertainty for every model and task: estimators (deep ensembles, MC dropout,
mean-variance heads, latent distance), calibration on the validation split (std scaling,
temperature, split-conformal / conformalised-quantile / isotonic intervals), an
out-of-distribution score from the model's latent space, and evaluation (uncertainty-toolbox
metrics, coverage, error rankings, plots).

Train with ``python -m matgnn.train ... uncertainty=<ensemble|mc_dropout|mean_variance|
latent_distance>``; the run's ``checkpoints/best.ckpt`` then carries the estimator, its
calibration and the latent distance, read by :func:`load_uncertain_model` and
``matgnn-predict``.
"""

from matgnn.uncertainty.estimators import (
    Ensemble,
    Estimator,
    LatentDistanceEstimator,
    MCDropout,
    MeanVariance,
)
from matgnn.uncertainty.latent import LatentDistance
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
    "LatentDistance",
    "LatentDistanceEstimator",
    "MCDropout",
    "MeanVariance",
    "UncertainModel",
    "build_estimator",
    "ensemble_from_checkpoints",
    "load_uncertain_model",
    "summarize",
]
