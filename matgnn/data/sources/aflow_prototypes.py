"""Crystal-structure recognition in the ARISE protocol (Leitherer, Ziletti & Ghiringhelli,
Nat. Commun. 12, 6234 (2021)) on the AFLOW prototypes that pymatgen ships.

``pymatgen/analysis/prototypes/aflow_prototypes.json.gz`` holds 288 entries of the AFLOW Library
of Crystallographic Prototypes (Mehl et al. 2017, Hicks et al. 2019), each a structure of a
representative compound with its AFLOW label (``AB_hP6_154_a_b``: stoichiometry, Pearson
symbol, space group, Wyckoff positions). Every distinct label is a class.

Excluded (:func:`excluded_prototypes`, with the reason for each): an entry whose structure
pymatgen's ``StructureMatcher`` (default tolerances: ltol 0.2, stol 0.3, angle 5°) cannot tell
from an entry of another label with the same composition. Of such a pair the label of the lower
space-group number is dropped: it describes a distortion of the other that is below the
matcher's tolerance (e.g. ``A_mC4_12_i`` is ``A_hR2_166_c``). Entries that share a label are
kept, as two structures of one class.

Protocol (ARISE trains on pristine structures only and tests on defective ones):

* train: every structure isotropically scaled by 0.95, 1.00, 1.05 (ARISE also trains on
  supercells; matgnn's graphs and mean-pooled models are exactly supercell-invariant, tested
  in ``tests/models/test_invariance.py``, so a pristine supercell repeats its unit cell's
  example at several times the cost: ``train_supercells=True`` adds them anyway);
* val (early stopping and calibration): the unit cells scaled by 0.975 and 1.025, pristine;
* test: defective supercells, :func:`defective`, at the ``defects`` levels given, one draw each
  (``benchmarks/arise`` evaluates a full grid with several draws).

Displacements are Gaussian per Cartesian component with a standard deviation equal to the given
fraction of the structure's nearest-neighbour distance; vacancies remove that fraction of the
atoms (rounded, at least one atom stays), chosen at random.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
from pymatgen.core import Structure

from matgnn.data.records import Records

#: the training scalings, the validation scalings and the smallest supercell used for defects
TRAIN_SCALES = (0.95, 1.00, 1.05)
VAL_SCALES = (0.975, 1.025)
MIN_SUPERCELL_ATOMS = 64
#: the task's test set: (displacement fraction of the NN distance, vacancy fraction)
DEFAULT_DEFECTS = ((0.02, 0.0), (0.0, 0.10), (0.02, 0.10))


@dataclass(frozen=True)
class Prototype:
    """One entry: its AFLOW label, structure, space-group number (from the label) and tags."""

    label: str
    structure: Structure
    space_group: int
    index: int

    @property
    def name(self) -> str:
        """A unique id: the label, and the entry's position for labels held twice."""
        return f"{self.label}#{self.index}"


def prototype_file() -> Path:
    import pymatgen.analysis.prototypes as prototypes

    return Path(prototypes.__file__).parent / "aflow_prototypes.json.gz"


@cache
def all_prototypes() -> tuple[Prototype, ...]:
    """Every entry of the file, in file order."""
    from monty.serialization import loadfn

    entries = loadfn(prototype_file())
    return tuple(
        Prototype(
            label=e["tags"]["aflow"],
            structure=e["snl"].structure,
            space_group=int(e["tags"]["aflow"].split("_")[2]),
            index=k,
        )
        for k, e in enumerate(entries)
    )


@cache
def excluded_prototypes() -> dict[str, str]:
    """``{label: reason}`` of the labels left out (see the module docstring)."""
    from pymatgen.analysis.structure_matcher import StructureMatcher

    matcher = StructureMatcher()
    by_formula: dict[str, list[Prototype]] = defaultdict(list)
    for p in all_prototypes():
        by_formula[p.structure.composition.reduced_formula].append(p)
    excluded = {}
    for group in by_formula.values():
        for a, b in itertools.combinations(group, 2):
            if a.label != b.label and matcher.fit(a.structure, b.structure):
                keep, drop = sorted((a, b), key=lambda p: -p.space_group)
                if drop.space_group == keep.space_group:
                    keep, drop = sorted((a, b), key=lambda p: p.label)
                excluded[drop.label] = (
                    f"StructureMatcher (default tolerances) matches entry {drop.name} to entry "
                    f"{keep.name} whose label {keep.label} is kept (higher space-group number)"
                )
    return excluded


def prototypes() -> list[Prototype]:
    """The entries kept, in file order."""
    excluded = excluded_prototypes()
    return [p for p in all_prototypes() if p.label not in excluded]


