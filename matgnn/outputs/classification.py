"""Classification output: binary or multi-class labels per crystal."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch.nn.functional as F
from torch import Tensor, nn

from matgnn.checkpoints.registry import register
from matgnn.checkpoints.safe_config import CLASS, PARTIAL
from matgnn.outputs.base import Output


def _cross_entropy(prediction: Tensor, target: Tensor, head: nn.Module) -> Tensor:
    return F.cross_entropy(prediction, target)


@register("class_output")
@dataclass(frozen=True)
class ClassOutput(Output):
    """An integer label ``0 .. num_classes - 1`` per crystal, from a
    :class:`~matgnn.heads.ClassificationHead` (logits).

    Loss: cross-entropy on the logits. Reported: the probabilities (softmax), the most probable
    label, and per-class probability columns ``probability_<name>_<class>``. Metrics: accuracy,
    ROC-AUC and F1, binary (on the probability of class 1) for two classes, macro-averaged
    one-vs-rest for more.

    Args:
        num_classes: number of classes (>= 2).
        classes: optional class names, in label order (column names of the probabilities).
    """

    loss: str = "cross_entropy"
    num_classes: int = 2
    classes: tuple[str, ...] = ()

    losses: ClassVar = {"cross_entropy": _cross_entropy}
    target_dtype: ClassVar[str] = "long"

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "classes", tuple(str(c) for c in self.classes))
        if self.num_classes < 2:
            raise ValueError(f"output {self.name!r}: num_classes must be >= 2")
        if self.classes and len(self.classes) != self.num_classes:
            raise ValueError(
                f"output {self.name!r}: {len(self.classes)} class names for "
                f"{self.num_classes} classes"
            )

    def target_problem(self, value: Any, num_atoms: int | None = None) -> str | None:
        problem = super().target_problem(value, num_atoms)
        if problem:
            return problem
        label = float(np.asarray(value, dtype=float))
        if label != int(label) or not 0 <= label < self.num_classes:
            return f"{self.name}: label {label:g} is not one of 0..{self.num_classes - 1}"
        return None

    def head_config(self, template: Mapping[str, Any]) -> dict[str, Any]:
        return {
            CLASS: "classification_head",
            PARTIAL: True,
            "num_classes": self.num_classes,
            "hidden": list(template.get("hidden", [])),
            "activation": template.get("activation", "SiLU"),
            **{k: template[k] for k in ("dropout", "activate_input") if k in template},
        }

    def present(self, raw: Tensor) -> Tensor:
        return raw.softmax(-1)

    def metrics(self) -> dict[str, Any]:
        import torchmetrics  # imported when training, not by load_model (it imports pyplot)

        if self.num_classes == 2:
            kwargs: dict[str, Any] = {"task": "binary"}
        else:
            kwargs = {"task": "multiclass", "num_classes": self.num_classes, "average": "macro"}
        return {
            "accuracy": torchmetrics.Accuracy(**kwargs),
            "roc_auc": torchmetrics.AUROC(**kwargs),
            "f1": torchmetrics.F1Score(**kwargs),
        }

    def metric_inputs(self, prediction: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
        probability = prediction.softmax(-1)
        return (probability[:, 1] if self.num_classes == 2 else probability), target

    def class_names(self) -> list[str]:
        return list(self.classes) or [str(k) for k in range(self.num_classes)]

    def prediction_columns(self) -> list[str]:
        return [
            f"predicted_{self.name}",
            *(f"probability_{self.name}_{c}" for c in self.class_names()),
        ]

    def prediction_values(self, prediction: np.ndarray) -> list[float]:
        probability = np.asarray(prediction, dtype=float).reshape(-1)
        return [int(probability.argmax()), *probability.tolist()]

    def target_values(self, target: np.ndarray) -> list[float]:
        return [int(np.asarray(target).reshape(-1)[0])]

    # --- uncertainty: probabilities, entropy and mutual information -------------------------
    summary_fields: ClassVar[tuple[str, ...]] = ("probability", "entropy", "mutual_information")

    def summarize_draws(self, draws: np.ndarray) -> dict[str, np.ndarray]:
        """Mean probability, its entropy and the mutual information of the draws
        (:func:`matgnn.uncertainty.summary.class_summary`)."""
        from matgnn.uncertainty.summary import class_summary

        return class_summary(np.asarray(draws, dtype=float))

    #: conformal prediction sets are not implemented for classes (temperature scaling only)
    supports_conformal: ClassVar[bool] = False

    def fit_calibration(
        self, summary: Mapping[str, np.ndarray], target: np.ndarray, coverage: float | None = None
    ) -> dict:
        """Temperature scaling of the mean probabilities (``coverage`` is not used: no
        conformal sets for classes)."""
        from matgnn.uncertainty.calibration import fit_temperature

        labels = np.asarray(target).reshape(-1)
        return {"temperature": fit_temperature(summary["probability"], labels)}

    def calibrated(
        self, summary: Mapping[str, np.ndarray], parameters: Mapping | None
    ) -> dict[str, np.ndarray]:
        """Probabilities tempered, their entropy recomputed (the mutual information stays
        that of the draws)."""
        if not parameters:
            return dict(summary)
        from matgnn.uncertainty.calibration import temper
        from matgnn.uncertainty.summary import entropy

        probability = temper(summary["probability"], parameters["temperature"])
        return {**summary, "probability": probability, "entropy": entropy(probability)}

    def uncertainty_metrics(
        self, summary: Mapping[str, np.ndarray], target: np.ndarray
    ) -> dict[str, float]:
        from matgnn.uncertainty.evaluation import classification_metrics

        return classification_metrics(
            summary["probability"], summary["entropy"], summary["mutual_information"], target
        )

    def calibration_plot(
        self, curves: Mapping[str, tuple[Mapping[str, np.ndarray], np.ndarray]], path: Path
    ) -> Path:
        """A reliability diagram (PNG) of ``{state: (summary, target)}``."""
        from matgnn.uncertainty.evaluation import reliability_plot

        data = {state: (s["probability"], t) for state, (s, t) in curves.items()}
        return reliability_plot(data, path, f"{self.name} (test)")

    def uncertainty_columns(self, summary: Mapping[str, np.ndarray]) -> dict[str, list]:
        """``predicted_<name>`` (the most probable class), ``probability_<name>_<class>``,
        ``entropy_<name>``, ``mutual_information_<name>``."""
        probability = summary["probability"]
        columns: dict[str, list] = {f"predicted_{self.name}": probability.argmax(-1).tolist()}
        for c, cls in enumerate(self.class_names()):
            columns[f"probability_{self.name}_{cls}"] = probability[:, c].tolist()
        columns[f"entropy_{self.name}"] = summary["entropy"].tolist()
        columns[f"mutual_information_{self.name}"] = summary["mutual_information"].tolist()
        return columns
