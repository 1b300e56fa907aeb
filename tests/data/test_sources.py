"""Data sources: matbench ids and official folds, Chen phonon DOS, JARVIS, perov_5, Ye 2018.

Every local-copy loader runs on ``tests/data/mini`` (``mini_data_dir``: small real subsets in
the layout of ``../shared/data``). Tests that check the full sets' sizes use the
``shared_data_dir`` fixture (skipped on a clone without it); the rest run on shipped files or
files written here.
"""

from __future__ import annotations

from importlib import resources

import numpy as np
import pandas as pd
import pytest
from matminer.utils.io import store_dataframe_as_json
from pymatgen.core import Composition, Lattice, Species, Structure
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
    ye2018_garnet_substituted,
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

    # a seeded random sample keeps rows in the file's order, their targets and their folds
    sampled = matbench("matbench_mp_e_form", fold=2, data_dir=tmp_path, sample=10, sample_seed=3)
    assert len(sampled.ids) == 10 and sampled.ids == sorted(sampled.ids)
    assert sampled.ids != records.ids[:10] and sampled.name.endswith("-sample10seed3")
    again = matbench("matbench_mp_e_form", fold=2, data_dir=tmp_path, sample=10, sample_seed=3)
    assert again.ids == sampled.ids
    other = matbench("matbench_mp_e_form", fold=2, data_dir=tmp_path, sample=10, sample_seed=4)
    assert other.ids != sampled.ids  # the seed draws the rows
    row = {sid: k for k, sid in enumerate(records.ids)}
    np.testing.assert_allclose(sampled.targets["e_form"], e_form[[row[sid] for sid in sampled.ids]])
    assert set(sampled.split["train"]) | set(sampled.split["test"]) == set(sampled.ids)
    assert sampled.split["test"] == [i for i in fold.test if i in set(sampled.ids)]
    with pytest.raises(ValueError, match="choose one"):
        matbench("matbench_mp_e_form", data_dir=tmp_path, limit=5, sample=5)
    with pytest.raises(ValueError, match="sample=41 of a copy with 40 rows"):
        matbench("matbench_mp_e_form", data_dir=tmp_path, sample=41)


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


def test_local_copy_loaders_read_the_shipped_subsets(mini_data_dir):
    """The same loaders as on ../shared/data, on the first rows of each file: every record has
    its target and sits in exactly one split of the source's own split files."""
    from matgnn.data.sources.cdvae import cdvae_perov5
    from matgnn.data.sources.jarvis import jarvis_dft3d
    from matgnn.data.sources.mp import mp2018
    from matgnn.data.sources.phonon import chen2021_phonon_dos
    from matgnn.data.sources.tensors import born_charges
    from matgnn.data.sources.ye2018 import ye2018_perovskite

    def one_split_each(records) -> None:
        members = [i for ids in records.split.values() for i in ids]
        assert sorted(members) == sorted(records.ids)

    chen = chen2021_phonon_dos(mini_data_dir)
    assert chen.targets["phdos"].shape == (40, 51)
    np.testing.assert_allclose(chen.targets["phdos"].max(axis=1), 1.0)
    one_split_each(chen)  # rows 0-39 of the full table, split by Chen's own index files
    for target in ("formation_energy_peratom", "ehull"):
        jarvis = jarvis_dft3d(target, mini_data_dir)
        assert len(jarvis.ids) >= 30 and np.isfinite(jarvis.targets[target]).all()
        one_split_each(jarvis)
    perov = cdvae_perov5("heat_ref", mini_data_dir)
    assert {k: len(v) for k, v in perov.split.items()} == {"train": 13, "val": 13, "test": 13}
    mp = mp2018(mini_data_dir, "formation_energy_per_atom")
    assert len(mp.ids) == 40 and mp.ids[0].startswith("mp-")
    born = born_charges(mini_data_dir)
    assert len(born.ids) == 40
    for becs in born.targets["becs"][:5]:
        np.testing.assert_allclose(np.asarray(becs).sum(axis=0), 0.0, atol=1e-6)  # sum rule
    ye = ye2018_perovskite(mini_data_dir, mixed=False)
    assert len(ye.ids) == 244


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


