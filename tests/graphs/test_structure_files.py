"""Structure files are data: a pymatgen JSON/YAML marker that names another Python object is
refused before anything is imported, and a file that would be read wrong (several structures,
a POSCAR without element names, a placeholder species) is refused by name.

The probe is a module on the path that leaves a file behind when it is imported, as a module
planted next to the data would run its code: each refusal test checks that it never was."""

from __future__ import annotations

import gzip
import json
import sys

import numpy as np
import pytest
from ase.io import write as ase_write
from monty.json import MontyEncoder
from pymatgen.core import Lattice, Structure
from pymatgen.io.ase import AseAtomsAdaptor

from matgnn.graphs import build_graph
from matgnn.graphs.structure_json import check_markers, structure_from_dict
from matgnn.graphs.structures import StructureRefused, to_structure
from tests.marker_probe import PAYLOADS, PROBE, crafted, nacl


def test_pymatgen_alone_imports_what_a_structure_json_names(probe, tmp_path):
    """The hole the check closes (and proof that the probe sees an import)."""
    path = tmp_path / "x.json"
    path.write_text(json.dumps(crafted(PAYLOADS["class"])))
    Structure.from_file(path)
    assert probe.exists()


@pytest.mark.parametrize("payload", list(PAYLOADS), ids=list(PAYLOADS))
@pytest.mark.parametrize("suffix", [".json", ".json.gz", ".yaml"])
def test_a_structure_file_naming_another_object_is_refused_unimported(
    probe, tmp_path, payload, suffix
):
    path = tmp_path / f"evil{suffix}"
    text = json.dumps(crafted(PAYLOADS[payload]))  # JSON is YAML too
    if suffix.endswith(".gz"):
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    with pytest.raises(StructureRefused, match=rf"^{path}: /sites/1/properties/note.*{PROBE}"):
        to_structure(path)
    with pytest.raises(ValueError, match="only pymatgen's structure"):
        structure_from_dict(crafted(PAYLOADS[payload]), "row 7")
    assert not probe.exists() and PROBE not in sys.modules


def test_pymatgen_json_and_yaml_structures_read_as_before(tmp_path):
    """What pymatgen writes (a Lattice marker, site properties, in JSON a numpy array in monty's
    form) reads back to the same structure."""
    structure = nacl()
    structure.add_site_property("magmom", [0.5, -0.5])
    path = tmp_path / "NaCl.yaml"
    structure.to(filename=str(path))
    read, name = to_structure(path)
    assert name == str(path) and read == structure
    assert read.site_properties["magmom"] == [0.5, -0.5]
    structure.add_site_property("vector", [np.array([1.0, 2.0]), np.array([3.0, 4.0])])
    path = tmp_path / "NaCl.json"
    path.write_text(json.dumps(structure.as_dict(), cls=MontyEncoder))  # as monty writes it
    assert '"@module": "numpy"' in path.read_text()
    read, _ = to_structure(path)
    assert read == structure
    np.testing.assert_array_equal(read.site_properties["vector"][1], [3.0, 4.0])
    check_markers(json.loads(path.read_text()), "ok")  # no error


def test_a_json_file_that_is_no_structure_is_still_read_by_ase(tmp_path):
    """ASE's own JSON (a database file) is not a pymatgen structure dict: ASE reads it, as
    before the check."""
    path = tmp_path / "atoms.json"
    ase_write(path, AseAtomsAdaptor.get_atoms(nacl()), format="json")
    structure, _ = to_structure(path)
    assert structure.composition.reduced_formula == "NaCl"


