"""Crystal-graph builder: periodic multigraphs, lattice edges, line graphs, PotNet sums."""

from matgnn.graphs.builder import GraphBuilder, build_graph
from matgnn.graphs.cache import GraphCache, build_graphs
from matgnn.graphs.config import GraphConfig
from matgnn.graphs.data import EDGE_LATTICE, EDGE_NEIGHBOR, CrystalGraph

__all__ = [
    "EDGE_LATTICE",
    "EDGE_NEIGHBOR",
    "CrystalGraph",
    "GraphBuilder",
    "GraphCache",
    "GraphConfig",
    "build_graph",
    "build_graphs",
]