def test_substituted_garnet_loader_says_the_data_is_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="garnet entries could not be retrieved"):
        ye2018_garnet_substituted(tmp_path)


def test_shipped_garnets_are_labelled_mp_crystals_with_their_oxide_energy():
    from matgnn.data.sources.garnets_mp import OXIDES, TABLE, read_oxide_references
    from matgnn.data.sources.ye2018 import YE_DIR

    folder = resources.files("matgnn.resources") / YE_DIR
    table = pd.read_csv(folder / TABLE).set_index("mp_id")
    refs = read_oxide_references(folder / OXIDES)
    records = ye2018_garnet()
    assert len(records.ids) == 46 and len(ye2018_garnet(mixed=False).ids) == 35
    yag = records.structures[list(records.ids).index("mp-3050")]
    labels = yag.site_properties["prototype_site"]
    assert [yag[i].specie.symbol for i, lab in enumerate(labels) if lab == "C"] == ["Y"] * 12
    assert {yag[i].specie.symbol for i, lab in enumerate(labels) if lab in "AD"} == {"Al"}
    assert set(yag.site_properties["oxidation_state"]) == {3, -2}
    # Y3Al5O12 by hand: 3/2 Y2O3 + 5/2 Al2O3 per 20 atoms
    row = table.loc["mp-3050"]
    by_hand = (
        row["formation_energy_per_atom_mp"]
        - (
            1.5 * 5 * refs["Y3+"].formation_energy_per_atom
            + 2.5 * 5 * refs["Al3+"].formation_energy_per_atom
        )
        / 20
    )
    assert row["ef_vs_binary_oxides_eV_per_atom"] == pytest.approx(by_hand, abs=1e-12)
    # every target by plain arithmetic from the stored numbers (not the library's function):
    # the cations of the 80-atom cell as the stored oxides, per atom
    oxides = pd.read_csv(folder / OXIDES).set_index("species")
    for mp_id, target, structure in zip(
        records.ids, records.targets["ef_vs_binary_oxides"], records.structures, strict=True
    ):
        assert sum(structure.site_properties["oxidation_state"]) == 0, mp_id
        oxide_energy = 0.0
        for site, ox in zip(structure, structure.site_properties["oxidation_state"], strict=True):
            if ox < 0:
                continue
            oxide = Composition(oxides.loc[str(Species(site.specie.symbol, ox)), "oxide"])
            per_cation = oxide.num_atoms / oxide[site.specie.symbol]  # Al2O3: 2.5 atoms per Al
            oxide_energy += (
                per_cation
                * oxides.loc[str(Species(site.specie.symbol, ox)), "formation_energy_per_atom"]
            )
        expected = table.loc[mp_id, "formation_energy_per_atom_mp"] - oxide_energy / len(structure)
        assert target == pytest.approx(expected, abs=1e-9), mp_id


def test_a_left_handed_match_is_rewritten_with_the_same_atoms():
    """StructureMatcher may return the match in a left-handed basis (pymatgen accepts
    |det| = 1); match_garnet turns it right-handed without moving an atom."""
    from matgnn.data.sources.garnets_mp import match_garnet

    proto = prototype("garnet")
    mirrored = Structure(Lattice(-proto.lattice.matrix), proto.species, -proto.frac_coords)
    assert np.linalg.det(mirrored.lattice.matrix) < 0

    class Matcher:  # stands in for StructureMatcher: the match comes back left-handed
        def fit(self, a, b):
            return True

        def get_s2_like_s1(self, a, b):
            return mirrored

    ordered = match_garnet(proto, proto, Matcher())
    assert np.linalg.det(ordered.lattice.matrix) > 0
    np.testing.assert_allclose(ordered.cart_coords, proto.cart_coords, atol=1e-9)
    assert ordered.species == proto.species


