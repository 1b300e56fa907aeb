"""Screening generated V-O crystals with matgnn models (Noh et al. 2019 screened theirs with DFT).

:func:`screen` predicts each candidate's formation energy with several named pretrained models
and places it against the Materials Project V-O phases of the mp36k snapshot (:func:`vo_phases`,
:class:`~matgnn.analysis.stability.HullEvaluator`) in two ways:

* against the **MP hull** (the phases' DFT formation energies): a model's offset on V-O
  oxides moves every candidate by that much;
* against the model's **own hull** (the same phases' MP structures predicted by the same
  model): the offset cancels, a model-consistent energy above the hull;
* one column per model for each, named as that model's
  (``formation_energy_per_atom__predicted_by__<m>``, ``e_above_own_hull__predicted_by__<m>``);
* their mean and their spread (largest minus smallest; NaN with one model): the models were
  trained on different MP snapshots and splits, so their disagreement is a rough, uncalibrated
  uncertainty. Both learned relaxed MP crystals only; a decoded candidate is unrelaxed, so a
  small spread does not make a prediction right;
* a model that refuses a candidate (overlapping atoms, say) leaves its columns empty and says why
  in ``rejected``: nothing is dropped silently.

:func:`unique_structures` removes repeats (pymatgen ``StructureMatcher`` within a formula) and
:func:`nearest_training` says how far a candidate's latent vector lies from the training set's.
Every number is a model's, never DFT.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.core import Composition, Element, Structure

from matgnn.analysis.stability import HullEvaluator, formation_energies_of
from matgnn.design.labels import label_column

#: formation-energy models that screen when none are named: Xie's CGCNN (MP 2017-04-19) and
#: matgnn's CGCNN trained on the mp2018_eform set
SCREENING_MODELS = ("cgcnn_xie2018_formation_energy", "cgcnn_mp2018_eform")
FORMATION = "formation_energy_per_atom"


def vo_phases(snapshot: str | Path, elements: Sequence[str] = ("V", "O")) -> pd.DataFrame:
    """The snapshot's phases made of ``elements`` only (``mp_id, formula,
    formation_energy_per_atom, structure``), from ``mp36k/mp36k_with_ehull.csv.gz``."""
    frame = pd.read_csv(snapshot, usecols=["mp_id", "formation_energy_per_atom", "cif"])
    energies = formation_energies_of(frame, str(snapshot))
    allowed = {Element(e) for e in elements}
    keep = np.array([set(Composition(f).elements) <= allowed for f in energies["formula"]])
    phases = energies[keep].reset_index(drop=True)
    if phases.empty:
        raise ValueError(f"{snapshot}: no phase made of {'-'.join(elements)} only")
    phases["structure"] = [Structure.from_str(c, fmt="cif") for c in frame["cif"][keep]]
    return phases


def _predict(
    network, structures: Sequence[Structure], names: Sequence[str], batch_size: int
) -> tuple[np.ndarray, dict[str, str]]:
    """A model's formation energies of named structures (NaN where it refuses one) and its
    reasons for refusing."""
    if not len(names):
        return np.zeros(0), {}
    result = network.predict(list(structures), list(names), batch_size)
    row_of = {name: k for k, name in enumerate(result.names)}
    values = result.draws[FORMATION][0]
    energy = np.array([float(values[row_of[n]]) if n in row_of else math.nan for n in names])
    return energy, dict(result.rejected)


def reduced_structure(structure: Structure) -> Structure:
    """The primitive, Niggli-reduced cell that ``StructureMatcher`` compares (its default
    reduction, done once here instead of at every comparison)."""
    return structure.get_primitive_structure().get_reduced_structure()


class StructureIndex:
    """Structures ready for many ``StructureMatcher`` comparisons: each reduced once and
    grouped by reduced formula and primitive site count, the only ones that can match (the
    matcher's default, ``attempt_supercell=False``, maps sites one to one).

    Args:
        structures: the indexed structures.
        formulas: index only structures of these reduced formulas (None: all).
        matcher: the matcher (default tolerances when None).
    """

    def __init__(
        self,
        structures: Sequence[Structure],
        formulas: set[str] | None = None,
        matcher: StructureMatcher | None = None,
    ) -> None:
        self.matcher = matcher or StructureMatcher()
        self._groups: dict[tuple[str, int], list[tuple[int, Structure]]] = {}
        for k, structure in enumerate(structures):
            formula = structure.composition.reduced_formula
            if formulas is None or formula in formulas:
                self.add(k, structure)

    def add(self, key: int, structure: Structure) -> None:
        reduced = reduced_structure(structure)
        group = (structure.composition.reduced_formula, len(reduced))
        self._groups.setdefault(group, []).append((key, reduced))

    def matches(self, structure: Structure, first: bool = False) -> list[int]:
        """Keys of the indexed structures that match ``structure`` (only the first with
        ``first``)."""
        reduced = reduced_structure(structure)
        found = []
        for key, other in self._groups.get(
            (structure.composition.reduced_formula, len(reduced)), []
        ):
            if self.matcher.fit(reduced, other, skip_structure_reduction=True):
                found.append(key)
                if first:
                    break
        return found


def unique_structures(
    structures: Sequence[Structure], matcher: StructureMatcher | None = None
) -> list[int]:
    """Indices of the first of each group of matching structures (``StructureMatcher``), in
    input order."""
    index = StructureIndex([], matcher=matcher)
    kept = []
    for k, structure in enumerate(structures):
        if not index.matches(structure, first=True):
            index.add(k, structure)
            kept.append(k)
    return kept


def nearest_training(z: torch.Tensor, train_mu: torch.Tensor, train_ids: Sequence[str]):
    """Each latent vector's nearest training structure by Euclidean distance: ``(ids,
    distances)``.

    Shapes:
        ``[N, D]``, ``[T, D]`` -> ``N`` ids, ``[N]``.
    """
    distances = torch.cdist(z.double(), train_mu.double())
    best, index = distances.min(dim=1)
    return [train_ids[int(k)] for k in index], best.numpy()


def screen(
    structures: Sequence[Structure],
    names: Sequence[str],
    phases: pd.DataFrame,
    models: Sequence[str] = SCREENING_MODELS,
    batch_size: int = 64,
) -> pd.DataFrame:
    """One row per candidate: ``id``, ``formula``; for each model its formation energy, the
    energy above the MP hull (DFT phases) and above the model's own hull (the same phases'
    structures predicted by the model, so that the model's offset on this chemistry cancels);
    the mean and the spread (largest minus smallest, NaN with one model) over the models
    (eV/atom); and ``rejected`` (model: reason)."""
    from matgnn.checkpoints.pretrained import load_pretrained

    if len(structures) != len(names):
        raise ValueError(f"{len(structures)} structures but {len(names)} names")
    repeated = sorted(n for n, count in Counter(names).items() if count > 1)
    if repeated:
        raise ValueError(f"screening needs one name per candidate; repeated: {repeated[:5]}")
    if not models:
        raise ValueError("screening needs at least one formation-energy model")
    dft_hull = HullEvaluator(phases)
    frame = pd.DataFrame(
        {"id": list(names), "formula": [s.composition.reduced_formula for s in structures]}
    )
    reasons: list[list[str]] = [[] for _ in names]
    columns: dict[str, list[np.ndarray]] = {"energy": [], "dft_hull": [], "model_hull": []}
    phase_names = [f"phase:{m}" for m in phases["mp_id"]]
    for model in models:
        network = load_pretrained(model)
        if FORMATION not in [o.name for o in network.outputs]:
            raise ValueError(f"screening model {model} has no {FORMATION} output")
        energy, refused = _predict(network, structures, names, batch_size)
        for k, name in enumerate(names):
            if name in refused:
                reasons[k].append(f"{model}: {refused[name]}")
        phase_energy, phase_refused = _predict(network, phases["structure"], phase_names, 64)
        if phase_refused:
            raise ValueError(f"{model} refuses hull phases: {phase_refused}")
        model_phases = phases.assign(formation_energy_per_atom=phase_energy)
        model_hull = HullEvaluator(model_phases)
        for key, hull in (("dft_hull", dft_hull), ("model_hull", model_hull)):
            columns[key].append(
                np.array(
                    [
                        hull.e_above_hull(s.composition, e) if math.isfinite(e) else math.nan
                        for s, e in zip(structures, energy, strict=True)
                    ]
                )
            )
        columns["energy"].append(energy)
        frame[label_column(FORMATION, model)] = energy
        frame[label_column("e_above_mp_hull", model)] = columns["dft_hull"][-1]
        frame[label_column("e_above_own_hull", model)] = columns["model_hull"][-1]
    for key, name in (
        ("energy", FORMATION),
        ("dft_hull", "e_above_mp_hull"),
        ("model_hull", "e_above_own_hull"),
    ):
        values = np.stack(columns[key]).reshape(len(models), len(names))
        frame[f"{name}__mean_of_models"] = values.mean(axis=0)
        spread = values.max(axis=0) - values.min(axis=0)
        frame[f"{name}__spread_of_models"] = spread if len(models) > 1 else np.nan
    frame["rejected"] = ["; ".join(r) for r in reasons]
    frame.attrs["models"] = list(models)
    return frame
