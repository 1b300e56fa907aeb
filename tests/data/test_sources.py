"""Data sources: matbench ids and official folds, Chen phonon DOS, JARVIS, perov_5, Ye 2018.

Tests that need ``../shared/data`` use the ``shared_data_dir`` fixture (skipped on a clone
without it); the rest run on shipped files or files written here.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matminer.utils.io import store_dataframe_as_json
from pymatgen.core import Composition
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from matgnn.data.samples import mp_sample_frame, mp_sample_structures
from matgnn.data.sources.jarvis import jarvis_atoms_to_structure
from matgnn.data.sources.matbench import matbench, mbids, structure_tasks
from matgnn.data.sources.phonon import phonon_dos_sample
from matgnn.data.sources.ye2018 import (
    GARNET_SITES,
    PEROVSKITE_SITES,
    parse_site,
    prototype,
    substitute,
    ye2018_garnet,
)


def test_structure_tasks_are_the_nine_matbench_structure_tasks():
    assert len(structure_tasks()) == 9
    assert "matbench_mp_e_form" in structure_tasks() and "matbench_steels" not in structure_tasks()


def test_mbids_follow_matbench_data_ops_load():
    assert mbids("matbench_mp_e_form", [0, 41], 132752) == [
        "mb-mp-e-form-000001",
        "mb-mp-e-form-000042",
    ]
    assert mbids("matbench_phonons", [9], 1265) == ["mb-phonons-0010"]


def test_local_full_file_gets_mbids_and_official_folds(tmp_path):
    """A file in the format matminer caches (0-based rows). Its 40 rows are real MP structures
    with their own formation energies, standing in for the first 40 official rows: the test
    checks ids and folds, not the data."""
    _, structures = mp_sample_structures(40)
    e_form = mp_sample_frame()["formation_energy_per_atom"].to_numpy()[:40]
    store_dataframe_as_json(
        pd.DataFrame({"structure": structures, "e_form": e_form}),
        str(tmp_path / "matbench_mp_e_form.json.gz"),
        compression="gz",
    )
    from matbench.task import MatbenchTask

    fold = MatbenchTask("matbench_mp_e_form", autoload=False).validation["fold_2"]
    records = matbench("matbench_mp_e_form", fold=2, data_dir=tmp_path)
    assert records.ids[0] == "mb-mp-e-form-000001" and len(records.ids) == 40
    assert records.split["test"] == [i for i in fold.test if i in set(records.ids)]
    assert set(records.split["train"]) | set(records.split["test"]) == set(records.ids)
    np.testing.assert_allclose(records.targets["e_form"], e_form)


def test_composition_tasks_and_unknown_tasks_are_refused(tmp_path):
    with pytest.raises(ValueError, match="composition task"):
        matbench("matbench_steels", data_dir=tmp_path)
    with pytest.raises(ValueError, match="unknown Matbench task"):
        matbench("matbench_nope", data_dir=tmp_path)


def test_matbench_partial_file_runs_through_the_same_path(shared_data_dir):
    records = matbench("matbench_phonons", fold=0, data_dir=shared_data_dir)
    assert len(records.ids) == 1261  # 4 of 1,265 official rows have no structure
    assert len(records.split["train"]) == 1009 and len(records.split["test"]) == 252
    is_metal = matbench("matbench_mp_is_metal", fold=0, data_dir=shared_data_dir, limit=500)
    assert set(np.unique(is_metal.targets["is_metal"])) == {0, 1}
    assert is_metal.ids[0].startswith("mb-mp-is-metal-")


def test_phonon_dos_sample_keeps_chens_split_and_normalisation():
    records = phonon_dos_sample()
    assert records.targets["phdos"].shape == (400, 51)
    assert {k: len(v) for k, v in records.split.items()} == {"train": 300, "val": 50, "test": 50}
    np.testing.assert_allclose(records.targets["phdos"].max(axis=1), 1.0)
    assert records.ids[0].startswith("mp-") and len(records.structures[0]) > 0


def test_chen_table_and_split_files(shared_data_dir):
    from matgnn.data.sources.phonon import chen2021_phonon_dos

    records = chen2021_phonon_dos(shared_data_dir)
    assert records.targets["phdos"].shape == (1522, 51)
    assert {k: len(v) for k, v in records.split.items()} == {"train": 1192, "val": 141, "test": 189}


def test_jarvis_atoms_dict_to_structure():
    atoms = {
        "lattice_mat": [[4.0, 0, 0], [0, 4.0, 0], [0, 0, 4.0]],
        "elements": ["Na", "Cl"],
        "coords": [[0, 0, 0], [2.0, 2.0, 2.0]],
        "cartesian": True,
    }
    structure = jarvis_atoms_to_structure(atoms)
    np.testing.assert_allclose(structure.frac_coords[1], [0.5, 0.5, 0.5])


def test_jarvis_and_perov5_local_copies(shared_data_dir):
    from matgnn.data.sources.cdvae import cdvae_perov5
    from matgnn.data.sources.jarvis import jarvis_dft3d

    eform = jarvis_dft3d("formation_energy_peratom", shared_data_dir)
    assert len(eform.ids) == 940 and sum(len(v) for v in eform.split.values()) == 940
    perov = cdvae_perov5("heat_ref", shared_data_dir)
    assert {k: len(v) for k, v in perov.split.items()} == {"train": 1024, "val": 3787, "test": 3785}


def test_prototype_sites_are_the_wyckoff_orbits_they_claim():
    garnet = prototype("garnet")
    orbits = SpacegroupAnalyzer(garnet).get_symmetrized_structure().equivalent_indices
    as_sets = {frozenset(o) for o in orbits}
    assert frozenset(GARNET_SITES["A"][1]) in as_sets and frozenset(GARNET_SITES["D"][1]) in as_sets
    assert len(prototype("perovskite")) == 40


def test_substitution_puts_the_right_counts_on_each_site():
    perovskite = substitute(
        prototype("perovskite"),
        PEROVSKITE_SITES,
        {"A": parse_site("Y3+:0.75;Sm3+:0.25"), "B": parse_site("Ga3+:1")},
    )
    assert perovskite.composition == Composition("Sm2Y6Ga8O24")
    grossular = substitute(
        prototype("garnet"), GARNET_SITES, {"C": {"Ca": 1}, "A": {"Al": 1}, "D": {"Si": 1}}
    )
    assert grossular.composition.reduced_formula == Composition("Ca3Al2Si3O12").reduced_formula
    with pytest.raises(ValueError, match="do not fill"):
        substitute(prototype("perovskite"), PEROVSKITE_SITES, {"A": {"Y": 0.3}, "B": {"Ga": 1}})


def test_garnet_loader_says_the_data_is_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="garnet entries could not be retrieved"):
        ye2018_garnet(tmp_path)
