"""Distance-aware uncertainty: how far a crystal lies from the training set in the model's own
latent space.

A crystal's latent vector is its backbone's scalar atom features, mean-pooled
(:meth:`~matgnn.models.CrystalModel.embed`). Each feature is standardised by its mean and std
over the training crystals, and the distance of a crystal is the mean Euclidean distance to
its ``k`` nearest training crystals (of an ensemble: the mean over the members, each in its
own space). Distances in a trained network's feature space track its error away from the
training data (Janet, Duan, Yang, Nandy & Kulik, Chem. Sci. 10, 7913 (2019), who turn it into a
calibrated std, as :func:`fit_distance_std` does).

* ``ood_score`` = distance / the median distance of the validation crystals: about 1 for a
  crystal like those the model was checked on; ``threshold`` (stored) is the validation
  split's 99th percentile in the same units, above which a crystal is flagged as unfamiliar
  (1% of the validation crystals are; new in-distribution crystals somewhat more, as the
  threshold is an estimate from the validation split).
* a distance-aware std (:func:`fit_distance_std`), ``sigma^2 = (c s)^2 + a^2 + (b d)^2`` per
  output component, with ``s`` the estimator's own std, ``c``, ``a`` and ``b`` fitted by the
  Gaussian NLL on the validation split: the ``latent_distance`` estimator (one deterministic
  model, ``s = 0``), or any estimator with ``uncertainty.distance_std=true``.

A training crystal is at distance 0 from itself, so with ``k = 1`` its distance is 0 (up to
the float32 rounding of the stored references).
At most ``max_reference`` training crystals are kept (a seeded random subset beyond that;
the number kept is stored), as float32, in the checkpoint's ``latent_distance``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from scipy.optimize import minimize
from torch import Tensor
from torch_geometric.data import Batch

from matgnn.graphs.data import CrystalGraph

#: the key of the distances among an :class:`~matgnn.uncertainty.UncertainModel`'s draws (not
#: an identifier, so no output can be named so)
DISTANCE_KEY = "latent distance"
#: the percentile of the validation ood scores stored as the flagging threshold
THRESHOLD_PERCENTILE = 99.0
#: query crystals per distance computation (bounds memory at chunk x reference floats)
CHUNK = 1024


def embeddings(models: Sequence, graphs: Sequence[CrystalGraph], batch_size: int = 64):
    """Every model's latent vectors of ``graphs``: a list of ``[M, F]`` float64 tensors."""
    out: list[list[Tensor]] = [[] for _ in models]
    for start in range(0, len(graphs), batch_size):
        batch = Batch.from_data_list(list(graphs[start : start + batch_size]))
        for k, model in enumerate(models):
            model.eval()
            out[k].append(model.embed(batch))
    return [torch.cat(chunks) for chunks in out]


def nearest_mean_distance(queries: Tensor, references: Tensor, k: int) -> Tensor:
    """Mean Euclidean distance of each query to its ``k`` nearest references.

    Shapes:
        queries ``[Q, F]``, references ``[R, F]`` -> ``[Q]`` (float64).
    """
    k = min(k, len(references))
    out = []
    for start in range(0, len(queries), CHUNK):
        block = torch.cdist(queries[start : start + CHUNK].double(), references.double())
        out.append(block.topk(k, dim=1, largest=False).values.mean(dim=1))
    return torch.cat(out) if out else torch.empty(0, dtype=torch.float64)