def test_garnet_set_is_rebuilt_from_a_local_snapshot(tmp_path):
    """build_garnet_table on a small snapshot written here: shipped garnets with their sites
    shuffled and their cells changed (another basis of the same lattice), the oxides as
    formula-only rows, one non-garnet of 80 atoms (a garnet with its O moved onto a cation
    site) and one uncomputable garnet."""
    import gzip
    import json

    from matgnn.data.sources.garnets_mp import OXIDES, TABLE, build_garnet_table
    from matgnn.data.sources.ye2018 import YE_DIR

    folder = resources.files("matgnn.resources") / YE_DIR
    shipped = pd.read_csv(folder / TABLE).set_index("mp_id")
    oxides = pd.read_csv(folder / OXIDES)
    keep = ["mp-3050", "mp-6008", "mp-677095", "mp-1013794"]  # YAG, grossular, C-mixed, Co4.5+
    rng = np.random.default_rng(0)
    rows = []
    for mp_id in keep:
        s = Structure.from_dict(json.loads(shipped.loc[mp_id, "structure"]))
        order = rng.permutation(len(s))
        s = Structure(s.lattice, [s[i].specie for i in order], s.frac_coords[order])
        s.make_supercell([[1, 1, 0], [0, 1, 0], [0, 0, 1]])  # det 1: another basis, 80 atoms
        assert len(s) == 80 and not np.allclose(s.lattice.abc, s.lattice.abc[0])
        rows.append((mp_id, shipped.loc[mp_id, "formation_energy_per_atom_mp"], s.to(fmt="cif")))
    broken = Structure.from_dict(json.loads(shipped.loc["mp-3050", "structure"]))
    broken.replace(0, "O")  # a C site holds O, an O site ...
    broken.replace(40, "Y")  # ... holds Y: same formula, not the garnet's site occupancy
    rows.append(("mp-broken", -3.0, broken.to(fmt="cif")))
    for r in oxides.itertuples(index=False):
        formula = Composition(r.oxide).formula.replace(" ", " ")
        rows.append((r.mp_id, r.formation_energy_per_atom, f"_chemical_formula_sum '{formula}'\n"))
    snapshot = tmp_path / "mp36k"
    snapshot.mkdir()
    frame = pd.DataFrame(rows, columns=["mp_id", "formation_energy_per_atom", "cif"])
    with gzip.open(snapshot / "mp36k_with_ehull.csv.gz", "wt") as f:
        frame.to_csv(f, index=False)
    (tmp_path / "ye2018").mkdir()
    entries = {s: {"composition": Composition(o).as_dict()} for s, o in zip(
        oxides["species"], oxides["oxide"], strict=True
    )}  # fmt: skip
    entries["Co2+"] = {"composition": {"Co": 1, "O": 1}}
    entries["Co3+"] = {"composition": {"Co": 2, "O": 3}}
    (tmp_path / "ye2018" / "binary_oxides_entries_dict.json").write_text(json.dumps(entries))
    table, references = build_garnet_table(tmp_path)
    table = table.set_index("mp_id")
    assert sorted(table.index) == sorted(keep)  # the broken one is not a garnet
    assert table.loc["mp-1013794", "status"] == "not_charge_balanced"
    for mp_id in keep[:3]:
        for column in ("C_site_species", "A_site_species", "D_site_species", "mixed", "status"):
            assert table.loc[mp_id, column] == shipped.loc[mp_id, column], (mp_id, column)
        assert table.loc[mp_id, "ef_vs_binary_oxides_eV_per_atom"] == pytest.approx(
            shipped.loc[mp_id, "ef_vs_binary_oxides_eV_per_atom"], abs=1e-12
        )
    assert set(references["species"]) <= set(oxides["species"])