def test_a_cif_of_several_structures_is_refused(tmp_path):
    """pymatgen would read the first block only."""
    one = nacl().to(fmt="cif")
    two = Structure(Lattice.cubic(4.2), ["Mg", "O"], [[0, 0, 0], [0.5, 0.5, 0.5]]).to(fmt="cif")
    path = tmp_path / "two.cif"
    path.write_text(one + "\n" + two)
    with pytest.raises(StructureRefused, match=r"two.cif: holds 2 structures \(CIF data blocks\)"):
        to_structure(path)
    with pytest.raises(StructureRefused, match="holds 2 structures"):
        to_structure(one + "\n" + two, name="pasted")
    assert len(to_structure(one, name="one")[0]) == 2  # one block: read as before


def test_a_multi_frame_extxyz_is_refused(tmp_path):
    """ASE would read the last frame only."""
    atoms = AseAtomsAdaptor.get_atoms(nacl())
    moved = atoms.copy()
    moved.positions[1] += 0.1
    path = tmp_path / "frames.extxyz"
    ase_write(path, [atoms, moved], format="extxyz")
    with pytest.raises(StructureRefused, match=r"frames.extxyz: holds 2 structures \(frames\)"):
        to_structure(path)
    single = tmp_path / "single.extxyz"
    ase_write(single, atoms, format="extxyz")
    assert to_structure(single)[0].composition.reduced_formula == "NaCl"


def test_a_poscar_without_element_names_is_refused(tmp_path):
    """pymatgen would read a VASP 4 POSCAR's atoms as H and He."""
    vasp4 = "NaCl\n1.0\n5.64 0 0\n0 5.64 0\n0 0 5.64\n1 1\nDirect\n0 0 0\n0.5 0.5 0.5\n"
    path = tmp_path / "POSCAR"
    path.write_text(vasp4)
    with pytest.raises(StructureRefused, match="POSCAR names no elements"):
        to_structure(path)
    with pytest.raises(StructureRefused, match="POSCAR names no elements"):
        to_structure(vasp4, name="text")
    vasp5 = vasp4.replace("1 1\n", "Na Cl\n1 1\n")
    path.write_text(vasp5)
    assert to_structure(path)[0].composition.reduced_formula == "NaCl"


def test_a_placeholder_species_is_refused_by_site():
    """pymatgen gives a dummy species the hash of its symbol as Z (a different number in each
    process): refused, never embedded as an element."""
    structure = Structure(Lattice.cubic(5.64), ["Na", "X"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    with pytest.raises(ValueError, match=r"^dummy: site 1 has unknown element X"):
        build_graph(structure, name="dummy")


def test_a_yaml_structure_that_repeats_itself_without_end_is_refused(tmp_path):
    """YAML aliases make a small file a huge (or cyclic) document: bounded, refused by name."""
    document = json.dumps(nacl().as_dict())
    cyclic = tmp_path / "cyclic.yaml"
    cyclic.write_text(document[:-1] + ', "loop": &a [*a]}')
    with pytest.raises(StructureRefused, match=r"cyclic.yaml: more than 1,000,000 values"):
        to_structure(cyclic)
    laughs = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for k in range(1, 9):
        laughs.append(f"a{k}: &a{k} [" + ", ".join([f"*a{k - 1}"] * 10) + "]")
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(document[:-1] + ', "bomb": {' + ", ".join(laughs) + "}}")
    with pytest.raises(StructureRefused, match=r"bomb.yaml: more than 1,000,000 values"):
        to_structure(bomb)


def test_an_unreadable_data_file_is_named(tmp_path):
    from matgnn.graphs.structure_json import read_json_document

    truncated = tmp_path / "cut.json.gz"
    truncated.write_bytes(gzip.compress(json.dumps(nacl().as_dict()).encode())[:40])
    with pytest.raises(ValueError, match=r"cut.json.gz: not readable as JSON"):
        read_json_document(truncated)


def test_odd_documents_are_refused_in_words_not_by_a_type_error():
    check_markers(5, "number")  # names nothing
    check_markers("text", "string")
    with pytest.raises(ValueError, match=r"odd: /0 names the Python object"):
        check_markers([{"@module": ["os"], "@class": "X"}], "odd")