class LatentDistance:
    """The ``k``-nearest-neighbour distance of crystals to the training set, per model.

    Args:
        references: per model, the standardised training latent vectors ``[R, F]``.
        center: per model, the training mean of each feature ``[F]``.
        scale: per model, the training std of each feature ``[F]`` (1 for a constant one).
        neighbours: ``k``.
        median: the median validation distance (the unit of :meth:`ood_scores`); ``None``
            until :meth:`fit_scale`.
        threshold: the validation split's 99th percentile ood score.
        training_crystals: how many training crystals the references were drawn from.
    """

    def __init__(
        self,
        references: Sequence[Tensor],
        center: Sequence[Tensor],
        scale: Sequence[Tensor],
        neighbours: int = 5,
        median: float | None = None,
        threshold: float | None = None,
        training_crystals: int | None = None,
    ) -> None:
        if neighbours < 1:
            raise ValueError(f"latent distance needs neighbours >= 1, got {neighbours}")
        if not (len(references) == len(center) == len(scale)) or not references:
            raise ValueError("latent distance: one reference set, centre and scale per model")
        self.references = [r.float() for r in references]
        self.center = [c.double() for c in center]
        self.scale = [s.double() for s in scale]
        self.neighbours = int(neighbours)
        self.median = median
        self.threshold = threshold
        self.training_crystals = training_crystals or len(self.references[0])

    @classmethod
    def fit(
        cls,
        models: Sequence,
        train: Sequence[CrystalGraph],
        neighbours: int = 5,
        max_reference: int = 20000,
        seed: int = 0,
        batch_size: int = 64,
    ) -> LatentDistance:
        """References from the training crystals ``train`` (at most ``max_reference``, a
        seeded random subset), each feature standardised by its mean and std over the
        crystals kept."""
        if len(train) < 2:
            raise ValueError(
                f"latent distance needs at least 2 training crystals, got {len(train)}"
            )
        if len(train) > max_reference:
            keep = np.sort(np.random.default_rng(seed).permutation(len(train))[:max_reference])
            chosen = [train[int(i)] for i in keep]
        else:
            chosen = list(train)
        references, centers, scales = [], [], []
        for vectors in embeddings(models, chosen, batch_size):
            center = vectors.mean(dim=0)
            scale = vectors.std(dim=0)
            scale = torch.where(scale > 0, scale, torch.ones_like(scale))  # a constant feature
            centers.append(center)
            scales.append(scale)
            references.append((vectors - center) / scale)
        return cls(references, centers, scales, neighbours, training_crystals=len(train))

    def distances(self, models: Sequence, batch: Batch) -> Tensor:
        """The mean over models of each crystal's ``k``-nearest distance.

        Shapes:
            batch of B crystals -> ``[B]`` (float64).
        """
        if len(models) != len(self.references):
            raise ValueError(
                f"latent distance was fitted for {len(self.references)} models, got {len(models)}"
            )
        total = None
        for model, reference, center, scale in zip(
            models, self.references, self.center, self.scale, strict=True
        ):
            vectors = (model.embed(batch) - center) / scale
            d = nearest_mean_distance(vectors, reference, self.neighbours)
            total = d if total is None else total + d
        return total / len(models)

    def fit_scale(self, validation_distances: np.ndarray) -> None:
        """Set the unit of :meth:`ood_scores` (the median validation distance) and the
        threshold (their 99th percentile, in that unit)."""
        d = np.asarray(validation_distances, dtype=float)
        if d.size == 0:
            raise ValueError(
                "latent distance: the ood score is scaled on the validation split, which is empty"
            )
        median = float(np.median(d))
        if not median > 0:
            raise ValueError(
                f"latent distance: the median validation distance is {median} (every validation "
                "crystal is also a training crystal?)"
            )
        self.median = median
        self.threshold = float(np.percentile(d, THRESHOLD_PERCENTILE) / median)

    def ood_scores(self, distances: np.ndarray) -> np.ndarray:
        """Distances in units of the median validation distance."""
        if self.median is None:
            raise ValueError("latent distance: fit_scale on the validation split first")
        return np.asarray(distances, dtype=float) / self.median

    # --- checkpoint ----------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """What a checkpoint stores (``checkpoint["latent_distance"]``): plain values and
        tensors only."""
        return {
            "neighbours": self.neighbours,
            "median": self.median,
            "threshold": self.threshold,
            "training_crystals": self.training_crystals,
            "references": [r.contiguous() for r in self.references],
            "center": list(self.center),
            "scale": list(self.scale),
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> LatentDistance:
        return cls(
            state["references"],
            state["center"],
            state["scale"],
            int(state["neighbours"]),
            state.get("median"),
            state.get("threshold"),
            state.get("training_crystals"),
        )


#: the parameters of a distance-aware std, per output component
DISTANCE_STD_KEYS = ("std", "constant", "distance")


def distance_std(distance, parameters: Mapping[str, float], std=0.0) -> np.ndarray:
    """``sqrt((c std)^2 + a^2 + (b d)^2)`` with ``parameters`` ``{"std": c, "constant": a,
    "distance": b}``: the estimator's own ``std`` (0 for one deterministic model) rescaled,
    plus a floor and a part growing with the latent ``distance``."""
    c, a, b = (float(parameters[k]) for k in DISTANCE_STD_KEYS)
    d, std = np.asarray(distance, dtype=float), np.asarray(std, dtype=float)
    return np.sqrt((c * std) ** 2 + a**2 + (b * d) ** 2)


def _nll(log_params: np.ndarray, distance, residual, std) -> float:
    c, a, b = np.exp(log_params) if std is not None else (0.0, *np.exp(log_params))
    variance = (0.0 if std is None else (c * std) ** 2) + a**2 + (b * distance) ** 2
    return float(np.mean(0.5 * np.log(2 * np.pi * variance) + residual**2 / (2 * variance)))


def fit_distance_std(distance, residual, std=None) -> dict[str, float]:
    """The parameters of :func:`distance_std` minimising the Gaussian NLL of the ``residual``
    (target - mean) of crystals at latent ``distance`` with the estimator's ``std`` (all
    ``[M]``; ``std=None``: one deterministic model, whose ``c`` is 0)."""
    distance = np.asarray(distance, dtype=float).reshape(-1)
    residual = np.asarray(residual, dtype=float).reshape(-1)
    if len(distance) < 2:
        raise ValueError(
            f"a distance std needs at least 2 validation crystals, got {len(distance)}"
        )
    spread = float(np.sqrt(np.mean(residual**2))) or 1e-12
    typical = float(np.median(distance)) or 1.0
    start = [spread / np.sqrt(2), spread / (np.sqrt(2) * typical)]
    if std is not None:
        std = np.asarray(std, dtype=float).reshape(-1)
        start = [spread / (np.sqrt(3) * (float(np.sqrt(np.mean(std**2))) or 1.0)), *start]
        start[1:] = [v * np.sqrt(2 / 3) for v in start[1:]]
    result = minimize(_nll, np.log(start), args=(distance, residual, std), method="Nelder-Mead",
                      options={"xatol": 1e-6, "fatol": 1e-10, "maxiter": 4000})  # fmt: skip
    values = np.exp(result.x)
    if not (result.success and np.isfinite(result.fun) and np.isfinite(values).all()):
        raise ValueError(f"the distance-aware std did not converge: {result.message}")
    c, a, b = values if std is not None else (0.0, *values)
    return {"std": float(c), "constant": float(a), "distance": float(b)}
