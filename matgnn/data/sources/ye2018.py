"""Ye et al., Nat. Commun. 9, 3800 (2018): perovskite and garnet formation energies relative to
the binary oxides, with crystals made by substituting a prototype.

Ye et al. computed every composition in a prototype cell (perovskite: the 40-atom Pnma CaTiO3
cell, mp-4019; garnet: the 80-atom Y3Al5O12 primitive cell, mp-3050) and fitted a network on
species descriptors. Their data (materialsvirtuallab/garnetdnn, BSD-3) hold compositions and DFT
energies, not relaxed structures, so the crystals here are the prototypes with the species
substituted site by site: lattice and coordinates are the prototype's (not relaxed), and on a
mixed site the minority species takes the first sites of that site in prototype order (one
ordering; Ye et al. enumerated several and kept the lowest energy). A graph model therefore
sees composition and site occupancy, not relaxation.

Every crystal carries the site properties ``prototype_site`` (``"A"``, ``"B"``, ``"O"``; garnet
``"C"``, ``"A"``, ``"D"``, ``"O"``) and ``oxidation_state``, from which Ye et al.'s own network
reads its descriptors (:mod:`matgnn.graphs.site_descriptors`, ``model=ye2018_net``).

Targets:

* perovskite: ``ye2018_perovskite_ef.csv`` (derived from garnetdnn's
  ``perov_calc_entries.json`` and binary-oxide entries with garnetdnn's own ``get_tote``
  formula; method and provenance in ``../shared/data/matbench_partial/README.md``), rows with
  ``status == ok`` and, by default, the lowest-energy ordering of each composition (656 rows:
  244 unmixed, 260 A-mixed, 152 B-mixed; ``mixed=False`` keeps the unmixed). The whole table
  (62 kB gzipped, BSD-3 as its source) also ships in ``matgnn/resources/ye2018``
  (:func:`ye2018_perovskite_sample`).
* garnet (:func:`ye2018_garnet`): garnetdnn's ``garnet_calc_entries.json`` **was not
  reachable here** (every garnet data blob of garnetdnn is larger than what could be
  retrieved), so the garnet task reads the garnets of the mp36k MP snapshot instead
  (:mod:`matgnn.data.sources.garnets_mp`: 46 relaxed MP garnets, Ef from MP formation
  energies, shipped). :func:`ye2018_garnet_substituted` still reads a table built from
  garnetdnn's entries (``ye2018_garnet_ef.csv``, site columns ``C_site_species``,
  ``A_site_species``, ``D_site_species``) where one is supplied.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
from pymatgen.core import Species, Structure

from matgnn.data.records import Records
from matgnn.graphs.structure_json import structure_from_dict

YE_DIR = "ye2018"
PEROVSKITE_TABLE = "ye2018_perovskite_ef.csv"
GARNET_TABLE = "ye2018_garnet_ef.csv"
TARGET = "ef_vs_binary_oxides_eV_per_atom"  # the column of the table
TARGET_NAME = "ef_vs_binary_oxides"  # the target as the tasks name it (eV/atom)
GARNETDNN_URL = "https://github.com/materialsvirtuallab/garnetdnn"
# Prototype site -> indices of that site in the prototype CIF (checked by the tests with
# pymatgen's SpacegroupAnalyzer: garnet 12c Y, 8a Al (octahedral), 12d Al (tetrahedral)).
PEROVSKITE_SITES = {"A": ("Ca", None), "B": ("Ti", None)}
GARNET_SITES = {"C": ("Y", None), "A": ("Al", range(24, 32)), "D": ("Al", range(12, 24))}


def prototype(name: str) -> Structure:
    """The prototype shipped in ``matgnn/resources/ye2018`` (``perovskite`` or ``garnet``)."""
    file = {"perovskite": "proto_mp-4019.cif", "garnet": "proto_mp-3050.cif"}[name]
    with resources.as_file(resources.files("matgnn.resources") / YE_DIR / file) as path:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return Structure.from_file(path)


def parse_site(text: str) -> dict[str, float]:
    """``"Y3+:0.75;Sm3+:0.25"`` -> ``{"Y": 0.75, "Sm": 0.25}`` (element symbols)."""
    return {Species.from_str(s).symbol: f for s, f in parse_site_species(text).items()}


def parse_site_species(text: str) -> dict[str, float]:
    """``"Y3+:0.75;Sm3+:0.25"`` -> ``{"Y3+": 0.75, "Sm3+": 0.25}`` (species, oxidation kept)."""
    site = {}
    for part in text.split(";"):
        species, fraction = part.split(":")
        site[str(Species.from_str(species))] = float(fraction)
    return site


def site_labels(proto: Structure, sites: Mapping[str, tuple[str, range | None]]) -> list[str]:
    """The site label of every site of a prototype (``"O"`` for the anion sites): the label
    whose (element, indices) in ``sites`` covers it."""
    labels = ["O"] * len(proto)
    for label, (element, indices) in sites.items():
        for i in indices or range(len(proto)):
            if proto[i].specie.symbol == element:
                labels[i] = label
    return labels


def label_sites(
    structure: Structure,
    sites: Mapping[str, tuple[str, range | None]],
    proto: Structure,
    species: Mapping[str, Mapping[str, float]],
    anion: str = "O2-",
) -> Structure:
    """Attach ``prototype_site`` (site label; the anion sites get ``"O"``) and
    ``oxidation_state`` site properties to a crystal made by :func:`substitute`, for models
    that read the site occupancy (:mod:`matgnn.graphs.site_descriptors`)."""
    labels = site_labels(proto, sites)
    oxidation = {
        Species.from_str(s).symbol: Species.from_str(s).oxi_state
        for site in species.values()
        for s in site
    }
    oxidation[Species.from_str(anion).symbol] = Species.from_str(anion).oxi_state
    structure.add_site_property("prototype_site", labels)
    structure.add_site_property(
        "oxidation_state", [int(oxidation[site.specie.symbol]) for site in structure]
    )
    return structure


def substitute(
    proto: Structure,
    sites: Mapping[str, tuple[str, range | None]],
    occupancy: Mapping[str, Mapping[str, float]],
) -> Structure:
    """Put species on the prototype's sites.

    Args:
        proto: prototype crystal.
        sites: site label -> (prototype element, its indices or ``None`` for every site of it).
        occupancy: site label -> {element: fraction of that site}; fractions must give whole
            numbers of atoms; the minority species takes the first sites in prototype order.
    """
    structure = proto.copy()
    for label, (element, indices) in sites.items():
        members = [i for i in (indices or range(len(proto))) if proto[i].specie.symbol == element]
        counts = {el: f * len(members) for el, f in occupancy[label].items()}
        if any(abs(c - round(c)) > 1e-6 for c in counts.values()) or round(
            sum(counts.values())
        ) != len(members):
            raise ValueError(
                f"site {label}: fractions {dict(occupancy[label])} do not fill {len(members)} sites"
            )
        order = sorted(counts, key=lambda el: (counts[el], el))  # minority first
        labels = [el for el in order for _ in range(round(counts[el]))]
        for index, element_on_site in zip(members, labels, strict=True):
            structure.replace(index, element_on_site)
    return structure


def ye2018_perovskite(
    data_dir: str | Path,
    lowest_energy_only: bool = True,
    limit: int | None = None,
    mixed: bool = True,
) -> Records:
    """Perovskite Ef vs binary oxides (eV/atom) on substituted CaTiO3 prototypes.

    Args:
        data_dir: folder holding ``ye2018/ye2018_perovskite_ef.csv``.
        lowest_energy_only: one row per composition, its lowest-energy ordering.
        limit: keep only the first rows.
        mixed: include the compositions with a mixed A or B site (Ye et al.'s "all"); ``False``
            keeps the unmixed ABO3 only (their "unmixed" model).
    """
    return _perovskite_records(_table(data_dir, PEROVSKITE_TABLE), lowest_energy_only, limit, mixed)


def _perovskite_records(frame, lowest_energy_only, limit, mixed) -> Records:
    frame = frame[frame["status"] == "ok"]
    if lowest_energy_only:
        frame = frame[frame["is_lowest_energy_for_composition"]]
    name = "ye2018_perovskite"
    if not mixed:
        frame, name = frame[frame["mixed"] == "none"], "ye2018_perovskite_unmixed"
    return _records(frame, "perovskite", PEROVSKITE_SITES, name, limit)


def ye2018_perovskite_sample(limit: int | None = None, mixed: bool = True) -> Records:
    """:func:`ye2018_perovskite` on the copy of the table shipped in ``matgnn/resources/ye2018``
    (the whole 3,642-row table, 62 kB gzipped): runs on a fresh clone."""
    with resources.as_file(resources.files("matgnn.resources") / YE_DIR) as folder:
        frame = pd.read_csv(folder / (PEROVSKITE_TABLE + ".gz"))
    records = _perovskite_records(frame, True, limit, mixed)
    records.name = records.name.replace("ye2018_perovskite", "ye2018_perovskite_sample", 1)
    return records


def ye2018_garnet(
    table: str | Path | None = None, mixed: bool = True, limit: int | None = None
) -> Records:
    """Garnet Ef vs binary oxides (eV/atom) on the garnets of the mp36k MP snapshot
    (:mod:`matgnn.data.sources.garnets_mp`: relaxed MP crystals, not substituted prototypes;
    MP formation energies, not Ye et al.'s entries), rows with ``status == ok``.

    Args:
        table: a table written by ``python -m matgnn.data.sources.garnets_mp``; default the
            copy shipped in ``matgnn/resources/ye2018`` (46 garnets, 35 unmixed).
        mixed: include the garnets with a mixed C, A or D site; ``False`` keeps the unmixed
            C3A2D3O12 (Ye et al.'s "unmixed" model).
        limit: keep only the first rows.
    """
    from matgnn.data.sources.garnets_mp import TABLE, site_elements

    if table is None:
        with resources.as_file(resources.files("matgnn.resources") / YE_DIR / TABLE) as path:
            frame = pd.read_csv(path)
    else:
        if not Path(table).is_file():
            raise FileNotFoundError(f"ye2018_garnet: {table} not found")
        frame = pd.read_csv(table)
    frame = frame[frame["status"] == "ok"]
    name = "ye2018_garnet"
    if not mixed:
        frame, name = frame[frame["mixed"] == "none"], "ye2018_garnet_unmixed"
    if limit:
        frame = frame.iloc[:limit]
    labels = site_labels(prototype("garnet"), GARNET_SITES)
    structures = []
    for row in frame.itertuples(index=False):
        structure = structure_from_dict(json.loads(row.structure), f"{name}: {row.mp_id}")
        sites = site_elements(structure, labels) if len(structure) == len(labels) else None
        expected = {label: parse_site(getattr(row, f"{label}_site_species")) for label in "CAD"}
        if (
            sites is None
            or any(set(sites[label]) != set(expected[label]) for label in expected)
            or any(
                s.specie.symbol != "O"
                for s, lab in zip(structure, labels, strict=True)
                if lab == "O"
            )
        ):
            raise ValueError(
                f"ye2018_garnet: {row.mp_id}: the stored structure's sites are not in the garnet "
                f"prototype's order with the site species {expected}"
            )
        oxidation = {Species.from_str(s).symbol: Species.from_str(s).oxi_state
                     for s in row.oxidation_states.split()}  # fmt: skip
        oxidation["O"] = -2
        structure.add_site_property("prototype_site", labels)
        structure.add_site_property(
            "oxidation_state", [int(oxidation[site.specie.symbol]) for site in structure]
        )
        structures.append(structure)
    return Records(
        ids=frame["mp_id"].astype(str).tolist(),
        structures=structures,
        targets={TARGET_NAME: frame[TARGET].to_numpy(dtype=np.float64)},
        name=name + (f"-first{limit}" if limit else ""),
    )


def ye2018_garnet_substituted(data_dir: str | Path, limit: int | None = None) -> Records:
    """Garnet Ef vs binary oxides on substituted Y3Al5O12 prototypes from garnetdnn's own
    entries (``<data_dir>/ye2018/ye2018_garnet_ef.csv``; not available here: see the module
    docstring)."""
    frame = _table(data_dir, GARNET_TABLE)
    return _records(frame[frame["status"] == "ok"], "garnet", GARNET_SITES, "ye2018_garnet", limit)


def _table(data_dir: str | Path, name: str) -> pd.DataFrame:
    path = Path(data_dir) / YE_DIR / name
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found. It is derived from {GARNETDNN_URL} (data/*_calc_entries.json and "
            "binary_oxides_entries_dict.json) with garnetdnn's get_tote formula; the garnet "
            "entries could not be retrieved for this project, so no garnet table exists."
        )
    return pd.read_csv(path)


def _records(frame, kind, sites, name, limit) -> Records:
    if limit:
        frame = frame.iloc[:limit]
    proto = prototype(kind)
    structures = []
    for _, row in frame.iterrows():
        species = {label: parse_site_species(row[f"{label}_site_species"]) for label in sites}
        elements = {label: parse_site(row[f"{label}_site_species"]) for label in sites}
        structures.append(label_sites(substitute(proto, sites, elements), sites, proto, species))
    return Records(
        ids=[f"{kind}-{i}" for i in frame["entry_id"]],
        structures=structures,
        targets={TARGET_NAME: frame[TARGET].to_numpy(dtype=np.float64)},
        name=name + (f"-first{limit}" if limit else ""),
    )
