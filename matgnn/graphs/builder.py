"""Compose the graph: structure -> (primitive cell) -> neighbours -> lattice edges -> line
graph -> potentials. Every graph is stamped with its config's fingerprint. Site descriptors
(``GraphConfig.site_descriptors``) are read from the labelled input structure itself, before
any change of cell (:mod:`matgnn.graphs.site_descriptors`).

Each step is a small PyG ``BaseTransform`` with one job and one return type (``CrystalGraph``),
tested on its own; :class:`GraphBuilder` chains the ones a :class:`GraphConfig` asks for.
Steps work in float64 and :func:`build_graph` casts to the default dtype at the end.
"""

from __future__ import annotations

import numpy as np
import torch
from pymatgen.core import Composition, Element, Structure
from torch_geometric.transforms import BaseTransform

from matgnn.graphs.config import GraphConfig
from matgnn.graphs.data import EDGE_LATTICE, EDGE_NEIGHBOR, CrystalGraph
from matgnn.graphs.lattice import lattice_self_edges, reduced_basis
from matgnn.graphs.line_graph import line_graph_edges
from matgnn.graphs.neighbors import knn_neighbors, radius_neighbors, symmetrize, tie_weights
from matgnn.graphs.potentials import pair_potential_sums
from matgnn.graphs.site_descriptors import site_descriptor
from matgnn.graphs.structures import (
    StructureLike,
    check_min_distance,
    primitive_cell,
    structure_arrays,
    to_structure,
)

_FLOAT_FIELDS = (
    "pos",
    "frac_coords",
    "lattice",
    "potential_sums",
    "edge_weight",
    "site_descriptor",
)


def _numpy(graph: CrystalGraph, key: str) -> np.ndarray:
    return graph[key].numpy()


def structure_to_graph(structure: Structure, name: str | None = None) -> CrystalGraph:
    """Validated atoms only (no edges), in float64. Fractional coordinates are kept as given."""
    lattice, frac, numbers = structure_arrays(structure, name)
    graph = CrystalGraph(
        atomic_numbers=torch.from_numpy(numbers),
        pos=torch.from_numpy(frac @ lattice),
        frac_coords=torch.from_numpy(frac),
        lattice=torch.from_numpy(lattice).unsqueeze(0),
        edge_index=torch.zeros(2, 0, dtype=torch.long),
        cell_offset=torch.zeros(0, 3, dtype=torch.long),
        edge_type=torch.zeros(0, dtype=torch.long),
    )
    if name is not None:
        graph.name = name
    return graph


def graph_name(graph: CrystalGraph) -> str:
    """The graph's name, or its reduced formula (computed only when an error needs it)."""
    if "name" in graph:
        return str(graph.name)
    symbols = [Element.from_Z(int(z)).symbol for z in graph.atomic_numbers]
    return Composition(" ".join(symbols)).reduced_formula


def site_by_site_cartesian(frac: np.ndarray, lattice: np.ndarray) -> np.ndarray:
    """Cartesian positions computed one site at a time, as pymatgen's ``PeriodicSite.coords``
    computes them for sites given by fractional coordinates (``np.dot(frac_i, lattice)``; sites
    given in Cartesian coordinates keep those). They can differ from ``frac @ lattice`` in the
    last bit, which reorders neighbours tied in distance: the reference CGCNN code reads CIF
    files (fractional coordinates), and its graph (``exact_search``) breaks ties in the order
    of these coordinates."""
    return np.array([np.dot(row, lattice) for row in frac], dtype=np.float64).reshape(-1, 3)


class PeriodicNeighbors(BaseTransform):
    """Neighbour edges ``j -> i`` with integer image offsets (radius or k-NN, see GraphConfig)."""

    def __init__(self, config: GraphConfig) -> None:
        self.config = config

    def forward(self, graph: CrystalGraph) -> CrystalGraph:
        cfg = self.config
        cart, lattice = _numpy(graph, "pos"), _numpy(graph, "lattice")[0]
        num_atoms = cart.shape[0]
        if cfg.exact_search:
            cart = site_by_site_cartesian(_numpy(graph, "frac_coords"), lattice)
        if cfg.mode == "radius":
            nl, cutoff = radius_neighbors(cart, lattice, cfg.cutoff), cfg.cutoff
        else:
            nl, cutoff = knn_neighbors(
                cart,
                lattice,
                cfg.max_neighbors,
                cfg.cutoff,
                keep_ties=cfg.keep_ties,
                grow_cutoff=cfg.grow_cutoff,
                max_cutoff=cfg.max_cutoff,
                tie_tol=cfg.tie_tolerance,
                exact_search=cfg.exact_search,
            )
        # every mode keeps each atom's nearest neighbour, so overlaps show up here
        if nl.distance.size and nl.distance.min() < cfg.min_distance:
            numbers = _numpy(graph, "atomic_numbers")
            check_min_distance(
                nl.center, nl.neighbor, nl.distance, numbers, graph_name(graph), cfg.min_distance
            )
        if cfg.symmetric and cfg.mode == "knn":
            nl = symmetrize(nl, num_atoms, cfg.duplicate_self_images)
        lonely = np.flatnonzero(np.bincount(nl.center, minlength=num_atoms) == 0)
        if lonely.size:
            largest = cfg.max_cutoff if cfg.grow_cutoff else cutoff
            z = graph.atomic_numbers[int(lonely[0])].item()
            raise ValueError(
                f"{graph_name(graph)}: atom {int(lonely[0])} (Z={z}) has no "
                f"neighbour within {largest:g} Å (the largest cutoff allowed by this graph "
                f"config); {lonely.size} such atom(s)"
            )
        # sort by receiving atom for cache-friendly scatter; (src, dst) = (neighbor, center)
        order = np.lexsort((nl.distance, nl.center))
        graph.edge_index = torch.from_numpy(np.stack([nl.neighbor[order], nl.center[order]]))
        graph.cell_offset = torch.from_numpy(np.ascontiguousarray(nl.offset[order]))
        graph.edge_type = torch.full((len(order),), EDGE_NEIGHBOR, dtype=torch.long)
        if cfg.tie_weights:
            weights = tie_weights(nl.take(order), cfg.max_neighbors, cfg.tie_tolerance, num_atoms)
            graph.edge_weight = torch.from_numpy(weights)
        return graph


