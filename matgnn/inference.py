"""Predict with a model: structures in, every declared output out, bad inputs reported.

Imports no model class (the model is used through ``graph_config()``, ``outputs`` and
``__call__``), so :mod:`matgnn.models` can use it without an import cycle.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch_geometric.data import Batch

from matgnn.graphs import build_graph
from matgnn.graphs.data import CrystalGraph
from matgnn.graphs.elements import describe_unseen, unseen_elements
from matgnn.graphs.structures import StructureLike
from matgnn.outputs import Output, write_prediction_tables

log = logging.getLogger(__name__)


@dataclass
class Predictions:
    """Predictions of the accepted inputs and the reasons for the rejected ones.

    Attributes:
        outputs: the model's declared outputs.
        names: names of the accepted inputs, in input order.
        values: ``{output name: [one array per accepted input]}``, as reported
            (probabilities for classifiers; ``[N, ...]`` per crystal for per-atom outputs).
        atomic_numbers: the atoms of each accepted input (rows of per-atom outputs).
        rejected: ``{name: reason}`` of the inputs that could not be predicted.
        unseen_elements: ``{element: names}`` of the accepted inputs holding an element the
            model never saw in training (``model.provenance["elements"]``): extrapolations.
    """

    outputs: Sequence[Output]
    names: list[str] = field(default_factory=list)
    values: dict[str, list[np.ndarray]] = field(default_factory=dict)
    atomic_numbers: list[np.ndarray] = field(default_factory=list)
    rejected: dict[str, str] = field(default_factory=dict)
    unseen_elements: dict[str, list[str]] = field(default_factory=dict)

    def __getitem__(self, output: str) -> np.ndarray | list[np.ndarray]:
        """One output's values: stacked ``[M, ...]`` per crystal, or a list per atom."""
        values = self.values[output]
        level = next(o.level for o in self.outputs if o.name == output)
        return values if level == "atom" else np.stack(values) if values else np.empty(0)

    def to_csv(self, path: str | Path) -> list[Path]:
        """Write the prediction tables (:mod:`matgnn.outputs.table`); returns the files."""
        return write_prediction_tables(
            path, self.outputs, self.names, self.values, atomic_numbers=self.atomic_numbers
        )

    def _add(self, names: Sequence[str], batch: Batch, out: dict[str, torch.Tensor]) -> None:
        """Append the crystals of ``batch`` (named ``names``) and the model's output ``out``."""
        self.names.extend(names)
        numbers = split_rows(batch.atomic_numbers, batch, "atom")
        self.atomic_numbers.extend(n.numpy() for n in numbers)
        for output in self.outputs:
            presented = output.present(out[output.name]).double()
            rows = split_rows(presented, batch, output.level)
            self.values.setdefault(output.name, []).extend(r.numpy() for r in rows)


def split_rows(values: torch.Tensor, batch: Batch, level: str) -> list[torch.Tensor]:
    """A batched output or target, ``[B, ...]`` (crystal level) or ``[N, ...]`` (atom level),
    as one tensor per crystal of ``batch``."""
    if level == "atom":
        sizes = torch.bincount(batch.batch, minlength=batch.num_graphs).tolist()
        return list(values.split(sizes))
    return list(values)


def build_named_graphs(
    structures: Sequence[StructureLike], names: Sequence[str] | None, config
) -> tuple[list[tuple[str, CrystalGraph]], dict[str, str]]:
    """``(name, graph)`` of every input that builds with ``config``, and ``{name: reason}`` of
    the others (names default to the positions)."""
    names = [str(n) for n in (names if names is not None else range(len(structures)))]
    graphs: list[tuple[str, CrystalGraph]] = []
    rejected: dict[str, str] = {}
    for name, structure in zip(names, structures, strict=True):
        try:
            graphs.append((name, build_graph(structure, config, name=name)))
        except ValueError as exc:
            rejected[name] = str(exc)
    return graphs, rejected


@torch.no_grad()
def predict(
    model,
    structures: Sequence[StructureLike],
    names: Sequence[str] | None = None,
    batch_size: int = 64,
) -> Predictions:
    """Build each input's graph with ``model.graph_config()`` and run the model in eval mode.

    Invalid inputs (unreadable, empty, zero volume, NaN, overlapping atoms, unknown elements,
    disordered sites, an element outside the model's table, ...) are collected in ``rejected``
    by name instead of raising. Inputs with an element that the model's training data did not
    hold are predicted, listed in ``unseen_elements`` and named in a logged warning.
    """
    model.eval()
    graphs, rejected = build_named_graphs(structures, names, model.graph_config())
    result = Predictions(outputs=model.outputs, rejected=rejected)
    seen = (getattr(model, "provenance", None) or {}).get("elements")
    if seen is not None:
        result.unseen_elements = unseen_elements(seen, graphs)
        if result.unseen_elements:
            log.warning(
                "elements the model never saw in training, predictions are extrapolations: %s",
                describe_unseen(result.unseen_elements),
            )
    for start in range(0, len(graphs), batch_size):
        chunk = graphs[start : start + batch_size]
        batch = Batch.from_data_list([g for _, g in chunk])
        try:
            out = {k: v.cpu() for k, v in model(batch).items()}
        except ValueError:  # e.g. an element outside the CGCNN table: find which, one by one
            for name, graph in chunk:
                single = Batch.from_data_list([graph])
                try:
                    out = {k: v.cpu() for k, v in model(single).items()}
                except ValueError as exc:
                    result.rejected[name] = str(exc)
                else:
                    result._add([name], single, out)
            continue
        result._add([name for name, _ in chunk], batch, out)
    return result
