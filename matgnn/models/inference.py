"""Predict: structures in, every declared output out, bad inputs reported; one loop for every
predictor.

A predictor (:class:`Predictor`) is anything with ``outputs``, ``graph_config()`` and
``draws(batch)``: a :class:`~matgnn.models.CrystalModel` is one draw, an
:class:`~matgnn.uncertainty.UncertainModel` many (an ensemble's members, MC-dropout passes) plus
their calibrated ``summarize``. :func:`predict` builds the graphs, runs the predictor batch by
batch (one structure at a time where a batch fails, to name the culprit) and returns one
:class:`Predictions` whatever the predictor.

Imports no model class, so :mod:`matgnn.models` can use it without an import cycle.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch_geometric.data import Batch

from matgnn.graphs import build_graph
from matgnn.graphs.data import CrystalGraph
from matgnn.graphs.elements import by_element, describe_unseen, unseen_per_graph
from matgnn.graphs.structures import StructureLike
from matgnn.outputs import Output, write_prediction_tables

log = logging.getLogger(__name__)
#: what one structure's forward pass may raise (a named refusal, an element outside a
#: backbone's table, memory): the structure is rejected with it and the others predicted
PER_STRUCTURE_ERRORS = (ValueError, RuntimeError, IndexError)


class Predictor(Protocol):
    """What :func:`predict` needs of a model."""

    outputs: Sequence[Output]

    def graph_config(self) -> Any: ...

    def draws(self, batch: Batch) -> dict[str, torch.Tensor]:
        """``{output: [S, rows, ...]}``: S presented predictions of each row (crystals, or
        atoms for per-atom outputs), float64 on the CPU."""
        ...


@dataclass
class Predictions:
    """Predictions of the accepted inputs and the reasons for the rejected ones.

    Attributes:
        outputs: the predictor's declared outputs.
        names: names of the accepted inputs, in input order.
        draws: ``{output: [S, rows, ...]}`` (one draw for a plain model), rows in input order
            (atoms for per-atom outputs).
        summaries: ``{output: {field: [rows, ...]}}`` of an estimator (mean and stds;
            probability, entropy and mutual information); ``None`` for a plain model.
        atomic_numbers: the atoms of each accepted input (rows of per-atom outputs).
        rejected: ``{name: reason}`` of the inputs that could not be predicted.
        unseen_elements: ``{element: names}`` of the accepted inputs holding an element the
            model never saw in training (``provenance["elements"]``): extrapolations.
        unseen_per_crystal: per accepted input, in ``names`` order, its elements the model
            never saw, by atomic number; ``None`` when the predictor does not record its
            training elements (nothing checked; the tables then have no ``unseen_elements``
            column).
        ood_score: per accepted input, its distance to the training set in the model's latent
            space in units of the median validation distance
            (:mod:`matgnn.uncertainty.latent`); ``None`` for a predictor without one.
    """

    outputs: Sequence[Output]
    names: list[str] = field(default_factory=list)
    draws: dict[str, np.ndarray] = field(default_factory=dict)
    summaries: dict[str, dict[str, np.ndarray]] | None = None
    atomic_numbers: list[np.ndarray] = field(default_factory=list)
    rejected: dict[str, str] = field(default_factory=dict)
    unseen_elements: dict[str, list[str]] = field(default_factory=dict)
    unseen_per_crystal: list[list[str]] | None = None
    ood_score: np.ndarray | None = None

    def _output(self, name: str) -> Output:
        return next(o for o in self.outputs if o.name == name)

    @property
    def values(self) -> dict[str, list[np.ndarray]]:
        """``{output: [one array per accepted input]}``: the point predictions (the one draw
        of a plain model; an estimator's mean, or mean probabilities for a classifier)."""
        return {o.name: self._point_values(o) for o in self.outputs}

    def _point_values(self, output: Output) -> list[np.ndarray]:
        """One output's point predictions, one array per accepted input."""
        if self.summaries is None:
            rows = self.draws[output.name][0]
        else:
            summary = self.summaries[output.name]
            rows = summary["mean"] if "mean" in summary else summary["probability"]
        rows = np.asarray(rows)
        if output.level != "atom":
            return list(rows)
        if not self.atomic_numbers:
            return []
        sizes = np.cumsum([len(n) for n in self.atomic_numbers])[:-1]
        return np.split(rows, sizes)

    def __getitem__(self, output: str) -> Any:
        """One output: an estimator's summary (``{field: [rows, ...]}``); for a plain model its
        values, stacked ``[M, ...]`` per crystal or a list per atom."""
        if self.summaries is not None:
            return self.summaries[output]
        chosen = self._output(output)
        values = self._point_values(chosen)
        if chosen.level == "atom":
            return values
        return np.stack(values) if values else np.empty(0)

    def to_csv(
        self, path: str | Path, targets: Mapping[str, Sequence[np.ndarray]] | None = None
    ) -> list[Path]:
        """Write the prediction tables (:mod:`matgnn.outputs.table`): one row per crystal, and
        ``<stem>_atoms.csv`` for per-atom outputs; an estimator's stds (or entropy and mutual
        information) as columns, ``ood_score`` when there is one, and ``unseen_elements``
        (the crystal's elements the model never saw, space-separated; empty when none) when
        the model records its training elements. ``targets``: ``{output: one array per
        crystal}``."""
        return write_prediction_tables(
            path,
            self.outputs,
            self.names,
            self.values,
            targets=targets,
            atomic_numbers=self.atomic_numbers,
            summaries=self.summaries,
            crystal_columns=self.crystal_columns() or None,
        )

    def crystal_columns(self) -> dict[str, list]:
        """The per-crystal columns beside the outputs: ``ood_score`` and ``unseen_elements``
        (each when there is one), one value per accepted input."""
        columns: dict[str, list] = {}
        if self.ood_score is not None:
            columns["ood_score"] = list(self.ood_score)
        if self.unseen_per_crystal is not None:
            columns["unseen_elements"] = [" ".join(found) for found in self.unseen_per_crystal]
        return columns

    def check_elements(
        self, seen: Sequence[str] | None, graphs: Sequence[CrystalGraph], warn: bool = True
    ) -> None:
        """Record the elements of ``graphs`` (the accepted inputs, in ``names`` order) that are
        not in ``seen`` (a model's ``provenance["elements"]``; ``None``: not recorded, nothing
        checked), per element and per crystal, and log a warning naming them (``warn``)."""
        if seen is None:
            return
        self.unseen_per_crystal = unseen_per_graph(seen, graphs)  # one pass over the graphs
        self.unseen_elements = by_element(self.names, self.unseen_per_crystal)
        if warn and self.unseen_elements:
            log.warning(
                "elements the model never saw in training, predictions are extrapolations: %s",
                describe_unseen(self.unseen_elements),
            )


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


def draw_graphs(
    predictor: Predictor,
    named: Sequence[tuple[str, CrystalGraph]],
    batch_size: int = 64,
    progress: bool = False,
) -> tuple[list[tuple[str, CrystalGraph]], dict[str, np.ndarray], dict[str, str]]:
    """The predictor's draws of every graph it accepts, batch by batch; a batch that fails
    (e.g. an element outside the CGCNN table) is retried one graph at a time, and the graphs
    that still fail are returned with their reasons. Returns (accepted, draws, rejected);
    ``draws`` also holds whatever else the predictor draws per crystal (an uncertain model's
    latent distances)."""
    from tqdm import tqdm

    accepted: list[tuple[str, CrystalGraph]] = []
    chunks: dict[str, list[torch.Tensor]] = {o.name: [] for o in predictor.outputs}
    rejected: dict[str, str] = {}

    def run(items: Sequence[tuple[str, CrystalGraph]]) -> None:
        out = predictor.draws(Batch.from_data_list([g for _, g in items]))
        accepted.extend(items)
        for name, value in out.items():
            chunks.setdefault(name, []).append(value.detach().double().cpu())

    starts = range(0, len(named), batch_size)
    # disable=None: a bar only on a terminal (never one line per batch in a log)
    bar = tqdm(starts, desc="predict", disable=None if progress else True, leave=False)
    for start in bar:
        chunk = list(named[start : start + batch_size])
        with torch.no_grad():
            try:
                run(chunk)
            except PER_STRUCTURE_ERRORS:  # find the structures at fault, keep the others
                failures: list[Exception] = []
                for item in chunk:
                    try:
                        run([item])
                    except PER_STRUCTURE_ERRORS as exc:
                        failures.append(exc)
                        rejected[item[0]] = str(exc) if isinstance(exc, ValueError) else f"{exc!r}"
                # every structure failing alike, not with a named refusal: the fault is not the
                # structures' (a device mismatch, a broken accelerator context): show it
                if len(chunk) > 1 and len(failures) == len(chunk):
                    kinds = {type(e) for e in failures}
                    if len(kinds) == 1 and not issubclass(kinds.pop(), ValueError):
                        raise failures[0] from None
    draws = {
        o.name: torch.cat(chunks[o.name], dim=1).numpy()
        if chunks[o.name]
        else np.empty((1, 0, *o.value_shape))
        for o in predictor.outputs
    }
    draws.update({k: torch.cat(v, dim=1).numpy() for k, v in chunks.items() if k not in draws})
    return accepted, draws, rejected


def predict(
    predictor: Predictor,
    structures: Sequence[StructureLike],
    names: Sequence[str] | None = None,
    batch_size: int = 64,
    progress: bool = False,
) -> Predictions:
    """Build each input's graph with ``predictor.graph_config()`` and predict every output.

    Invalid inputs (unreadable, empty, zero volume, NaN, overlapping atoms, unknown elements,
    disordered sites, an element outside the model's table, ...) are collected in ``rejected``
    by name instead of raising. Inputs with an element that the model's training data did not
    hold are predicted, listed in ``unseen_elements`` and named in a logged warning. An
    estimator's draws are summarised (and calibrated) by its ``summarize``.
    """
    if isinstance(predictor, torch.nn.Module):
        predictor.eval()  # a model predicts in eval mode (an estimator sets its own modes)
    graphs, rejected = build_named_graphs(structures, names, predictor.graph_config())
    result = predict_graphs(predictor, graphs, batch_size, progress)
    result.rejected = {**rejected, **result.rejected}
    return result


def predict_graphs(
    predictor: Predictor,
    named: Sequence[tuple[str, CrystalGraph]],
    batch_size: int = 64,
    progress: bool = False,
) -> Predictions:
    """:func:`predict` of graphs already built, ``(name, graph)``."""
    accepted, draws, rejected = draw_graphs(predictor, named, batch_size, progress)
    summarize = getattr(predictor, "summarize", None)
    ood_scores = getattr(predictor, "ood_scores", None)
    result = Predictions(
        outputs=predictor.outputs,
        names=[name for name, _ in accepted],
        draws=draws,
        summaries=summarize(draws) if summarize is not None else None,
        atomic_numbers=[g.atomic_numbers.numpy() for _, g in accepted],
        rejected=rejected,
        ood_score=ood_scores(draws) if ood_scores is not None else None,
    )
    seen = (getattr(predictor, "provenance", None) or {}).get("elements")
    result.check_elements(seen, [g for _, g in accepted])
    return result
