"""``CrystalGraph``: the one ``Data`` subclass every model consumes."""

from __future__ import annotations

from typing import Any

from torch_geometric.data import Data

EDGE_NEIGHBOR = 0
EDGE_LATTICE = 1

#: index fields whose entries are feature rows in a model (one bond, angle, atom pair or CHGNet
#: bond-graph entry each) -> the dimension that counts them; with the atoms, what a training
#: step's activations grow with (:func:`matgnn.data.batching.feature_rows`)
ROW_FIELDS: dict[str, int] = {
    "edge_index": 1,
    "lg_edge_index": 1,
    "pot_edge_index": 1,
    "chgnet_atom_graph": 0,
    "chgnet_bond_graph": 0,
}


class CrystalGraph(Data):
    """A periodic crystal as a multigraph with integer cell offsets.

    Fields (N atoms, E edges, T line-graph edges, P potential pairs):

    ==================  ==========  =========================================================
    ``atomic_numbers``  [N] long    element of each atom
    ``pos``             [N, 3]      Cartesian positions, Å (``frac_coords @ lattice``)
    ``frac_coords``     [N, 3]      fractional coordinates
    ``lattice``         [1, 3, 3]   lattice vectors as rows, Å
    ``edge_index``      [2, E]      ``(src, dst)``; messages flow src -> dst (PyG default)
    ``cell_offset``     [E, 3] long image of ``src``: edge vector
                                    ``r_e = pos[src] + cell_offset @ lattice - pos[dst]``
                                    points from the receiving atom to the sender's image
    ``edge_type``       [E] long    0 neighbour, 1 Matformer lattice self-edge
    ``lg_edge_index``   [2, T]      ALIGNN line graph: pairs of edges ``(a, b)`` with
                                    ``dst[a] == src[b]`` (indices into the edges)
    ``pot_edge_index``  [2, P]      PotNet pairs: every ordered atom pair ``(i, j)``, i == j too
    ``potential_sums``  [P, K]      lattice sums of ``GraphConfig.potentials`` for each pair
    ==================  ==========  =========================================================

    Vectors, distances and angles are not stored: :mod:`matgnn.graphs.geometry` computes them
    from ``pos``, ``lattice`` and ``cell_offset`` so that they stay differentiable.
    """

    def __inc__(self, key: str, value: Any, *args: Any, **kwargs: Any) -> Any:
        if key == "lg_edge_index":
            return self.edge_index.size(1)
        if key == "pot_edge_index":
            return self.num_nodes
        return super().__inc__(key, value, *args, **kwargs)

    @property
    def num_crystals(self) -> int:
        return int(self.lattice.size(0))
