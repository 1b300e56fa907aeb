"""The graphs of pretrained foundation backbones, built by the packages that trained them.

CHGNet (Deng et al., Nat. Mach. Intell. 5, 1031 (2023)) reads two graphs: the atom graph (every
neighbouring image within 6 Å, directed, each bond also indexed as undirected) and the bond
graph (pairs of bonds within 3 Å that share an atom: the angles). The installed ``chgnet``
package's own ``CrystalGraphConverter`` builds them, with the cutoffs of its pretrained model,
so the backbone sees exactly the graph its weights were trained on. Its index tensors are
stored in the :class:`~matgnn.graphs.data.CrystalGraph` per crystal (not shifted when
batched: :class:`~matgnn.models.chgnet.CHGNetBackbone` splits them back per crystal with
``chgnet_sizes`` and lets ``chgnet`` batch them); the geometry is not stored, the backbone
computes it from ``frac_coords`` and ``lattice``, so it stays differentiable.

Fields (E directed bonds, U undirected bonds, A angles):

=========================  ==========  ==========================================================
``chgnet_atom_graph``      [E, 2] long  (centre, neighbour) atom of each directed bond
``chgnet_image``           [E, 3] long  cell offset of the neighbour
``chgnet_directed2undirected``  [E] long  undirected bond of each directed bond
``chgnet_undirected2directed``  [U] long  one directed bond of each undirected bond
``chgnet_bond_graph``      [A, 5] long  centre atom, (undirected, directed) bond i and bond j
``chgnet_sizes``           [1, 3] long  (E, U, A) of the crystal
=========================  ==========  ==========================================================
"""

from __future__ import annotations

import contextlib
import io
from functools import cache

import torch
from pymatgen.core import Element, Lattice, Structure
from torch_geometric.transforms import BaseTransform

from matgnn.graphs.data import CrystalGraph

#: the cutoffs (Å) of CHGNet 0.3.0's converter: atom graph, bond graph
CHGNET_CUTOFFS = (6.0, 3.0)
#: CHGNet's atom embedding has one row per element H..Pu
CHGNET_MAX_Z = 94
#: elements H..Pu with no structure in MPtrj, CHGNet 0.3.0's training set (89 elements; the
#: 89 that SevenNet-0, trained on MPtrj too, knows): Po, At, Rn, Fr, Ra. Their embedding rows
#: were never trained, so they are refused as the elements beyond Pu are
CHGNET_UNSEEN_Z = frozenset({84, 85, 86, 87, 88})
CHGNET_FIELDS = (
    "chgnet_atom_graph",
    "chgnet_image",
    "chgnet_directed2undirected",
    "chgnet_undirected2directed",
    "chgnet_bond_graph",
    "chgnet_sizes",
)
FOUNDATION_EXTRA = "pip install 'matgnn[foundation]' (chgnet==0.4.2, sevenn==0.13.0)"


def import_chgnet():
    """The ``chgnet`` package, or an error that says how to install it."""
    try:
        import chgnet
    except ImportError as exc:
        raise ImportError(
            f"the CHGNet backbone needs the chgnet package: {FOUNDATION_EXTRA}"
        ) from exc
    return chgnet


@cache
def _converter():
    import_chgnet()
    from chgnet.graph import CrystalGraphConverter

    atom_cutoff, bond_cutoff = CHGNET_CUTOFFS
    with contextlib.redirect_stdout(io.StringIO()):
        return CrystalGraphConverter(
            atom_graph_cutoff=atom_cutoff,
            bond_graph_cutoff=bond_cutoff,
            algorithm="fast",
            on_isolated_atoms="error",
        )


class ChgnetGraph(BaseTransform):
    """Add CHGNet's atom and bond graphs (see the module docstring) to a graph.

    Refuses, naming the structure: an element beyond Pu (CHGNet has no embedding for it), one
    of the five elements up to Pu that its training set never held (:data:`CHGNET_UNSEEN_Z`)
    and an atom with no neighbour within 6 Å (CHGNet's own converter refuses it too).
    """

    def forward(self, graph: CrystalGraph) -> CrystalGraph:
        from matgnn.graphs.builder import graph_name

        numbers = graph.atomic_numbers.tolist()
        beyond = sorted({z for z in numbers if z > CHGNET_MAX_Z})
        if beyond:
            symbols = ", ".join(f"{Element.from_Z(z).symbol} (Z={z})" for z in beyond)
            raise ValueError(
                f"{graph_name(graph)}: CHGNet knows the elements H to Pu (Z <= "
                f"{CHGNET_MAX_Z}); this structure has {symbols}"
            )
        unseen = sorted(CHGNET_UNSEEN_Z.intersection(numbers))
        if unseen:
            symbols = ", ".join(f"{Element.from_Z(z).symbol} (Z={z})" for z in unseen)
            raise ValueError(
                f"{graph_name(graph)}: CHGNet 0.3.0's training set (MPtrj) holds no "
                f"{symbols}: its embedding of them was never trained"
            )
        structure = Structure(
            Lattice(graph.lattice[0].double().numpy()),
            numbers,
            graph.frac_coords.double().numpy(),
            coords_are_cartesian=False,
        )
        try:
            converted = _converter()(structure, graph_id=graph_name(graph))
        except ValueError as exc:  # isolated atoms
            raise ValueError(
                f"{graph_name(graph)}: an atom has no neighbour within "
                f"{CHGNET_CUTOFFS[0]:g} Å, which CHGNet's graph needs ({exc})"
            ) from None
        except RuntimeError as exc:  # chgnet's bond graph failed (it also writes a CIF)
            raise ValueError(f"{graph_name(graph)}: CHGNet's converter failed: {exc}") from None
        atom_graph = converted.atom_graph.long().reshape(-1, 2)
        bond_graph = converted.bond_graph.long().reshape(-1, 5)
        undirected = converted.undirected2directed.long().reshape(-1)
        graph.chgnet_atom_graph = atom_graph
        graph.chgnet_image = torch.round(converted.neighbor_image).long().reshape(-1, 3)
        graph.chgnet_directed2undirected = converted.directed2undirected.long().reshape(-1)
        graph.chgnet_undirected2directed = undirected
        graph.chgnet_bond_graph = bond_graph
        graph.chgnet_sizes = torch.tensor(
            [[atom_graph.size(0), undirected.size(0), bond_graph.size(0)]], dtype=torch.long
        )
        return graph
