"""Energy above the convex hull of a candidate from its formation energy relative to the binary
oxides (Ye et al. 2018), against competing phases from a Materials Project snapshot.

Ye et al. give ``Ef`` relative to the binary oxides (uncorrected GGA/GGA+U total energies on
both sides). A hull needs formation energies from the elements, so each candidate is moved onto
the MP scale with the MP formation energies of the same binary oxides:

    E_f,elements(candidate) = E_f,oxides(candidate)
                              + sum_el (n_el / n_el,oxide) * E_f,elements^MP(oxide of el)

per formula unit, divided by the candidate's atom count. Because a charge-balanced candidate
holds exactly the oxygen of its binary oxides, MP's per-O-atom oxide correction cancels in this
sum, and a U correction does too (same cations, same counts); what does not cancel is the
difference between the 2018 garnetdnn calculations and the snapshot's (settings, pseudopotential
versions), an approximation the results state. The competing phases are every snapshot entry
whose elements lie in the candidate's chemical system, plus the elements at zero.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from pymatgen.analysis.phase_diagram import PDEntry, PhaseDiagram
from pymatgen.core import Composition, Element, Species

_FORMULA_SUM = re.compile(r"_chemical_formula_sum\s+'?([^'\n]+)'?")


def mp_formation_energies(path: str | Path) -> pd.DataFrame:
    """``mp_id, formula, formation_energy_per_atom`` of the mp36k snapshot
    (``mp36k/mp36k_with_ehull.csv.gz``), the formula read from each CIF's
    ``_chemical_formula_sum``."""
    frame = pd.read_csv(path, usecols=["mp_id", "formation_energy_per_atom", "cif"])
    return formation_energies_of(frame, str(path))


def formation_energies_of(frame: pd.DataFrame, source: str) -> pd.DataFrame:
    """:func:`mp_formation_energies` of a snapshot table already read (``mp_id``,
    ``formation_energy_per_atom``, ``cif``); ``source`` names it in errors. Same row order."""
    formulas = [_FORMULA_SUM.search(cif) for cif in frame["cif"]]
    missing = [m for m, f in zip(frame["mp_id"], formulas, strict=True) if f is None]
    if missing:
        raise ValueError(f"{source}: no _chemical_formula_sum in the CIFs of {missing[:5]}")
    return pd.DataFrame(
        {
            "mp_id": frame["mp_id"],
            "formula": [Composition(f.group(1)).formula for f in formulas],
            "formation_energy_per_atom": frame["formation_energy_per_atom"],
        }
    )


@dataclass(frozen=True)
class OxideReference:
    """The binary oxide of one cation species and its MP formation energy (eV/atom)."""

    species: str
    oxide: Composition
    mp_id: str
    formation_energy_per_atom: float


def oxide_references(
    oxides: Mapping[str, Composition], phases: pd.DataFrame
) -> dict[str, OxideReference]:
    """For each species ``{"Ti4+": Composition("TiO2"), ...}``, the lowest MP formation energy
    among the snapshot's entries of that reduced formula; species whose oxide the snapshot
    lacks are left out."""
    reduced = phases.assign(
        reduced=[Composition(f).reduced_formula for f in phases["formula"]]
    ).sort_values("formation_energy_per_atom")
    first = reduced.drop_duplicates("reduced").set_index("reduced")
    refs = {}
    for species, oxide in oxides.items():
        key = oxide.reduced_formula
        if key in first.index:
            row = first.loc[key]
            refs[species] = OxideReference(
                species, oxide, str(row["mp_id"]), float(row["formation_energy_per_atom"])
            )
    return refs


def formation_energy_from_elements(
    species_counts: Mapping[str, float],
    ef_vs_oxides: float,
    refs: Mapping[str, OxideReference],
    num_atoms: float,
) -> float:
    """E_f from the elements (eV/atom) of a candidate with ``species_counts`` cations per
    formula unit of ``num_atoms`` atoms and ``ef_vs_oxides`` (eV/atom) relative to the binary
    oxides. Raises ``KeyError`` naming a species with no reference."""
    total = ef_vs_oxides * num_atoms
    for species, count in species_counts.items():
        if species not in refs:
            raise KeyError(f"no binary-oxide reference for {species}")
        ref = refs[species]
        per_cation = ref.oxide[Species.from_str(species).symbol]
        total += count / per_cation * ref.formation_energy_per_atom * ref.oxide.num_atoms
    return total / num_atoms


def formation_energy_vs_oxides(
    species_counts: Mapping[str, float],
    formation_energy_per_atom: float,
    refs: Mapping[str, OxideReference],
    num_atoms: float,
) -> float:
    """The inverse of :func:`formation_energy_from_elements`: E_f relative to the binary
    oxides (eV/atom) of a crystal whose formation energy from the elements is
    ``formation_energy_per_atom`` (eV/atom, the same snapshot as ``refs``)."""
    zero = formation_energy_from_elements(species_counts, 0.0, refs, num_atoms)
    return formation_energy_per_atom - zero


class HullEvaluator:
    """Energies above the hull of candidates against fixed competing phases.

    Args:
        phases: ``formula, formation_energy_per_atom`` (eV/atom, from the elements).
    """

    def __init__(self, phases: pd.DataFrame) -> None:
        self._entries = [
            (frozenset(Composition(f).elements), Composition(f), float(e))
            for f, e in zip(phases["formula"], phases["formation_energy_per_atom"], strict=True)
        ]
        self._diagrams: dict[frozenset, PhaseDiagram] = {}

    def competing(self, elements: Iterable[Element]) -> list[PDEntry]:
        chemsys = frozenset(elements)
        entries = [PDEntry(Composition({el: 1}), 0.0) for el in chemsys]
        entries += [
            PDEntry(comp, e * comp.num_atoms) for els, comp, e in self._entries if els <= chemsys
        ]
        return entries

    def diagram(self, elements: Iterable[Element]) -> PhaseDiagram:
        chemsys = frozenset(elements)
        if chemsys not in self._diagrams:
            self._diagrams[chemsys] = PhaseDiagram(self.competing(chemsys))
        return self._diagrams[chemsys]

    def e_above_hull(self, composition: Composition, formation_energy_per_atom: float) -> float:
        """Energy above the competing phases' hull (eV/atom); negative when the candidate
        lies below it (then it would itself be on the hull, at that depth)."""
        diagram = self.diagram(composition.elements)
        hull = diagram.get_hull_energy_per_atom(composition)
        return float(formation_energy_per_atom - hull)


def classification(true_ehull: np.ndarray, predicted_ehull: np.ndarray, tolerance: float) -> dict:
    """Stable = E_hull <= tolerance, for both; accuracy, precision and recall of "stable"."""
    true, pred = np.asarray(true_ehull) <= tolerance, np.asarray(predicted_ehull) <= tolerance
    tp = int(np.sum(true & pred))
    return {
        "n": int(true.size),
        "stable_share": float(true.mean()),
        "accuracy": float(np.mean(true == pred)),
        "precision": tp / int(pred.sum()) if pred.any() else float("nan"),
        "recall": tp / int(true.sum()) if true.any() else float("nan"),
    }
