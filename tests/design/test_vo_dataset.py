"""The V-O data set (matgnn.design.vo_dataset): every binary substituted both ways in its own
cell, the paper's size filters, the known V-O structures flagged with their DFT energies, and no
model label presented as DFT."""

from __future__ import annotations

from pymatgen.core import Lattice, Structure

from matgnn.design.images import ImageSpec
from matgnn.design.vo_dataset import (
    ASSIGNMENTS,
    binary_elements,
    build_vo_dataset,
    substituted,
    vo_sample,
)


def test_binary_elements_reads_the_cif_formula():
    cif = Structure(Lattice.cubic(4.2), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]]).to(fmt="cif")
    assert binary_elements(cif) == ("Na", "Cl")  # less electronegative first
    ternary = Structure(Lattice.cubic(4), ["Sr", "Ti", "O"], [[0, 0, 0], [0.5] * 3, [0.5, 0.5, 0]])
    assert binary_elements(ternary.to(fmt="cif")) is None


def test_both_assignments_keep_the_cell_and_the_sites():
    corundum_like = Structure(
        Lattice.hexagonal(4.8, 13.0),
        ["Al", "Al", "O", "O", "O"],
        [[0, 0, 0.35], [0, 0, 0.85], [0.3, 0, 0.25], [0, 0.3, 0.25], [0.7, 0.7, 0.25]],
    )
    v_on_al = substituted(corundum_like, "Al", "O", ASSIGNMENTS[0])
    o_on_al = substituted(corundum_like, "Al", "O", ASSIGNMENTS[1])
    assert v_on_al.composition.reduced_formula == "V2O3"
    assert o_on_al.composition.reduced_formula == "V3O2"
    for made in (v_on_al, o_on_al):
        assert made.lattice == corundum_like.lattice
        assert (made.frac_coords == corundum_like.frac_coords).all()


def test_the_shipped_sample_labels_only_known_structures_with_dft():
    data = vo_sample()
    spec = ImageSpec()
    assert len(data) == 200 and len(set(data.ids)) == 200
    assert sum(data.known) == data.counts["known_vo"] == 14
    for sid, structure, known, energy in zip(
        data.ids, data.structures, data.known, data.dft_formation_energy, strict=True
    ):
        assert {e.symbol for e in structure.composition} <= {"V", "O"}, sid
        assert len(structure) <= spec.max_sites and max(structure.lattice.abc) <= spec.max_length
        # a substituted structure has no DFT energy; a known one has MP's (negative for V-O)
        assert (energy is not None) == known, sid
        if known:
            assert energy < 0, sid


def _check_counts(data, rows):
    c = data.counts
    assert c["mp_rows"] == rows and 0 < c["binaries_kept"] <= c["binaries"] < rows
    assert c["substituted"] == 2 * (c["binaries_kept"] - c["known_vo"]) - c["same_both_ways"]
    assert c["structures"] == len(data) == c["substituted"] + c["known_vo"]
    spec = ImageSpec()
    for structure in data.structures:
        assert len(structure) <= spec.max_sites and max(structure.lattice.abc) <= spec.max_length


def test_the_rebuild_from_the_shipped_mp_rows(mini_data_dir):
    """The loader's own code path on the 40 MP rows shipped in tests/data/mini, whose
    rock-salt-like binaries give the same crystal both ways: kept once (in CI too)."""
    data = build_vo_dataset(mini_data_dir)
    _check_counts(data, 40)
    assert data.counts["same_both_ways"] > 0 and len(set(data.ids)) == len(data.ids)


def test_the_rebuild_from_the_mp_binaries(shared_data_dir):
    """The first 3,000 rows of the full MP table: counts add up, some binaries (rock-salt-like)
    give the same crystal both ways and are kept once."""
    data = build_vo_dataset(shared_data_dir, limit=3000)
    _check_counts(data, 3000)
    assert data.counts["same_both_ways"] > 0
