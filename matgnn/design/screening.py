"""Screening generated V-O crystals with matgnn models (Noh et al. 2019 screened theirs with DFT).

:func:`screen` predicts each candidate's formation energy with several named pretrained models
and places it against the Materials Project V-O convex hull (:class:`~matgnn.analysis.stability.
HullEvaluator`, phases from the mp36k snapshot, :func:`vo_phases`):

* one column per model, named as that model's (``formation_energy_per_atom__predicted_by__<m>``),
  and the energy above the hull from each;
* their mean and their spread (largest minus smallest): the models were trained on different MP
  snapshots and splits, so their disagreement is a rough, uncalibrated uncertainty. Both saw
  relaxed MP crystals only; a decoded candidate is unrelaxed, so a small spread does not make a
  prediction right;
* a model that refuses a candidate (overlapping atoms, say) leaves its columns empty and says why
  in ``rejected``: nothing is dropped silently.

:func:`unique_structures` removes repeats (pymatgen ``StructureMatcher`` within a formula) and
:func:`nearest_training` says how far a candidate's latent vector lies from the training set's.
Every number is a model's, never DFT.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.core import Composition, Element, Structure

from matgnn.analysis.stability import HullEvaluator, mp_formation_energies
from matgnn.design.labels import label_column

#: formation-energy models that screen when none are named: Xie's CGCNN (MP 2017-04-19) and
#: matgnn's CGCNN trained on the mp2018_eform set
SCREENING_MODELS = ("cgcnn_xie2018_formation_energy", "cgcnn_mp2018_eform")
FORMATION = "formation_energy_per_atom"


def vo_phases(snapshot: str | Path, elements: Sequence[str] = ("V", "O")) -> pd.DataFrame:
    """The snapshot's phases made of ``elements`` only (``mp_id, formula,
    formation_energy_per_atom``), from ``mp36k/mp36k_with_ehull.csv.gz``."""
    frame = mp_formation_energies(snapshot)
    allowed = {Element(e) for e in elements}
    keep = [set(Composition(f).elements) <= allowed for f in frame["formula"]]
    phases = frame[keep].reset_index(drop=True)
    if phases.empty:
        raise ValueError(f"{snapshot}: no phase made of {'-'.join(elements)} only")
    return phases


def unique_structures(
    structures: Sequence[Structure], matcher: StructureMatcher | None = None
) -> list[int]:
    """Indices of the first of each group of matching structures (``StructureMatcher``,
    compared within a reduced formula only), in input order."""
    matcher = matcher or StructureMatcher()
    kept: dict[str, list[int]] = {}
    for k, structure in enumerate(structures):
        group = kept.setdefault(structure.composition.reduced_formula, [])
        if not any(matcher.fit(structure, structures[j]) for j in group):
            group.append(k)
    return sorted(k for group in kept.values() for k in group)


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
    """One row per candidate: ``id``, ``formula``, each model's formation energy and energy
    above the hull, their mean and spread (eV/atom), and ``rejected`` (model: reason)."""
    from matgnn.checkpoints.pretrained import load_pretrained

    if len(structures) != len(names):
        raise ValueError(f"{len(structures)} structures but {len(names)} names")
    if not models:
        raise ValueError("screening needs at least one formation-energy model")
    hull = HullEvaluator(phases)
    frame = pd.DataFrame(
        {"id": list(names), "formula": [s.composition.reduced_formula for s in structures]}
    )
    reasons: list[list[str]] = [[] for _ in names]
    energies, above = [], []
    for model in models:
        network = load_pretrained(model)
        if FORMATION not in [o.name for o in network.outputs]:
            raise ValueError(f"screening model {model} has no {FORMATION} output")
        energy = np.full(len(names), math.nan)
        if len(names):
            result = network.predict(list(structures), list(names), batch_size)
            row_of = {name: k for k, name in enumerate(result.names)}
            values = result.draws[FORMATION][0]
            energy = np.array(
                [float(values[row_of[n]]) if n in row_of else math.nan for n in names]
            )
            for k, name in enumerate(names):
                if name in result.rejected:
                    reasons[k].append(f"{model}: {result.rejected[name]}")
        ehull = np.array(
            [
                hull.e_above_hull(s.composition, e) if math.isfinite(e) else math.nan
                for s, e in zip(structures, energy, strict=True)
            ]
        )
        frame[label_column(FORMATION, model)] = energy
        frame[label_column("e_above_hull", model)] = ehull
        energies.append(energy)
        above.append(ehull)
    energies_ = np.stack(energies).reshape(len(models), len(names))
    above_ = np.stack(above).reshape(len(models), len(names))
    frame[f"{FORMATION}__mean_of_models"] = energies_.mean(axis=0)
    frame[f"{FORMATION}__spread_of_models"] = energies_.max(axis=0) - energies_.min(axis=0)
    frame["e_above_hull__mean_of_models"] = above_.mean(axis=0)
    frame["rejected"] = ["; ".join(r) for r in reasons]
    frame.attrs["models"] = list(models)
    return frame
