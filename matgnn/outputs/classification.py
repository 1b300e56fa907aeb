"""Classification output: binary or multi-class labels per crystal."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch.nn.functional as F
from torch import Tensor, nn

from matgnn.outputs.base import Output


def _cross_entropy(prediction: Tensor, target: Tensor, head: nn.Module) -> Tensor:
    return F.cross_entropy(prediction, target)


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
            "_target_": "matgnn.heads.ClassificationHead",
            "_partial_": True,
            "num_classes": self.num_classes,
            "hidden": list(template.get("hidden", [])),
            "activation": template.get("activation", "SiLU"),
            **({"dropout": template["dropout"]} if "dropout" in template else {}),
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
