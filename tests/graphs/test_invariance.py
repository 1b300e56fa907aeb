"""Per-atom neighbour distance lists are invariant to rotation, translation, permutation,
supercell and the choice of lattice basis, for every neighbour mode."""

from __future__ import annotations

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure
from scipy.spatial.transform import Rotation

from matgnn.graphs import GraphConfig, build_graph
from matgnn.graphs.geometry import edge_vectors
from matgnn.testing import other_cell

CONFIGS = {
    "radius": GraphConfig(mode="radius", cutoff=6.0),
    "cgcnn": GraphConfig(mode="knn", cutoff=8.0, max_neighbors=12, symmetric=False),
    "alignn": GraphConfig(
        mode="knn", cutoff=8.0, max_neighbors=12, keep_ties=True, grow_cutoff=True
    ),
}


def distance_lists(structure: Structure, config: GraphConfig) -> list[tuple[float, ...]]:
    """Sorted incoming-edge distances per atom, computed from the stored geometry."""
    with torch_double():
        graph = build_graph(structure, config)
        d = (
            edge_vectors(graph.pos, graph.lattice, graph.edge_index, graph.cell_offset, None)
            .norm(dim=-1)
            .numpy()
        )
    dst = graph.edge_index[1].numpy()
    return [tuple(np.round(np.sort(d[dst == i]), 5)) for i in range(len(structure))]


class torch_double:
    def __enter__(self) -> None:
        import torch

        self.previous = torch.get_default_dtype()
        torch.set_default_dtype(torch.float64)

    def __exit__(self, *exc: object) -> None:
        import torch

        torch.set_default_dtype(self.previous)


def rotated(structure: Structure, seed: int) -> Structure:
    rot = Rotation.random(random_state=seed).as_matrix()
    lattice = Lattice(structure.lattice.matrix @ rot.T)
    return Structure(lattice, structure.species, structure.frac_coords)


def translated(structure: Structure, shift: np.ndarray) -> Structure:
    return Structure(structure.lattice, structure.species, structure.frac_coords + shift)


def other_basis(structure: Structure) -> Structure:
    """Same crystal, lattice basis M @ L with a unimodular integer M; atoms wrapped into it."""
    return other_cell(structure, [[1, 1, 0], [0, 1, 0], [1, -1, 1]])


@pytest.fixture(scope="module")
def structures(mp_structures) -> list[Structure]:
    return [s for s in mp_structures if len(s) <= 12][:6]


@pytest.mark.parametrize("mode", CONFIGS)
def test_rotation_and_translation(structures, mode: str) -> None:
    config = CONFIGS[mode]
    for k, s in enumerate(structures):
        ref = distance_lists(s, config)
        assert distance_lists(rotated(s, k), config) == ref
        assert distance_lists(translated(s, np.array([0.37, -0.21, 0.9])), config) == ref


@pytest.mark.parametrize("mode", CONFIGS)
def test_atom_permutation(structures, mode: str) -> None:
    config = CONFIGS[mode]
    rng = np.random.default_rng(0)
    for s in structures:
        perm = rng.permutation(len(s))
        permuted = Structure(s.lattice, [s.species[i] for i in perm], s.frac_coords[perm])
        ref = distance_lists(s, config)
        assert distance_lists(permuted, config) == [ref[i] for i in perm]


@pytest.mark.parametrize("mode", CONFIGS)
def test_supercell(structures, mode: str) -> None:
    config = CONFIGS[mode]
    for s in structures[:4]:
        ref = sorted(distance_lists(s, config) * 4)
        assert sorted(distance_lists(s * (2, 2, 1), config)) == ref


@pytest.mark.parametrize("mode", CONFIGS)
def test_alternative_lattice_basis(structures, mode: str) -> None:
    config = CONFIGS[mode]
    for s in structures:
        assert sorted(distance_lists(other_basis(s), config)) == sorted(distance_lists(s, config))
