"""``Output``: what a model predicts for one named target, and how that target is stored,
trained, scored and reported.

A task declares its outputs (``matgnn/configs/task/*.yaml``, ``outputs:``); the trainer, the data
module, ``predict`` and the checkpoint read everything kind-specific from them, so a new kind of
target is a new ``Output`` subclass and no ``if`` in the trainer (after schnetpack's
``ModelOutput``). Outputs are frozen dataclasses of plain values: :meth:`Output.to_config`
gives them as registry data, which is how a checkpoint carries them.
"""

from __future__ import annotations

import dataclasses
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor, nn

LEVELS = ("crystal", "atom")


@dataclass(frozen=True)
class Output(ABC):
    """One named model output.

    Args:
        name: identifier of the output: the key of its head in ``CrystalModel.heads``, the
            prefix of its metrics (``val_<name>_mae``) and its columns in prediction files
            (default: ``target`` made an identifier, ``"log10(G_VRH)"`` -> ``log10_G_VRH``).
        target: the column of the data source it is trained on (default: ``name``).
        loss: loss name, one of the subclass's :attr:`losses`.
        weight: weight of this output's loss in the total loss.
        units: physical units of the target (plots, model cards).
    """

    name: str | None = None
    target: str | None = None
    loss: str = "mae"
    weight: float = 1.0
    units: str = ""

    #: ``"crystal"`` (one value per crystal, stored ``[1, ...]`` on a graph) or ``"atom"`` (one
    #: per atom, stored ``[N, ...]``).
    level: ClassVar[str] = "crystal"
    #: loss name -> ``f(prediction, target, head)``.
    losses: ClassVar[Mapping[str, Callable[[Tensor, Tensor, nn.Module], Tensor]]] = {}
    #: dtype of the stored target: ``"float"`` (the default float dtype) or ``"long"``.
    target_dtype: ClassVar[str] = "float"

    def __post_init__(self) -> None:
        if self.name is None and self.target is None:
            raise ValueError("an output needs a name or a target")
        if self.name is None:
            object.__setattr__(self, "name", re.sub(r"\W+", "_", str(self.target)).strip("_"))
        if not self.name or not self.name.replace("_", "a").isalnum():
            raise ValueError(
                f"output name {self.name!r} must be a non-empty identifier (letters, digits, _)"
            )
        if self.target is None:
            object.__setattr__(self, "target", self.name)
        if self.loss not in self.losses:
            raise ValueError(
                f"output {self.name!r}: loss must be one of {sorted(self.losses)}, "
                f"got {self.loss!r}"
            )
        if not float(self.weight) >= 0:
            raise ValueError(f"output {self.name!r}: weight must be >= 0, got {self.weight}")

    # --- configuration -----------------------------------------------------------------
    def to_config(self) -> dict[str, Any]:
        """``{"@class": <registered name>, **fields}``: the output as data, as a checkpoint
        stores it (:mod:`matgnn.checkpoints.safe_config` rebuilds it)."""
        from matgnn.checkpoints.safe_config import object_node

        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        values = {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}
        return object_node(type(self), **values)

    @property
    def key(self) -> str:
        """Field of ``CrystalGraph`` that holds this output's target."""
        return f"target_{self.name}"

    # --- data --------------------------------------------------------------------------
    @property
    def value_shape(self) -> tuple[int, ...]:
        """Shape of one crystal's (or one atom's) value; ``()`` for a scalar."""
        return ()

    def target_problem(self, value: Any, num_atoms: int | None = None) -> str | None:
        """Why ``value`` cannot be a target of this output (wrong shape, NaN), else ``None``.
        ``num_atoms`` is given once the structure is read (needed by per-atom targets)."""
        array = np.asarray(value, dtype=float)
        expected = self.value_shape
        if self.level == "atom":
            if num_atoms is not None and array.shape != (num_atoms, *expected):
                return (
                    f"{self.name}: per-atom target of shape {array.shape}, expected "
                    f"{(num_atoms, *expected)} for {num_atoms} atoms"
                )
        elif array.shape != expected:
            return f"{self.name}: target of shape {array.shape}, expected {expected}"
        if not np.isfinite(array).all():
            return f"{self.name}: target is {np.asarray(value).tolist()} (not finite)"
        return None

    def target_tensor(self, value: Any) -> Tensor:
        """One crystal's target as stored on its graph: ``[1, *shape]`` or ``[N, *shape]``."""
        dtype = torch.long if self.target_dtype == "long" else torch.get_default_dtype()
        array = np.asarray(value)
        tensor = torch.as_tensor(array.astype(np.int64) if dtype == torch.long else array)
        tensor = tensor.to(dtype)
        return tensor if self.level == "atom" else tensor.reshape(1, *self.value_shape)

    # --- model -------------------------------------------------------------------------
    @property
    def irreps(self) -> str | None:
        """The irreps (beyond scalars) that this output's head needs from an equivariant
        backbone, which ``matgnn.train`` adds to ``model.backbone.irreps_out`` (``None``: none)."""
        return None

    @abstractmethod
    def head_config(self, template: Mapping[str, Any]) -> dict[str, Any]:
        """Config (registry data, :mod:`matgnn.checkpoints.safe_config`) of this output's
        default head. ``template`` is the model's own regression head (``model.heads.y``, as
        registry data): its hidden widths and activation carry over."""

    def fit(self, head: nn.Module, targets: Tensor, compositions: Tensor) -> None:  # noqa: B027
        """Fit the head's target normalisation on the training targets (default: nothing).

        Shapes:
            targets ``[M, *shape]`` (crystal level) or ``[sum N, *shape]`` (atom level);
            compositions ``[M, 119]`` atom counts per element.
        """

    def present(self, raw: Tensor) -> Tensor:
        """The model's raw output as reported (probabilities for a classifier)."""
        return raw

    # --- training ----------------------------------------------------------------------
    def compute_loss(self, prediction: Tensor, target: Tensor, head: nn.Module) -> Tensor:
        return self.losses[self.loss](prediction, target, head)

    @abstractmethod
    def metrics(self) -> dict[str, Any]:
        """Fresh ``torchmetrics`` metrics by name (logged as ``<stage>_<name>_<metric>``)."""

    def metric_inputs(self, prediction: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
        """What the metrics are updated with (default: the prediction and target as they are)."""
        return prediction, target

    # --- reporting ---------------------------------------------------------------------
    def baselines(self, train: Tensor, test: Tensor) -> dict[str, float]:
        """Test metrics of trivial predictors fitted on the training targets, the floor a
        model must beat (default: none)."""
        return {}

    def columns(self) -> list[str]:
        """Names of the value columns (``name`` for a scalar, ``name_<i>``, ``name_xx``...)."""
        return [self.name]

    def target_values(self, target: np.ndarray) -> list[float]:
        return np.asarray(target, dtype=float).reshape(-1).tolist()

    def prediction_columns(self) -> list[str]:
        return [f"predicted_{c}" for c in self.columns()]

    def prediction_values(self, prediction: np.ndarray) -> list[float]:
        """One crystal's (or atom's) presented prediction as CSV values."""
        return np.asarray(prediction, dtype=float).reshape(-1).tolist()

    # --- uncertainty (matgnn.uncertainty) ------------------------------------------------
    # Draws are what an estimator gives, ``[S, rows, ...]`` (S models or passes, presented);
    # the default is regression of any shape (scalars, spectra, tensors); a classifier
    # overrides all of it (ClassOutput).

    #: the head also predicts a variance: presented draws end in (mean, std) (GaussianOutput)
    predicts_variance: ClassVar[bool] = False
    #: the summary fields, in the order of their columns
    summary_fields: ClassVar[tuple[str, ...]] = ("mean", "std", "aleatoric_std", "epistemic_std")

    def summarize_draws(self, draws: np.ndarray) -> dict[str, np.ndarray]:
        """Mean, total std and its aleatoric and epistemic parts over the draws
        (:func:`matgnn.uncertainty.summary.regression_summary`)."""
        from matgnn.uncertainty.summary import regression_summary

        draws = np.asarray(draws, dtype=float)
        if self.predicts_variance:
            return regression_summary(draws[..., 0], draws[..., 1] ** 2)
        return regression_summary(draws, np.zeros_like(draws))

    #: :meth:`fit_calibration` can add split-conformal intervals (regression outputs)
    supports_conformal: ClassVar[bool] = True

    def fit_calibration(
        self,
        summary: Mapping[str, np.ndarray],
        target: np.ndarray,
        coverage: float | None = None,
        interval: str = "normalized",
    ) -> dict:
        """The calibration fitted on a validation summary: std scaling, and with ``coverage``
        also intervals of that coverage on the scaled std, of kind ``interval``: split-conformal
        ``normalized`` (:func:`~matgnn.uncertainty.calibration.conformal_half_width`) or
        ``quantile`` (:func:`~matgnn.uncertainty.calibration.quantile_margin`), or
        ``isotonic`` (:func:`~matgnn.uncertainty.calibration.isotonic_bounds`)."""
        from matgnn.uncertainty import calibration as cal

        scale = cal.fit_std_scale(summary["mean"], summary["std"], target)
        parameters: dict = {"std_scale": scale}
        if coverage is None:
            return parameters
        cal.check_interval(interval)
        mean, std, c = summary["mean"], np.asarray(summary["std"]) * scale, float(coverage)
        if interval == "isotonic":
            low, high, n = cal.isotonic_bounds(mean, std, target, c)
            parameters["isotonic"] = {"coverage": c, "z_lower": low, "z_upper": high, "values": n}
            return parameters
        fit = cal.conformal_half_width if interval == "normalized" else cal.quantile_margin
        half_width, n = fit(mean, std, target, c)
        parameters["conformal"] = {"coverage": c, "kind": interval, "half_width": half_width,
                                   "scores": n}  # fmt: skip
        return parameters

    def calibrated(
        self, summary: Mapping[str, np.ndarray], parameters: Mapping | None
    ) -> dict[str, np.ndarray]:
        """``summary`` with the calibration applied: every std scaled, and with intervals
        ``lower``/``upper``: mean -+ half_width x std (``normalized`` conformal), mean -+
        (z std + margin) (``quantile``), mean + z_lower std .. mean + z_upper std
        (``isotonic``); a component with std 0 gets the point ``mean`` as its interval."""
        if not parameters:
            return dict(summary)
        scale = parameters["std_scale"]
        out = {k: v * scale if k.endswith("std") else v for k, v in summary.items()}
        mean, std = np.asarray(out["mean"]), np.asarray(out["std"])
        conformal, isotonic = parameters.get("conformal"), parameters.get("isotonic")
        if conformal and conformal.get("kind", "normalized") == "normalized":
            width = conformal["half_width"] * std
            out["lower"], out["upper"] = mean - width, mean + width
        elif conformal:  # conformalised quantiles: an additive margin on the Gaussian band
            from matgnn.uncertainty.calibration import normal_quantile

            band = normal_quantile(conformal["coverage"]) * std + conformal["half_width"]
            band = np.where(std > 0, np.maximum(band, 0.0), 0.0)  # a negative margin: >= 0
            out["lower"], out["upper"] = mean - band, mean + band
        elif isotonic:
            out["lower"] = mean + isotonic["z_lower"] * std
            out["upper"] = mean + isotonic["z_upper"] * std
        return out

    def uncertainty_metrics(
        self, summary: Mapping[str, np.ndarray], target: np.ndarray
    ) -> dict[str, float]:
        """How good the summary is against the targets (coverage, NLL, error-std rank...)."""
        from matgnn.uncertainty.evaluation import interval_metrics, regression_metrics

        metrics = regression_metrics(summary["mean"], summary["std"], target)
        if "lower" in summary:
            metrics.update(
                interval_metrics(summary["lower"], summary["upper"], target, summary["std"])
            )
        return metrics

    def calibration_plot(
        self, curves: Mapping[str, tuple[Mapping[str, np.ndarray], np.ndarray]], path: Path
    ) -> Path:
        """A calibration plot (PNG) of ``{state: (summary, target)}``."""
        from matgnn.uncertainty.evaluation import regression_calibration_plot

        data = {state: (s["mean"], s["std"], t) for state, (s, t) in curves.items()}
        return regression_calibration_plot(data, path, f"{self.name} (test)")

    def uncertainty_columns(self, summary: Mapping[str, np.ndarray]) -> dict[str, list]:
        """Named columns of a summary, one value per row: ``predicted_<column>`` (the mean)
        and ``<field>_<column>`` for the stds."""
        columns = {}
        fields = [*self.summary_fields, *(k for k in ("lower", "upper") if k in summary)]
        for key in fields:
            prefix = "predicted" if key == "mean" else key
            values = np.asarray(summary[key]).reshape(len(summary[key]), -1)
            for j, name in enumerate(self.columns()):
                columns[f"{prefix}_{name}"] = values[:, j].tolist()
        return columns

    def plot(  # noqa: B027
        self,
        ids: Sequence[str],
        targets: np.ndarray,
        predictions: np.ndarray,
        directory: Path,
        prefix: str,
    ) -> None:
        """Write this output's test plots (PNG) into ``directory`` (default: none)."""
