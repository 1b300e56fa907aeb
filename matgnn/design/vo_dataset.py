"""The V-O data set of iMatGen (Noh et al., Matter 1, 1370 (2019)), rebuilt the paper's way from
real Materials Project binaries.

Every binary ``A_x B_y`` of the MP set (``<data_dir>/mp36k/mp36k_with_ehull.csv.gz``) gives two
V-O structures, ``A -> V, B -> O`` and ``A -> O, B -> V``, in its own cell (nothing relaxed);
kept when the structure has at most 20 sites and no lattice vector longer than 10 Å (the
paper's filters, :class:`~matgnn.design.images.ImageSpec`). When the two assignments give the
same crystal (pymatgen ``StructureMatcher``, e.g. rock salt), one is kept. The MP binaries
made of V and O themselves are the **known V-O structures** (the paper's rediscovery targets):
they are flagged, and their DFT formation energies (MP) are kept to validate a labeller.

The substituted structures have **no DFT energy**: a label for them comes from a named model
and is stored as such (never as DFT).

The paper had 10,981 structures from 7,472 binaries and 31 known V-O structures; the counts of
this rebuild are in :attr:`VODataset.counts`.
"""

from __future__ import annotations

import gzip
import json
import logging
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.core import Element, Structure

from matgnn.data.sources.mp import MP36K_FILE
from matgnn.design.images import ImageSpec

log = logging.getLogger(__name__)

#: the two assignments of a binary's elements (in order of electronegativity) to V and O
ASSIGNMENTS = ("A=V,B=O", "A=O,B=V")
_FORMULA = re.compile(r"_chemical_formula_sum\s+'?([^'\n]+)'?")


@dataclass
class VODataset:
    """Substituted V-O structures and the known ones.

    Attributes:
        ids: ``<mp-id>:<assignment>`` (``A`` is the less electronegative element of the binary).
        structures: the V-O structures, in the binary's cell.
        sources: the MP id each comes from.
        known: whether it is an MP V-O binary itself (then its assignment is the identity).
        dft_formation_energy: MP's formation energy per atom (eV/atom) of a known V-O
            structure, ``None`` for a substituted one (it has no DFT energy).
        counts: how many binaries and structures each step kept.
    """

    ids: list[str]
    structures: list[Structure]
    sources: list[str]
    known: list[bool]
    dft_formation_energy: list[float | None]
    counts: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.ids)

    def to_json(self, path: str | Path) -> None:
        """Write as gzipped JSON (CIF text per structure) with the counts and provenance."""
        rows = [
            {
                "id": i,
                "source": s,
                "known_vo": k,
                "dft_formation_energy_per_atom": e,
                "cif": st.to(fmt="cif"),
            }
            for i, st, s, k, e in zip(
                self.ids,
                self.structures,
                self.sources,
                self.known,
                self.dft_formation_energy,
                strict=True,
            )
        ]
        content = {"provenance": PROVENANCE, "counts": self.counts, "rows": rows}
        with gzip.open(path, "wt") as handle:
            json.dump(content, handle)

    @classmethod
    def from_json(cls, path: str | Path) -> VODataset:
        with gzip.open(path, "rt") as handle:
            content = json.load(handle)
        rows = content["rows"]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # CIF rounding notes
            structures = [Structure.from_str(r["cif"], fmt="cif") for r in rows]
        return cls(
            ids=[r["id"] for r in rows],
            structures=structures,
            sources=[r["source"] for r in rows],
            known=[bool(r["known_vo"]) for r in rows],
            dft_formation_energy=[r["dft_formation_energy_per_atom"] for r in rows],
            counts=dict(content.get("counts", {})),
        )

    def subset(self, keep: Sequence[int]) -> VODataset:
        return VODataset(
            ids=[self.ids[i] for i in keep],
            structures=[self.structures[i] for i in keep],
            sources=[self.sources[i] for i in keep],
            known=[self.known[i] for i in keep],
            dft_formation_energy=[self.dft_formation_energy[i] for i in keep],
            counts=dict(self.counts),
        )


