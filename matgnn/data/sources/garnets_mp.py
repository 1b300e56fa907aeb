"""Garnets of a Materials Project snapshot, for Ye et al.'s garnet task (Nat. Commun. 9, 3800,
2018) when their own garnet DFT entries are out of reach.

Ye et al.'s garnet entries (garnetdnn ``data/garnet/*calc_entries*.json``) could not be
retrieved for this project, so the garnet set is rebuilt from the mp36k snapshot
(``<data_dir>/mp36k/mp36k_with_ehull.csv.gz``, MP 2019-2020, CGCNN's id list):

1. **Garnets.** Every crystal of 80 atoms with 12 O per 20 atoms is matched to garnetdnn's
   prototype ``proto_mp-3050.cif`` (Y3Al5O12) with pymatgen's ``StructureMatcher`` and a
   ``FrameworkComparator`` (species ignored, lattice scaled, the default tolerances). A match
   is rewritten in the prototype's site order (``get_s2_like_s1``; stored as pymatgen JSON,
   since a CIF does not keep the site order), so each site's label is the prototype's:
   C (dodecahedral 24c), A (octahedral 16a), D (tetrahedral 24d), O; a match
   whose O-labelled sites do not all hold O is refused.
2. **Oxidation states.** Each element takes one oxidation state among the species that
   garnetdnn's ``binary_oxides_entries_dict.json`` has a binary oxide for (its inconsistent
   ``Yb2+`` key left out), and the cations must balance the O2- anions. ``status``:
   ``ok`` (exactly one assignment), ``no_oxide_species`` (an element none of whose species
   has a binary oxide in that table), ``not_charge_balanced`` (no assignment balances: e.g.
   Na3Co2Ge3O12 needs Co4.5+, Ca3Zn3Te2O12 Te6+, which the table lacks),
   ``ambiguous_oxidation_states`` (several),
   ``no_oxide_reference`` (the binary oxide of the assigned species is not in the snapshot).
3. **Target.** Ef relative to the binary oxides as Ye et al. define it, per atom, from MP
   formation energies instead of their uncorrected total energies:
   ``Ef = E_f(garnet) - sum_el (n_el / n_el,oxide) E_f(oxide of el) N_oxide / N``, with each
   oxide's lowest MP formation energy of that reduced formula in the same snapshot
   (:func:`matgnn.analysis.stability.formation_energy_vs_oxides`). The elemental references
   cancel exactly (the O count balances) and so do MP's per-O-atom oxide correction and its
   per-cation U corrections (same cations, same counts); what remains is the difference
   between these MP calculations and Ye et al.'s.

The result ships in ``matgnn/resources/ye2018/ye2018_garnet_mp36k.csv.gz`` with the oxide
references it used (``ye2018_garnet_mp36k_oxides.csv``) and its provenance
(``ye2018_garnet_mp36k.md``); ``python -m matgnn.data.sources.garnets_mp --data-dir <dir>``
rebuilds it from a local copy of the snapshot. :func:`matgnn.data.sources.ye2018.ye2018_garnet`
reads it.
"""

from __future__ import annotations

import argparse
import itertools
import json
import warnings
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from pymatgen.core import Composition, Lattice, Species, Structure

from matgnn.analysis.stability import (
    OxideReference,
    formation_energies_of,
    formation_energy_vs_oxides,
    oxide_references,
)

SITE_LABELS = ("C", "A", "D")
ANION = "O"
#: garnetdnn maps Yb2+ to a Yb2O3 entry (inconsistent); see ../shared/data/ye2018/README.md
EXCLUDED_SPECIES = frozenset({"Yb2+"})
TABLE = "ye2018_garnet_mp36k.csv.gz"
OXIDES = "ye2018_garnet_mp36k_oxides.csv"
PROVENANCE = "ye2018_garnet_mp36k.md"


def prototype_labels(proto: Structure) -> list[str]:
    """The site label (C, A, D, O) of every site of garnetdnn's Y3Al5O12 prototype."""
    from matgnn.data.sources.ye2018 import GARNET_SITES, site_labels

    return site_labels(proto, GARNET_SITES)


