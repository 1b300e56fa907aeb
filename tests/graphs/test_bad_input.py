"""Bad input gets a ValueError that names the structure and the problem."""

from __future__ import annotations

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from matgnn.graphs import GraphConfig, build_graph


def nacl() -> Structure:
    return Structure(Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])


def test_empty_structure() -> None:
    with pytest.raises(ValueError, match=r"^mp-empty: empty structure"):
        build_graph(Structure(Lattice.cubic(4.0), [], []), name="mp-empty")


def test_zero_volume() -> None:
    flat = Lattice([[4.0, 0, 0], [0, 4.0, 0], [4.0, 4.0, 0]])
    with pytest.raises(ValueError, match=r"^flat: zero cell volume"):
        build_graph(Structure(flat, ["Na"], [[0, 0, 0]]), name="flat")


def test_negative_volume() -> None:
    left = Lattice([[4.0, 0, 0], [0, 4.0, 0], [0, 0, -4.0]])
    with pytest.raises(ValueError, match=r"^lefty: negative cell volume"):
        build_graph(Structure(left, ["Na"], [[0, 0, 0]]), name="lefty")


def test_nan_lattice() -> None:
    bad = Lattice([[np.nan, 0, 0], [0, 4.0, 0], [0, 0, 4.0]])
    with pytest.raises(ValueError, match=r"^nanlat: lattice contains NaN"):
        build_graph(Structure(bad, ["Na"], [[0, 0, 0]]), name="nanlat")


def test_nan_coordinates() -> None:
    s = Structure(Lattice.cubic(4.0), ["Na", "Cl"], [[0, 0, 0], [np.nan, 0.5, 0.5]])
    with pytest.raises(ValueError, match=r"^nancoord: NaN or inf coordinates at sites \[1\]"):
        build_graph(s, name="nancoord")


@pytest.mark.parametrize(
    ("lattice", "frac", "problem"),
    [
        ([[np.inf, 0, 0], [0, 4.0, 0], [0, 0, 4.0]], [[0, 0, 0]], "lattice contains NaN or inf"),
        ([[4.0, 0, 0], [0, 4.0, 0], [0, 0, 4.0]], [[0, np.nan, 0]], "NaN or inf coordinates"),
        ([[4.0, 0, 0], [0, 4.0, 0], [4.0, 4.0, 0]], [[0, 0, 0]], "zero cell volume"),
    ],
)
def test_the_graph_builder_and_the_design_images_refuse_a_cell_alike(lattice, frac, problem):
    """One cell check (``cell_problem``) for both: the same words; only the hand differs."""
    from matgnn.design.images import ImageSpec, RepresentationError, check_structure

    structure = Structure(Lattice(lattice), ["V"], frac)
    with pytest.raises(ValueError, match=rf"^bad: {problem}"):
        build_graph(structure, name="bad")
    with pytest.raises(RepresentationError, match=rf"^bad: {problem}"):
        check_structure(structure, ImageSpec(elements=("V", "O")), name="bad")
    left = Structure(Lattice([[4.0, 0, 0], [0, 4.0, 0], [0, 0, -4.0]]), ["V"], [[0, 0, 0]])
    check_structure(left, ImageSpec(elements=("V", "O")), name="left")  # lengths and angles
    with pytest.raises(ValueError, match=r"^left: negative cell volume"):
        build_graph(left, name="left")


def test_overlapping_atoms() -> None:
    s = Structure(Lattice.cubic(4.0), ["Na", "Cl"], [[0, 0, 0], [0.01, 0, 0]])
    with pytest.raises(ValueError, match=r"^overlap: overlapping atoms: atom 0 \(Na\)"):
        build_graph(s, name="overlap")


def test_overlap_across_the_cell_boundary() -> None:
    s = Structure(Lattice.cubic(4.0), ["Na", "Cl"], [[0.001, 0, 0], [0.995, 0, 0]])
    with pytest.raises(ValueError, match="overlapping atoms"):
        build_graph(s, name="wrap")


def test_atom_without_neighbours() -> None:
    s = Structure(Lattice.cubic(30.0), ["Ar"], [[0, 0, 0]])
    with pytest.raises(ValueError, match=r"^lonely: atom 0 \(Z=18\) has no neighbour within 8 Å"):
        build_graph(s, GraphConfig(mode="radius", cutoff=8.0), name="lonely")
    growing = GraphConfig(mode="knn", grow_cutoff=True, keep_ties=True, max_cutoff=24.0)
    with pytest.raises(ValueError, match=r"no neighbour within 24 Å"):
        build_graph(s, growing, name="lonely")


def test_unparsable_cif(tmp_path) -> None:
    path = tmp_path / "broken.cif"
    path.write_text("data_broken\n_cell_length_a 4.0\nloop_\n_atom_site_label\nthis is not\n")
    with pytest.raises(ValueError, match=r"broken\.cif: unparsable structure file"):
        build_graph(path)
    with pytest.raises(ValueError, match=r"^text-1: could not parse structure text"):
        build_graph("data_x\nnonsense\n", name="text-1")


def test_empty_file(tmp_path) -> None:
    path = tmp_path / "empty.cif"
    path.write_text("")
    with pytest.raises(ValueError, match="empty file"):
        build_graph(path)


def test_disordered_site() -> None:
    s = Structure(Lattice.cubic(4.0), [{"Na": 0.5, "K": 0.5}, "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    with pytest.raises(ValueError, match=r"^alloy: site 0 is disordered"):
        build_graph(s, name="alloy")


def test_default_name_is_the_formula() -> None:
    s = Structure(Lattice.cubic(4.0), ["Na", "Cl"], [[0, 0, 0], [0.01, 0, 0]])
    with pytest.raises(ValueError, match=r"^NaCl: overlapping"):
        build_graph(s)


def test_invalid_config_values() -> None:
    with pytest.raises(ValueError, match="mode"):
        GraphConfig(mode="voronoi")
    with pytest.raises(ValueError, match="potentials"):
        GraphConfig(potentials=("yukawa",))
    with pytest.raises(ValueError, match="unknown GraphConfig fields"):
        GraphConfig.from_dict({"cutof": 5.0})
    # 0 would let coincident atoms through (PotNet would take two atoms for one)
    with pytest.raises(ValueError, match=r"min_distance must be > 0, got 0"):
        GraphConfig(min_distance=0)


def test_id_property_names_neighbour_stage_errors() -> None:
    s = Structure(Lattice.cubic(30.0), ["Ar"], [[0, 0, 0]], properties={"id": "mp-lonely"})
    with pytest.raises(ValueError, match=r"^mp-lonely: atom 0 \(Z=18\) has no neighbour"):
        build_graph(s, GraphConfig(mode="radius", cutoff=8.0))