PROVENANCE = (
    "V-O structures made from the Materials Project binaries of the mp36k set (kdmsit/MEGNet "
    "distribution of the CGCNN MP id list, MIT; see ../shared/data/README.md) by replacing the "
    "two elements with V and O both ways, in the binary's own cell, unrelaxed "
    "(matgnn.design.vo_dataset). Only the rows with known_vo=true are DFT structures with a DFT "
    "formation energy (MP); every other structure is hypothetical and has no DFT label."
)


#: the shipped subset (``matgnn/resources/vo_sample.json.gz``, see its README)
SAMPLE = "vo_sample.json.gz"


def vo_sample() -> VODataset:
    """The shipped subset of the V-O data set: every known V-O structure and 186 seeded
    substituted ones (``scripts/make_vo_sample.py``)."""
    from importlib.resources import files

    return VODataset.from_json(files("matgnn.resources").joinpath(SAMPLE))


def binary_elements(cif: str) -> tuple[str, str] | None:
    """The two elements of a CIF's ``_chemical_formula_sum``, less electronegative first (ties:
    by atomic number), or ``None`` when it is not a binary."""
    match = _FORMULA.search(cif)
    if not match:
        return None
    symbols = sorted({re.sub(r"[\d.]+", "", token) for token in match.group(1).split()})
    if len(symbols) != 2:
        return None
    elements = sorted((Element(s) for s in symbols), key=lambda e: (e.X, e.Z))
    return elements[0].symbol, elements[1].symbol


def substituted(structure: Structure, a: str, b: str, assignment: str) -> Structure:
    """``structure`` with ``a`` and ``b`` replaced as ``assignment`` says."""
    mapping = {a: "V", b: "O"} if assignment == ASSIGNMENTS[0] else {a: "O", b: "V"}
    out = structure.copy()
    out.replace_species(mapping)
    return out


def fits(structure: Structure, spec: ImageSpec) -> bool:
    return len(structure) <= spec.max_sites and max(structure.lattice.abc) <= spec.max_length


def build_vo_dataset(
    data_dir: str | Path, spec: ImageSpec | None = None, limit: int | None = None
) -> VODataset:
    """The V-O data set from ``<data_dir>/mp36k`` (see the module docstring); ``spec``: the
    size filters (the paper's by default); ``limit``: the first rows of the MP table only."""
    spec = spec or ImageSpec()
    path = Path(data_dir) / MP36K_FILE
    if not path.is_file():
        raise FileNotFoundError(f"V-O data set: {path} not found; set data_dir to the shared data")
    frame = pd.read_csv(path, nrows=limit, usecols=["mp_id", "cif", "formation_energy_per_atom"])
    pairs = [binary_elements(cif) for cif in frame["cif"]]
    binary = [i for i, p in enumerate(pairs) if p is not None]
    matcher = StructureMatcher()
    data = VODataset([], [], [], [], [])
    counts = {"mp_rows": len(frame), "binaries": len(binary), "binaries_kept": 0}
    counts.update({"substituted": 0, "same_both_ways": 0, "known_vo": 0})
    for row in binary:
        a, b = pairs[row]
        mp_id = str(frame["mp_id"].iloc[row])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            structure = Structure.from_str(frame["cif"].iloc[row], fmt="cif")
        if not fits(structure, spec):
            continue
        counts["binaries_kept"] += 1
        if {a, b} == {"V", "O"}:
            data.ids.append(f"{mp_id}:known")
            data.structures.append(structure)
            data.sources.append(mp_id)
            data.known.append(True)
            data.dft_formation_energy.append(float(frame["formation_energy_per_atom"].iloc[row]))
            counts["known_vo"] += 1
            continue
        made = [substituted(structure, a, b, assignment) for assignment in ASSIGNMENTS]
        keep = list(zip(ASSIGNMENTS, made, strict=True))
        if matcher.fit(made[0], made[1]):
            keep = keep[:1]
            counts["same_both_ways"] += 1
        for assignment, vo in keep:
            data.ids.append(f"{mp_id}:{assignment}")
            data.structures.append(vo)
            data.sources.append(mp_id)
            data.known.append(False)
            data.dft_formation_energy.append(None)
            counts["substituted"] += 1
    counts["structures"] = len(data)
    data.counts = counts
    log.info("V-O data set: %s", counts)
    return data