def garnet_matcher():
    from pymatgen.analysis.structure_matcher import FrameworkComparator, StructureMatcher

    return StructureMatcher(
        comparator=FrameworkComparator(), primitive_cell=False, scale=True, attempt_supercell=False
    )


def garnet_like_formula(composition: Composition) -> bool:
    """80 atoms (4 formula units of C3A2D3O12) with 12 O per 20 atoms."""
    return composition.num_atoms == 80 and composition[ANION] == 48


def match_garnet(structure: Structure, proto: Structure, matcher=None) -> Structure | None:
    """``structure`` with its sites in the prototype's order, or ``None`` when it is not on
    the garnet framework or its O-labelled sites do not all hold O."""
    matcher = matcher or garnet_matcher()
    if len(structure) != len(proto) or not matcher.fit(proto, structure):
        return None
    ordered = matcher.get_s2_like_s1(proto, structure)
    if ordered is None:
        return None
    if float(np.linalg.det(ordered.lattice.matrix)) < 0:
        # the matcher's basis can be left-handed; -M with -f keeps every Cartesian position
        ordered = Structure(Lattice(-ordered.lattice.matrix), ordered.species, -ordered.frac_coords)
    labels = prototype_labels(proto)
    if any(
        (site.specie.symbol == ANION) != (label == ANION)
        for site, label in zip(ordered, labels, strict=True)
    ):
        return None
    return ordered


def site_elements(ordered: Structure, labels: Sequence[str]) -> dict[str, Counter]:
    """``{label: Counter(element: count)}`` of a structure in prototype order."""
    sites: dict[str, Counter] = {label: Counter() for label in SITE_LABELS}
    for site, label in zip(ordered, labels, strict=True):
        if label != ANION:
            sites[label][site.specie.symbol] += 1
    return sites


def oxidation_assignments(composition: Composition, species: Iterable[str]) -> list[dict[str, int]]:
    """Every ``{element: oxidation state}`` (one state per cation element, from ``species``)
    whose cations balance the O2- anions."""
    options: dict[str, list[int]] = {}
    for text in species:
        if text in EXCLUDED_SPECIES:
            continue
        sp = Species.from_str(text)
        options.setdefault(sp.symbol, []).append(int(sp.oxi_state))
    cations = [el.symbol for el in composition if el.symbol != ANION]
    if any(el not in options for el in cations):
        return []
    anion_charge = 2 * composition[ANION]
    found = []
    for states in itertools.product(*(sorted(options[el]) for el in cations)):
        charge = sum(q * composition[el] for el, q in zip(cations, states, strict=True))
        if abs(charge - anion_charge) < 1e-6:
            found.append(dict(zip(cations, states, strict=True)))
    return found


def site_text(counts: Counter, oxidation: Mapping[str, int]) -> str:
    """``"Ca2+:0.6667;Na+:0.3333"``: species and fraction of one site, minority last
    (the format of ``ye2018_perovskite_ef.csv``)."""
    total = sum(counts.values())
    return ";".join(
        f"{Species(el, oxidation[el])}:{n / total:.6g}"
        for el, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    )


def describe(
    mp_id: str,
    ordered: Structure,
    labels: Sequence[str],
    formation_energy_per_atom: float,
    oxide_species: Iterable[str],
    refs: Mapping[str, OxideReference],
) -> dict:
    """One row of the garnet table for a matched crystal."""
    composition = ordered.composition
    sites = site_elements(ordered, labels)
    row = {
        "mp_id": mp_id,
        "formula": composition.reduced_formula,
        "n_atoms": len(ordered),
        "mixed": "+".join(label for label in SITE_LABELS if len(sites[label]) > 1) or "none",
        "formation_energy_per_atom_mp": formation_energy_per_atom,
    }
    known = {Species.from_str(t).symbol for t in oxide_species if t not in EXCLUDED_SPECIES}
    unknown = sorted(el.symbol for el in composition if el.symbol not in known | {ANION})
    if unknown:
        return {**row, "status": "no_oxide_species", "missing_oxides": " ".join(unknown)}
    assignments = oxidation_assignments(composition, oxide_species)
    if not assignments:
        return {**row, "status": "not_charge_balanced"}
    if len(assignments) > 1:
        alternatives = [" ".join(f"{Species(e, q)}" for e, q in a.items()) for a in assignments]
        return {
            **row,
            "status": "ambiguous_oxidation_states",
            "oxidation_states": " | ".join(alternatives),
        }
    oxidation = assignments[0]
    species_counts = {str(Species(el, q)): composition[el] for el, q in oxidation.items()}
    row.update(
        {f"{label}_site_species": site_text(sites[label], oxidation) for label in SITE_LABELS}
    )
    row["oxidation_states"] = " ".join(sorted(species_counts))
    missing = [s for s in species_counts if s not in refs]
    if missing:
        return {**row, "status": "no_oxide_reference", "missing_oxides": " ".join(missing)}
    row["oxide_mp_ids"] = " ".join(f"{s}={refs[s].mp_id}" for s in sorted(species_counts))
    row["ef_vs_binary_oxides_eV_per_atom"] = formation_energy_vs_oxides(
        species_counts, formation_energy_per_atom, refs, composition.num_atoms
    )
    row["status"] = "ok"
    return row