class LatticeEdges(BaseTransform):
    """Append Matformer lattice self-edges (``edge_type == 1``)."""

    def __init__(self, symmetric: bool = True, basis: str = "cell") -> None:
        self.symmetric = symmetric
        self.basis = basis

    def forward(self, graph: CrystalGraph) -> CrystalGraph:
        basis = reduced_basis(_numpy(graph, "lattice")[0]) if self.basis == "niggli" else None
        edge_index, cell_offset = lattice_self_edges(graph.num_nodes, self.symmetric, basis)
        graph.edge_index = torch.cat([graph.edge_index, torch.from_numpy(edge_index)], dim=1)
        graph.cell_offset = torch.cat([graph.cell_offset, torch.from_numpy(cell_offset)])
        graph.edge_type = torch.cat(
            [graph.edge_type, torch.full((edge_index.shape[1],), EDGE_LATTICE, dtype=torch.long)]
        )
        return graph


class LineGraph(BaseTransform):
    """ALIGNN line graph over the neighbour edges (lattice self-edges are not bonds)."""

    def __init__(self, backtracking: bool = True, self_pairs: bool = True) -> None:
        self.backtracking = backtracking
        self.self_pairs = self_pairs

    def forward(self, graph: CrystalGraph) -> CrystalGraph:
        bonds = int((graph.edge_type == EDGE_NEIGHBOR).sum())
        # neighbour edges come first: LatticeEdges appends after them
        edge_index = _numpy(graph, "edge_index")[:, :bonds]
        offsets = _numpy(graph, "cell_offset")[:bonds]
        lg = line_graph_edges(
            edge_index, graph.num_nodes, offsets, self.backtracking, self.self_pairs
        )
        graph.lg_edge_index = torch.from_numpy(lg)
        return graph


class PotentialSums(BaseTransform):
    """PotNet infinite Coulomb/London/Pauli sums over every ordered atom pair."""

    def __init__(self, names: tuple[str, ...], pauli_alpha: float, rtol: float) -> None:
        self.names, self.pauli_alpha, self.rtol = names, pauli_alpha, rtol

    def forward(self, graph: CrystalGraph) -> CrystalGraph:
        index, sums = pair_potential_sums(
            _numpy(graph, "pos"),
            _numpy(graph, "lattice")[0],
            self.names,
            pauli_alpha=self.pauli_alpha,
            rtol=self.rtol,
        )
        graph.pot_edge_index = torch.from_numpy(index)
        graph.potential_sums = torch.from_numpy(sums)
        return graph


class GraphBuilder:
    """The chain of steps a :class:`GraphConfig` asks for."""

    def __init__(self, config: GraphConfig) -> None:
        self.config = config
        steps: list[BaseTransform] = [PeriodicNeighbors(config)]
        if config.lattice_edges:
            steps.append(LatticeEdges(symmetric=config.symmetric, basis=config.lattice_edge_basis))
        if config.line_graph:
            steps.append(
                LineGraph(
                    backtracking=config.line_graph_backtracking,
                    self_pairs=config.line_graph_self_pairs,
                )
            )
        if config.potentials:
            steps.append(
                PotentialSums(config.potentials, config.pauli_alpha, config.potential_rtol)
            )
        if config.foundation_graph == "chgnet":
            from matgnn.graphs.foundation import ChgnetGraph

            steps.append(ChgnetGraph())
        self.steps = steps

        self.fingerprint = config.fingerprint()

    def __call__(self, obj: StructureLike, name: str | None = None) -> CrystalGraph:
        structure, label = to_structure(obj, name)
        descriptor = None
        if self.config.site_descriptors:  # from the labelled input, before any cell change
            descriptor = site_descriptor(
                structure,
                self.config.site_descriptors,
                self.config.species_per_site,
                label or structure.reduced_formula,
            )
        if self.config.cell == "primitive":
            structure = primitive_cell(structure, label, self.config.primitive_tolerance)
        graph = structure_to_graph(structure, label)
        graph.graph_fingerprint = self.fingerprint
        for step in self.steps:
            graph = step(graph)
        if descriptor is not None:
            graph.site_descriptor = torch.from_numpy(descriptor).unsqueeze(0)
        dtype = torch.get_default_dtype()
        for key in _FLOAT_FIELDS:
            if key in graph:
                graph[key] = graph[key].to(dtype)
        return graph


def build_graph(
    structure: StructureLike, config: GraphConfig | None = None, name: str | None = None
) -> CrystalGraph:
    """Build the ``CrystalGraph`` of one structure (``Structure``, ASE ``Atoms``, path or text).

    Raises ``ValueError`` naming the structure for unparsable or physically invalid input.
    """
    return GraphBuilder(config or GraphConfig())(structure, name)
