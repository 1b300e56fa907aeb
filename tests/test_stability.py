"""matgnn.analysis.stability: formation energies moved onto the MP scale and energies above the
hull, against a brute-force hull (linear programming over every competing phase)."""

from __future__ import annotations

from collections import Counter
from importlib import resources

import numpy as np
import pytest
from pymatgen.core import Composition, Structure
from scipy.optimize import linprog

from matgnn.analysis.stability import (
    HullEvaluator,
    classification,
    formation_energy_from_elements,
    mp_formation_energies,
    oxide_references,
)


@pytest.fixture(scope="module")
def phases():
    with resources.as_file(resources.files("matgnn.resources") / "mp36k_sample.csv.gz") as path:
        return mp_formation_energies(path)


def brute_force_hull_energy(phases, composition: Composition) -> float:
    """min sum_i x_i E_i over phases (and elements at 0) with sum_i x_i c_i = c, x >= 0."""
    elements = sorted(composition.elements)
    rows, energies = [], []
    for el in elements:
        rows.append([1.0 if e == el else 0.0 for e in elements])
        energies.append(0.0)
    for formula, energy in zip(phases["formula"], phases["formation_energy_per_atom"], strict=True):
        comp = Composition(formula)
        if set(comp.elements) <= set(elements):
            rows.append([comp.get_atomic_fraction(e) for e in elements])
            energies.append(float(energy))
    target = [composition.get_atomic_fraction(e) for e in elements]
    result = linprog(energies, A_eq=np.array(rows).T, b_eq=target, bounds=(0, None))
    assert result.success
    return float(result.fun)


def test_formulas_are_read_from_the_cifs(phases):
    with resources.as_file(resources.files("matgnn.resources") / "mp36k_sample.csv.gz") as path:
        import pandas as pd

        cifs = pd.read_csv(path, usecols=["cif"], nrows=5)["cif"]
    for cif, formula in zip(cifs, phases["formula"][:5], strict=True):
        assert Composition(formula) == Structure.from_str(cif, fmt="cif").composition


def test_hull_energy_matches_linear_programming(phases):
    systems = Counter(frozenset(Composition(f).elements) for f in phases["formula"] if "O" in f)
    ternary = next(s for s, _ in systems.most_common() if len(s) == 3)
    hull = HullEvaluator(phases)
    rng = np.random.default_rng(0)
    for _ in range(5):
        amounts = rng.integers(1, 6, size=3)
        composition = Composition(dict(zip(sorted(ternary), amounts.tolist(), strict=True)))
        want = brute_force_hull_energy(phases, composition)
        assert hull.e_above_hull(composition, 0.0) == pytest.approx(-want, abs=1e-8)
        assert hull.e_above_hull(composition, want + 0.05) == pytest.approx(0.05, abs=1e-8)


def test_an_oxide_relative_to_itself_is_its_mp_formation_energy(phases):
    refs = oxide_references({"Si4+": Composition("SiO2")}, phases)
    rows = phases[[Composition(f).reduced_formula == "SiO2" for f in phases["formula"]]]
    assert refs["Si4+"].formation_energy_per_atom == rows["formation_energy_per_atom"].min()
    ef = formation_energy_from_elements({"Si4+": 1}, 0.0, refs, 3)
    assert ef == pytest.approx(refs["Si4+"].formation_energy_per_atom)


def test_ternary_oxide_moves_by_its_oxides_energies(phases):
    refs = oxide_references({"Zn2+": Composition("ZnO"), "Al3+": Composition("Al2O3")}, phases)
    zno, al2o3 = refs["Zn2+"].formation_energy_per_atom, refs["Al3+"].formation_energy_per_atom
    # ZnAl2O4: 1 ZnO (2 atoms) + 1 Al2O3 (5 atoms), 7 atoms
    ef = formation_energy_from_elements({"Zn2+": 1, "Al3+": 2}, -0.05, refs, 7)
    assert ef == pytest.approx(-0.05 + (2 * zno + 5 * al2o3) / 7)
    with pytest.raises(KeyError, match="Zr4\\+"):
        formation_energy_from_elements({"Zr4+": 1}, 0.0, refs, 3)


def test_classification_counts():
    result = classification(np.array([-0.1, 0.0, 0.2, 0.3]), np.array([-0.2, 0.1, -0.1, 0.4]), 0.0)
    assert result == {
        "n": 4, "stable_share": 0.5, "accuracy": 0.5, "precision": 0.5, "recall": 0.5
    }  # fmt: skip