def build_garnet_table(data_dir: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The garnet table and the oxide references it used, from ``<data_dir>/mp36k`` and
    ``<data_dir>/ye2018/binary_oxides_entries_dict.json``."""
    from matgnn.data.sources.ye2018 import prototype

    data_dir = Path(data_dir)
    snapshot = data_dir / "mp36k" / "mp36k_with_ehull.csv.gz"
    oxides_file = data_dir / "ye2018" / "binary_oxides_entries_dict.json"
    for path in (snapshot, oxides_file):
        if not path.is_file():
            raise FileNotFoundError(f"garnet set: {path} not found (set --data-dir)")
    oxides = {
        species: Composition(entry["composition"])
        for species, entry in json.loads(oxides_file.read_text()).items()
        if species not in EXCLUDED_SPECIES
    }
    frame = pd.read_csv(snapshot, usecols=["mp_id", "formation_energy_per_atom", "cif"])
    phases = formation_energies_of(frame, str(snapshot))  # formulas read from the CIFs
    refs = oxide_references(oxides, phases)
    proto = prototype("garnet")
    labels = prototype_labels(proto)
    matcher = garnet_matcher()
    rows = []
    for mp_id, formula, energy, cif in zip(
        phases["mp_id"],
        phases["formula"],
        phases["formation_energy_per_atom"],
        frame["cif"],
        strict=True,
    ):
        if not garnet_like_formula(Composition(formula)):
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            structure = Structure.from_str(cif, fmt="cif")
        ordered = match_garnet(structure, proto, matcher)
        if ordered is None:
            continue
        row = describe(mp_id, ordered, labels, float(energy), oxides, refs)
        row["structure"] = json.dumps(ordered.as_dict(), separators=(",", ":"))
        rows.append(row)
    table = pd.DataFrame(rows).sort_values("mp_id", kind="stable").reset_index(drop=True)
    used = sorted({s for text in table["oxidation_states"].dropna() for s in text.split()
                   if "|" not in s and s in refs})  # fmt: skip
    references = pd.DataFrame(
        [
            {
                "species": s,
                "oxide": refs[s].oxide.reduced_formula,
                "mp_id": refs[s].mp_id,
                "formation_energy_per_atom": refs[s].formation_energy_per_atom,
            }
            for s in used
        ]
    )
    return table, references


def read_oxide_references(path: str | Path) -> dict[str, OxideReference]:
    """The oxide references stored next to a garnet table."""
    frame = pd.read_csv(path)
    return {
        r.species: OxideReference(
            r.species, Composition(r.oxide), r.mp_id, float(r.formation_energy_per_atom)
        )
        for r in frame.itertuples(index=False)
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", required=True, help="folder holding mp36k/ and ye2018/")
    parser.add_argument("--out", default=None, help="output folder (default: the package's)")
    args = parser.parse_args(argv)
    from importlib import resources

    out = Path(args.out) if args.out else Path(str(resources.files("matgnn.resources"))) / "ye2018"
    table, references = build_garnet_table(args.data_dir)
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / TABLE, index=False)
    references.to_csv(out / OXIDES, index=False)
    counts = table["status"].value_counts().to_dict()
    print(f"{len(table)} garnets matched: {counts}; written to {out / TABLE}")


if __name__ == "__main__":
    main()