def prototype_labels() -> list[str]:
    """The class names: the kept AFLOW labels, sorted; class ``k`` is ``labels[k]``."""
    return sorted({p.label for p in prototypes()})


def scaled(structure: Structure, factor: float) -> Structure:
    """The structure with its lattice scaled isotropically by ``factor`` (same fractional
    coordinates)."""
    return Structure(
        structure.lattice.matrix * factor,
        structure.species,
        structure.frac_coords,
    )


def defect_supercell(structure: Structure) -> Structure:
    """The smallest ``n x n x n`` supercell with at least 64 atoms."""
    n = 1
    while n**3 * len(structure) < MIN_SUPERCELL_ATOMS:
        n += 1
    return structure * (n, n, n)


def nearest_neighbour_distance(structure: Structure) -> float:
    """The shortest interatomic distance of the (periodic) structure, Å."""
    distances = structure.distance_matrix + np.diag(np.full(len(structure), np.inf))
    shortest = float(distances.min()) if len(structure) > 1 else np.inf
    # an atom's own periodic images
    return min(shortest, float(min(structure.lattice.abc)))


def defective(structure: Structure, displacement: float, vacancies: float, seed: int) -> Structure:
    """The test supercell of ``structure`` with Gaussian displacements (std ``displacement``
    times the nearest-neighbour distance, per Cartesian component) and a fraction
    ``vacancies`` of its atoms removed, drawn with ``seed``."""
    rng = np.random.default_rng(seed)
    cell = defect_supercell(structure)
    sigma = displacement * nearest_neighbour_distance(structure)
    missing = min(round(vacancies * len(cell)), len(cell) - 1)
    kept = np.sort(rng.permutation(len(cell))[missing:])
    coords = cell.cart_coords[kept] + rng.normal(scale=sigma, size=(len(kept), 3))
    species = [cell.species[i] for i in kept]
    return Structure(cell.lattice, species, coords, coords_are_cartesian=True)


def defect_id(prototype: Prototype, displacement: float, vacancies: float, draw: int) -> str:
    return f"{prototype.name}|d{displacement:g}|v{vacancies:g}|r{draw}"


def aflow_prototypes(
    target: str = "prototype",
    defects: Sequence[Sequence[float]] = DEFAULT_DEFECTS,
    draws: int = 1,
    seed: int = 0,
    limit: int | None = None,
    train_supercells: bool = False,
) -> Records:
    """Train/val/test records of the ARISE-style prototype task (module docstring).

    Args:
        target: name of the label column (the class index of the AFLOW label).
        defects: the test levels, ``(displacement, vacancy)`` fractions.
        draws: random defective copies per prototype and level.
        seed: seed of the defects (draw ``r`` of prototype ``k`` at level ``j`` uses a seed
            derived from all four, so adding levels or draws keeps the others).
        limit: the first ``limit`` kept entries only (tests).
        train_supercells: also train on the pristine defect supercells.
    """
    chosen = prototypes()[:limit] if limit else prototypes()
    classes = {label: k for k, label in enumerate(prototype_labels())}
    ids, structures, labels = [], [], []
    split: dict[str, list[str]] = {"train": [], "val": [], "test": []}

    def add(subset: str, sid: str, structure: Structure, label: str) -> None:
        ids.append(sid)
        structures.append(structure)
        labels.append(classes[label])
        split[subset].append(sid)

    for p in chosen:
        for factor in TRAIN_SCALES:
            add("train", f"{p.name}|s{factor:g}", scaled(p.structure, factor), p.label)
            if train_supercells:
                add(
                    "train",
                    f"{p.name}|s{factor:g}|super",
                    defect_supercell(scaled(p.structure, factor)),
                    p.label,
                )
        for factor in VAL_SCALES:
            add("val", f"{p.name}|s{factor:g}", scaled(p.structure, factor), p.label)
        for j, (displacement, vacancies) in enumerate(defects):
            for draw in range(draws):
                structure = defective(
                    p.structure, displacement, vacancies, seed=hash_seed(seed, p.index, j, draw)
                )
                add("test", defect_id(p, displacement, vacancies, draw), structure, p.label)
    levels = "_".join(f"d{d:g}v{v:g}" for d, v in defects)
    return Records(
        ids=ids,
        structures=structures,
        targets={target: np.asarray(labels)},
        name=f"aflow_prototypes_{len(chosen)}_{levels}_x{draws}_seed{seed}"
        + ("_supercells" if train_supercells else ""),
        split=split,
    )


def hash_seed(*parts: int) -> int:
    """A seed from integers (``numpy.random.SeedSequence``), stable across runs."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1)[0])
