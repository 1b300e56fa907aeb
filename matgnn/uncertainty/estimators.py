"""Estimators: several predictions of the same batch, whose spread is the epistemic uncertainty.

* :class:`MeanVariance`: one deterministic pass of a model whose scalar outputs carry their own
  variance (:class:`~matgnn.outputs.GaussianOutput`): aleatoric only.
* :class:`MCDropout`: ``passes`` forward passes of one model with its dropout layers sampling
  (Gal & Ghahramani, ICML 2016); batch norm stays in eval mode.
* :class:`Ensemble`: one pass of each of ``k`` independently trained models
  (Lakshminarayanan et al., NeurIPS 2017).
* :class:`LatentDistanceEstimator`: one deterministic pass of a plain model; its std comes from
  the crystal's distance to the training set in the model's latent space
  (:mod:`matgnn.uncertainty.latent`), not from the draws.

Each returns, per output, the stacked *presented* predictions ``[S, rows, ...]`` of a batch
(probabilities for classifiers, (mean, std) for Gaussian outputs); :mod:`.summary` turns them
into means, stds, entropies and mutual information.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import torch
from e3nn.nn import Dropout as IrrepDropout
from torch import Tensor, nn
from torch_geometric.data import Batch

from matgnn.models import CrystalModel
from matgnn.outputs import Output

DROPOUT_TYPES = (nn.modules.dropout._DropoutNd, IrrepDropout)


class Estimator(ABC):
    """Draws ``[S, rows, ...]`` per output for a batch from one or several models.

    Args:
        models: the model(s); all share one graph config and one set of outputs.
    """

    #: the name stored in a checkpoint's ``uncertainty.estimator``
    name: str = ""

    def __init__(self, models: Sequence[CrystalModel]) -> None:
        if not models:
            raise ValueError(f"{type(self).__name__} needs at least one model")
        self.models = list(models)
        check_compatible(self.models)

    @property
    def model(self) -> CrystalModel:
        return self.models[0]

    @property
    def outputs(self) -> tuple[Output, ...]:
        return self.model.outputs

    def graph_config(self):
        return self.model.graph_config()

    def settings(self) -> dict:
        """What a checkpoint stores to rebuild this estimator (besides the weights)."""
        return {"estimator": self.name}

    @abstractmethod
    def draws(self, batch: Batch) -> dict[str, Tensor]: ...

    @staticmethod
    def _presented(model: CrystalModel, batch: Batch) -> dict[str, Tensor]:
        out = model(batch)
        return {o.name: o.present(out[o.name]).detach().double().cpu() for o in model.outputs}

    def _stack(self, runs: list[dict[str, Tensor]]) -> dict[str, Tensor]:
        return {o.name: torch.stack([r[o.name] for r in runs]) for o in self.outputs}


class MeanVariance(Estimator):
    """One deterministic pass; the std of every :class:`GaussianOutput` is its aleatoric part
    and there is no epistemic part."""

    name = "mean_variance"

    def __init__(self, model: CrystalModel) -> None:
        super().__init__([model])
        if not any(o.predicts_variance for o in model.outputs):
            raise ValueError(
                "mean_variance needs a model trained with a variance head (GaussianOutput; "
                "train with uncertainty=mean_variance); this model's outputs are "
                f"{[type(o).__name__ for o in model.outputs]}"
            )

    @torch.no_grad()
    def draws(self, batch: Batch) -> dict[str, Tensor]:
        self.model.eval()
        return self._stack([self._presented(self.model, batch)])


class LatentDistanceEstimator(Estimator):
    """One deterministic pass of a plain model; :class:`~matgnn.uncertainty.UncertainModel`
    turns the latent distance of each crystal into its std
    (:func:`matgnn.uncertainty.latent.fit_distance_std`). Crystal-level regression outputs
    only."""

    name = "latent_distance"

    def __init__(self, model: CrystalModel) -> None:
        super().__init__([model])
        check_latent_outputs(model.outputs)

    @torch.no_grad()
    def draws(self, batch: Batch) -> dict[str, Tensor]:
        self.model.eval()
        return self._stack([self._presented(self.model, batch)])


def check_distance_outputs(outputs: Sequence[Output]) -> None:
    """Refuse, in words, outputs that cannot take a distance-aware std: per-atom outputs and
    classes (the latent distance is one per crystal)."""
    refused = [o.name for o in outputs if o.level != "crystal" or not o.supports_conformal]
    if refused:
        raise ValueError(
            f"a distance-aware std is one per crystal, for regression outputs; outputs "
            f"{refused} are per atom or classes"
        )


def check_latent_outputs(outputs: Sequence[Output]) -> None:
    """Refuse, in words, outputs that the ``latent_distance`` estimator cannot give a std."""
    refused = [
        o.name
        for o in outputs
        if o.level != "crystal" or not o.supports_conformal or o.predicts_variance
    ]
    if refused:
        raise ValueError(
            f"latent_distance gives a std per crystal to plain regression outputs; outputs "
            f"{refused} are per atom, classes or carry their own variance (use "
            "uncertainty=ensemble, mc_dropout or mean_variance)"
        )


def dropout_layers(model: nn.Module) -> list[nn.Module]:
    """The dropout layers of ``model`` whose probability is above zero."""
    return [m for m in model.modules() if isinstance(m, DROPOUT_TYPES) and m.p > 0]


class MCDropout(Estimator):
    """``passes`` stochastic passes of one model, dropout on, everything else in eval mode.

    Args:
        model: a model with at least one dropout layer of probability > 0.
        passes: number of stochastic passes T (>= 2).
        seed: seed of the dropout masks (the same inputs give the same draws).
    """

    name = "mc_dropout"

    def __init__(self, model: CrystalModel, passes: int = 30, seed: int = 0) -> None:
        super().__init__([model])
        if passes < 2:
            raise ValueError(f"mc_dropout needs passes >= 2, got {passes}")
        if not dropout_layers(model):
            raise ValueError(
                "mc_dropout needs a model with dropout, but every dropout probability of this "
                f"{type(model.backbone).__name__} model is 0: train it with "
                "uncertainty=mc_dropout (or model.backbone.dropout=0.1)"
            )
        self.passes = int(passes)
        self.seed = int(seed)

    def settings(self) -> dict:
        return {"estimator": self.name, "passes": self.passes, "seed": self.seed}

    @torch.no_grad()
    def draws(self, batch: Batch) -> dict[str, Tensor]:
        self.model.eval()
        layers = dropout_layers(self.model)
        for layer in layers:
            layer.train()
        generator_state = torch.random.get_rng_state()
        torch.manual_seed(self.seed)
        try:
            runs = [self._presented(self.model, batch) for _ in range(self.passes)]
        finally:
            torch.random.set_rng_state(generator_state)
            for layer in layers:
                layer.eval()
        return self._stack(runs)


class Ensemble(Estimator):
    """One pass of each member (all in eval mode).

    Args:
        models: two or more models trained on the same task with the same graph config.
    """

    name = "ensemble"

    def __init__(self, models: Sequence[CrystalModel]) -> None:
        if len(models) < 2:
            raise ValueError(f"an ensemble needs at least 2 models, got {len(models)}")
        super().__init__(models)

    def settings(self) -> dict:
        return {"estimator": self.name, "members": len(self.models)}

    @torch.no_grad()
    def draws(self, batch: Batch) -> dict[str, Tensor]:
        for model in self.models:
            model.eval()
        return self._stack([self._presented(m, batch) for m in self.models])


def check_compatible(models: Sequence[CrystalModel]) -> None:
    """Refuse, in words, models that do not predict the same outputs from the same graphs."""
    first = models[0]
    outputs = [o.to_config() for o in first.outputs]
    for k, model in enumerate(models[1:], start=1):
        if model.graph_fingerprint != first.graph_fingerprint:
            differences = first.graph.described_differences(model.graph)
            raise ValueError(
                f"model {k} was built for another graph config than model 0 ({differences}): "
                "an ensemble needs one graph config"
            )
        theirs = [o.to_config() for o in model.outputs]
        if theirs != outputs:
            raise ValueError(
                f"model {k} predicts other outputs than model 0 ({theirs} vs {outputs}): "
                "an ensemble needs one task"
            )
