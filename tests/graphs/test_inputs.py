"""Structures from pymatgen, ASE, CIF and POSCAR (paths and text) give the same graph."""

from __future__ import annotations

import torch
from pymatgen.io.ase import AseAtomsAdaptor
from pymatgen.io.cif import CifWriter
from pymatgen.io.vasp import Poscar

from matgnn.graphs import GraphConfig, build_graph

CONFIG = GraphConfig(mode="knn", max_neighbors=8)


def signature(graph) -> list:
    d = torch.linalg.norm(
        graph.pos[graph.edge_index[0]]
        - graph.pos[graph.edge_index[1]]
        + torch.einsum("ei,ij->ej", graph.cell_offset.float(), graph.lattice[0]),
        dim=1,
    )
    return sorted(round(float(x), 4) for x in d)


def test_all_input_kinds_agree(mp_structures, tmp_path) -> None:
    structure = mp_structures[8]
    reference = signature(build_graph(structure, CONFIG))
    cif, poscar = str(CifWriter(structure)), Poscar(structure).get_str()
    (tmp_path / "x.cif").write_text(cif)
    (tmp_path / "POSCAR").write_text(poscar)
    inputs = [
        cif,
        poscar,
        tmp_path / "x.cif",
        str(tmp_path / "POSCAR"),
        AseAtomsAdaptor.get_atoms(structure),
    ]
    for obj in inputs:
        assert signature(build_graph(obj, CONFIG)) == reference


def test_graph_fields(mp_structures) -> None:
    g = build_graph(mp_structures[0], GraphConfig(mode="knn", line_graph=True, keep_ties=True))
    n = len(mp_structures[0])
    assert g.atomic_numbers.dtype == torch.long and g.atomic_numbers.shape == (n,)
    assert g.pos.shape == g.frac_coords.shape == (n, 3)
    assert g.lattice.shape == (1, 3, 3)
    assert g.cell_offset.dtype == torch.long
    assert g.edge_index.shape[1] == g.cell_offset.shape[0] == g.edge_type.shape[0]
    assert g.pos.dtype == torch.get_default_dtype()
    torch.testing.assert_close(g.frac_coords @ g.lattice[0], g.pos)
