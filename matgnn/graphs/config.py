"""Graph configuration: one plain dataclass whose fields mirror ``matgnn/configs/graph/*.yaml``."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from matgnn.checkpoints.registry import register

POTENTIAL_NAMES = ("coulomb", "london", "pauli")
MODES = ("radius", "knn")
CELLS = ("as_given", "primitive")
#: the graphs of pretrained foundation backbones that the builder can add (``foundation_graph``)
FOUNDATION_GRAPHS = ("", "chgnet")
#: fields added after graphs were first fingerprinted and checkpoints first shipped, with their
#: defaults: stored and hashed only when set otherwise
_LATER_FIELDS = {
    "line_graph_self_pairs": True,
    "duplicate_self_images": False,
    "foundation_graph": "",
}
#: fingerprint -> config, for every config fingerprinted in this process (error messages).
_FINGERPRINTED: dict[str, GraphConfig] = {}


@register("graph_config")
@dataclass(frozen=True)
class GraphConfig:
    """How a crystal becomes a graph.

    Neighbour selection (``mode``):

    * ``"radius"``: every neighbouring image within ``cutoff`` (always symmetric).
    * ``"knn"``: per atom the ``max_neighbors`` nearest images within ``cutoff``. Three flags select
      the semantics of the reference codes:

      - CGCNN (Xie & Grossman 2018, ``get_all_neighbors`` then the 12 nearest):
        ``symmetric=False, keep_ties=False, grow_cutoff=False``.
      - ALIGNN (Choudhary & DeCost 2021, jarvis ``nearest_neighbor_edges`` +
        ``build_undirected_edgedata``): ``symmetric=True, keep_ties=True, grow_cutoff=True``.
      - PotNet (Lin et al. 2023) uses the ALIGNN routine with ``cutoff=4, max_neighbors=16``.

    Cell (``cell``): ``"as_given"`` builds the graph of the cell as given; ``"primitive"`` first
    reduces the structure to its Niggli-reduced primitive cell (pymatgen
    ``get_primitive_structure``, positions kept, not symmetrised), so that every supercell and
    every choice of unit cell of a crystal gives the same graph. Models whose input depends on
    the cell itself (Matformer's lattice self-edges, PotNet's all-pairs sums) need it to be
    invariant to supercells.

    Args:
        mode: ``"radius"`` or ``"knn"``.
        cutoff: neighbour search radius in Å.
        max_neighbors: k for ``mode="knn"``.
        symmetric: add the reverse ``j -> i`` (offset ``-n``) of every ``i -> j`` image edge.
        keep_ties: k-NN keeps every neighbour tied (within ``tie_tolerance``) with the k-th.
        tie_weights: with ``keep_ties`` on a directed k-NN graph, share the slots left at the
            k-th distance evenly among the neighbours tied there (``edge_weight``: 1 for the
            closer ones, ``slots / tied`` for the tied ones), so each atom keeps exactly k
            neighbours' worth of weight, whichever way the tie would have been broken: the
            expectation of CGCNN's exact cut over every tie-breaking, which equals it wherever
            there is no tie.
        grow_cutoff: ALIGNN rule: while some atom has fewer than k neighbours, enlarge the
            cutoff to ``max(a, b, c)`` (or double it when it already exceeds that).
        max_cutoff: largest cutoff ever searched; an atom with no neighbour within it is an error.
        tie_tolerance: distances closer than this (Å) count as ties.
        exact_search: k-NN from one neighbour search at exactly ``cutoff``, ties broken in the
            order that search returns them: pymatgen's ``Structure.get_neighbor_list(cutoff)``
            sorted by distance (stable), i.e. the reference CGCNN code's graph entry for entry
            (with ``keep_ties=False``). The default searches a smaller radius first (faster),
            which returns tied neighbours in another order.
        lattice_edges: Matformer lattice self-edges (Yan et al. 2022), ``edge_type == 1``.
        lattice_edge_basis: ``"cell"`` (the vectors of the cell as given, as in Matformer) or
            ``"niggli"`` (those of the Niggli-reduced cell: the same for every choice of cell).
        line_graph: precompute the ALIGNN line graph (``lg_edge_index``).
        line_graph_backtracking: keep line-graph pairs whose second bond is the exact reverse
            of the first (angle 0); DGL's ``line_graph`` and ALIGNN keep them.
        line_graph_self_pairs: keep the line-graph pair of a bond from an atom to its own
            periodic image with itself (the collinear triplet i, i+n, i+2n); DGL's
            ``line_graph``, and so upstream ALIGNN, drops it.
        duplicate_self_images: k-NN with ``symmetric``: count a bond from an atom to its own
            periodic image as jarvis-tools' ``build_undirected_edgedata`` does (upstream
            ALIGNN's graphs): once for each of the images n and -n that the selection kept,
            usually twice (:func:`matgnn.graphs.neighbors.symmetrize`).
        potentials: subset of ``("coulomb", "london", "pauli")``: PotNet infinite lattice sums
            over all atom pairs, stored in ``potential_sums`` in this order.
        pauli_alpha: decay constant alpha of the Pauli term exp(-alpha d), 1/Å.
        potential_rtol: relative tolerance of the lattice sums.
        min_distance: two atoms closer than this (Å) are rejected as overlapping.
        cell: ``"as_given"`` or ``"primitive"`` (see above).
        primitive_tolerance: site tolerance (Å) of the primitive-cell search.
        site_descriptors: site specs (``"A"`` or ``"A:XII"``) of a labelled prototype: store
            the Ye et al. site-occupancy descriptor in ``site_descriptor``
            (:mod:`matgnn.graphs.site_descriptors`); empty (the default) stores none.
        species_per_site: slots per site of that descriptor.
        foundation_graph: ``"chgnet"`` adds the graph CHGNet's pretrained layers read (its
            atom graph within 6 Å and bond graph of bonds within 3 Å, built by the installed
            ``chgnet`` package's converter: :mod:`matgnn.graphs.foundation`); empty (the
            default) adds none.
    """

    mode: str = "radius"
    cutoff: float = 8.0
    max_neighbors: int = 12
    symmetric: bool = True
    keep_ties: bool = False
    tie_weights: bool = False
    grow_cutoff: bool = False
    max_cutoff: float = 24.0
    tie_tolerance: float = 1e-6
    exact_search: bool = False
    lattice_edges: bool = False
    lattice_edge_basis: str = "cell"
    line_graph: bool = False
    line_graph_backtracking: bool = True
    line_graph_self_pairs: bool = True
    duplicate_self_images: bool = False
    potentials: tuple[str, ...] = field(default_factory=tuple)
    pauli_alpha: float = 3.0
    potential_rtol: float = 1e-8
    min_distance: float = 0.1
    cell: str = "as_given"
    primitive_tolerance: float = 0.01
    site_descriptors: tuple[str, ...] = field(default_factory=tuple)
    species_per_site: int = 1
    foundation_graph: str = ""

    def __post_init__(self) -> None:
        pots = self.potentials
        if isinstance(pots, str):
            pots = (pots,)
        object.__setattr__(self, "potentials", tuple(str(p) for p in pots))
        sites = self.site_descriptors
        object.__setattr__(
            self, "site_descriptors", (sites,) if isinstance(sites, str) else tuple(sites)
        )
        if self.species_per_site < 1:
            raise ValueError(
                f"GraphConfig.species_per_site must be >= 1, got {self.species_per_site}"
            )
        for name in ("cutoff", "max_cutoff", "pauli_alpha", "potential_rtol", "min_distance"):
            if not float(getattr(self, name)) > 0:
                raise ValueError(f"GraphConfig.{name} must be > 0, got {getattr(self, name)!r}")
        if self.mode not in MODES:
            raise ValueError(f"GraphConfig.mode must be one of {MODES}, got {self.mode!r}")
        if self.mode == "knn" and int(self.max_neighbors) < 1:
            raise ValueError(f"GraphConfig.max_neighbors must be >= 1, got {self.max_neighbors}")
        if self.max_cutoff < self.cutoff:
            raise ValueError(
                f"GraphConfig.max_cutoff ({self.max_cutoff}) must be >= cutoff ({self.cutoff})"
            )
        if self.lattice_edge_basis not in ("cell", "niggli"):
            raise ValueError(
                f"GraphConfig.lattice_edge_basis must be 'cell' or 'niggli', "
                f"got {self.lattice_edge_basis!r}"
            )
        if self.tie_weights and not (self.mode == "knn" and self.keep_ties and not self.symmetric):
            raise ValueError(
                "GraphConfig.tie_weights needs a directed k-NN graph that keeps ties "
                "(mode=knn, keep_ties=True, symmetric=False)"
            )
        if not self.line_graph_self_pairs and not self.line_graph:
            raise ValueError("GraphConfig.line_graph_self_pairs applies to a line graph only")
        if self.duplicate_self_images and not (self.mode == "knn" and self.symmetric):
            raise ValueError(
                "GraphConfig.duplicate_self_images applies to a symmetric k-NN graph "
                "(mode=knn, symmetric=True)"
            )
        if self.exact_search and self.mode != "knn":
            raise ValueError("GraphConfig.exact_search applies to mode=knn only")
        if self.exact_search and self.grow_cutoff:
            raise ValueError("GraphConfig.exact_search searches one radius: it cannot grow_cutoff")
        if self.foundation_graph not in FOUNDATION_GRAPHS:
            raise ValueError(
                f"GraphConfig.foundation_graph must be one of {FOUNDATION_GRAPHS}, got "
                f"{self.foundation_graph!r}"
            )
        if self.cell not in CELLS:
            raise ValueError(f"GraphConfig.cell must be one of {CELLS}, got {self.cell!r}")
        if self.mode == "radius" and not self.symmetric:
            raise ValueError("a radius graph is always symmetric: set symmetric=True")
        unknown = [p for p in self.potentials if p not in POTENTIAL_NAMES]
        if unknown or len(set(self.potentials)) != len(self.potentials):
            raise ValueError(
                f"GraphConfig.potentials must be distinct names from {POTENTIAL_NAMES}, "
                f"got {self.potentials}"
            )

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> GraphConfig:
        """Build from a mapping (a Hydra ``DictConfig`` works); unknown keys are an error."""
        names = {f.name for f in dataclasses.fields(cls)}
        values = {
            k: v for k, v in dict(values).items() if k not in ("_target_", "@class", "@version")
        }
        unknown = sorted(set(values) - names)
        if unknown:
            raise ValueError(f"unknown GraphConfig fields {unknown}; known: {sorted(names)}")
        for key in ("potentials", "site_descriptors"):
            if key in values and isinstance(values[key], Iterable):
                values[key] = tuple(values[key])
        return cls(**values)

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> GraphConfig:
        """The option ``matgnn/configs/graph/<name>.yaml`` with ``overrides`` applied.

        Model configs point at a preset (``_target_: matgnn.graphs.GraphConfig.preset``) so that
        each graph setting is written once, in the graph config group.
        """
        from omegaconf import OmegaConf

        from matgnn.config_dir import option_path

        values = OmegaConf.to_container(OmegaConf.load(option_path("graph", name)), resolve=True)
        return cls.from_dict({**values, **overrides})

    def to_config(self) -> dict[str, Any]:
        """Exactly this graph, as registry data (``@class: graph_config`` + every field): what a
        checkpoint stores, so that editing a preset never changes a trained model's graph.
        The fields added after checkpoints were first shipped (``line_graph_self_pairs``,
        ``duplicate_self_images``) are stored only when they differ from their defaults, which
        reading fills in: a checkpoint of a graph without them is the same as before they
        existed, and an older matgnn still reads it."""
        from matgnn.checkpoints.safe_config import object_node

        values = self.to_dict()
        for name, default in _LATER_FIELDS.items():
            if values[name] == default:
                values.pop(name)
        return object_node(type(self), **values)

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["potentials"] = list(self.potentials)
        out["site_descriptors"] = list(self.site_descriptors)
        return out

    def fingerprint(self) -> str:
        """Stable hash of every field: the cache key, and the stamp on every graph built with
        this config (``CrystalGraph.graph_fingerprint``). The site-descriptor fields, added
        later, enter only when set, so that older configs keep their fingerprints (as do
        ``exact_search``, ``line_graph_self_pairs`` and ``duplicate_self_images``)."""
        values = self.to_dict()
        if not self.site_descriptors:
            values.pop("site_descriptors")
            values.pop("species_per_site")
        if not self.exact_search:
            values.pop("exact_search")
        for name, default in _LATER_FIELDS.items():
            if values[name] == default:
                values.pop(name)
        blob = json.dumps(values, sort_keys=True, default=float)
        digest = hashlib.sha256(blob.encode()).hexdigest()[:16]
        _FINGERPRINTED.setdefault(digest, self)
        return digest

    def differences(self, other: GraphConfig) -> dict[str, tuple[Any, Any]]:
        """``{field: (self's value, other's value)}`` for every field that differs."""
        mine, theirs = self.to_dict(), other.to_dict()
        return {k: (v, theirs[k]) for k, v in mine.items() if theirs[k] != v}

    def described_differences(self, other: GraphConfig) -> str:
        """The differing fields in words, ``"cutoff=5.0 vs 8.0, ..."`` (other's value first)."""
        return ", ".join(f"{k}={b!r} vs {a!r}" for k, (a, b) in self.differences(other).items())

    @staticmethod
    def from_fingerprint(fingerprint: str) -> GraphConfig | None:
        """The config with this fingerprint, if this process has fingerprinted it."""
        return _FINGERPRINTED.get(fingerprint)
