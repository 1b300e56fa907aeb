"""The model interface: a backbone maps a batched ``CrystalGraph`` to per-atom features; heads
map those to named outputs; :class:`CrystalModel` ties them to the graph config they need."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch_geometric.data import Batch, Data

from matgnn.graphs.config import GraphConfig
from matgnn.graphs.data import EDGE_LATTICE
from matgnn.graphs.geometry import cartesian_positions, edge_vectors

MAIN_OUTPUT = "y"


@dataclass(frozen=True)
class GraphRequirements:
    """Graph parts a backbone consumes.

    Args:
        line_graph: needs ``lg_edge_index`` (ALIGNN).
        lattice_edges: needs the Matformer lattice self-edges.
        potentials: needs ``potential_sums`` with exactly these columns, in this order.
        radius_cutoff: needs a radius graph reaching at least this far (a smooth-cutoff model
            would see a k-NN graph's arbitrary edge set as a discontinuity).
    """

    line_graph: bool = False
    lattice_edges: bool = False
    potentials: tuple[str, ...] = ()
    radius_cutoff: float | None = None

    def missing_in(self, graph: GraphConfig) -> list[str]:
        """What ``graph`` fails to provide, in words (empty when it satisfies every need)."""
        missing = []
        if self.line_graph and not graph.line_graph:
            missing.append("a line graph (line_graph: true)")
        if self.lattice_edges and not graph.lattice_edges:
            missing.append("lattice self-edges (lattice_edges: true)")
        if tuple(graph.potentials) != tuple(self.potentials):
            missing.append(
                f"potential sums {list(self.potentials)} in this order "
                f"(the graph has {list(graph.potentials)})"
            )
        if self.radius_cutoff is not None and (
            graph.mode != "radius" or graph.cutoff < self.radius_cutoff
        ):
            missing.append(
                f"a radius graph with cutoff >= {self.radius_cutoff} Å "
                f"(the graph has mode={graph.mode!r}, cutoff={graph.cutoff})"
            )
        return missing


@dataclass(frozen=True)
class FeatureSpec:
    """What a backbone emits per atom: ``scalar_features`` invariant channels and, for an
    equivariant backbone, the e3nn irreps of its full feature vector."""

    scalar_features: int
    irreps: str | None = None


@dataclass
class NodeFeatures:
    """Per-atom output of a backbone plus what heads need to pool it.

    Shapes:
        scalars ``[N, scalar_features]`` (invariant), irreps ``[N, Irreps(irreps).dim]`` or
        ``None``, atomic_numbers ``[N]``, batch ``[N]``.
    """

    scalars: Tensor
    atomic_numbers: Tensor
    batch: Tensor
    num_crystals: int
    irreps: Tensor | None = None


class Backbone(nn.Module, ABC):
    """Base class of the message-passing part of every model.

    Subclasses set :attr:`requirements` and :attr:`feature_spec` in ``__init__`` and implement
    :meth:`forward`. :meth:`edge_vectors` gives differentiable edge vectors from fractional
    coordinates, lattice and cell offsets, so forces and stress by autograd stay possible.
    """

    requirements: GraphRequirements
    feature_spec: FeatureSpec

    @abstractmethod
    def forward(self, batch: Data) -> NodeFeatures: ...

    @staticmethod
    def crystal_index(batch: Data) -> Tensor:
        if getattr(batch, "batch", None) is not None:
            return batch.batch
        return torch.zeros(batch.num_nodes, dtype=torch.long, device=batch.atomic_numbers.device)

    @classmethod
    def edge_vectors(cls, batch: Data) -> Tensor:
        """``r_e`` [E, 3] from ``frac_coords @ lattice`` (see :mod:`matgnn.graphs.geometry`)."""
        index = cls.crystal_index(batch)
        pos = cartesian_positions(batch.frac_coords, batch.lattice, index)
        return edge_vectors(pos, batch.lattice, batch.edge_index, batch.cell_offset, index)

    def node_features(
        self, batch: Data, scalars: Tensor, irreps: Tensor | None = None
    ) -> NodeFeatures:
        return NodeFeatures(
            scalars=scalars,
            atomic_numbers=batch.atomic_numbers,
            batch=self.crystal_index(batch),
            num_crystals=int(batch.lattice.size(0)),
            irreps=irreps,
        )


class Head(nn.Module, ABC):
    """Maps :class:`NodeFeatures` to one named output of shape ``[num_crystals, ...]``."""

    @abstractmethod
    def forward(self, features: NodeFeatures) -> Tensor: ...


HeadFactory = Callable[..., Head]


class CrystalModel(nn.Module):
    """A backbone, its graph config and one or more heads behind one interface.

    ``forward(batch)`` returns ``{name: head(features)}``; the key ``"y"`` holds the main
    output. Heads may be given built, or as factories (Hydra ``_partial_: true``) that are
    called with ``features=backbone.feature_spec`` so their input width always matches.

    Args:
        graph: the graph the backbone consumes; checked against ``backbone.requirements`` here,
            and every batch is checked against it in :meth:`forward`.
        backbone: a :class:`Backbone`.
        heads: ``{name: Head or factory}``; must contain ``"y"``.
    """

    def __init__(
        self,
        graph: GraphConfig | Mapping,
        backbone: Backbone,
        heads: Mapping[str, Head | HeadFactory],
    ) -> None:
        super().__init__()
        self.graph = graph if isinstance(graph, GraphConfig) else GraphConfig.from_dict(graph)
        missing = backbone.requirements.missing_in(self.graph)
        if missing:
            raise ValueError(
                f"{type(backbone).__name__} needs a graph with {'; '.join(missing)}, "
                f"but the graph config is {self.graph}"
            )
        if MAIN_OUTPUT not in heads:
            raise ValueError(
                f"heads must include the main output {MAIN_OUTPUT!r}, got {list(heads)}"
            )
        self.backbone = backbone
        self.heads = nn.ModuleDict(
            {
                name: head if isinstance(head, nn.Module) else head(features=backbone.feature_spec)
                for name, head in heads.items()
            }
        )

    def graph_config(self) -> GraphConfig:
        """The :class:`GraphConfig` to build this model's input graphs with."""
        return self.graph

    def check_batch(self, batch: Data) -> None:
        """Fail early, in words, when ``batch`` was built with a different graph config."""
        needs = self.backbone.requirements
        problems = []
        if needs.line_graph and getattr(batch, "lg_edge_index", None) is None:
            problems.append("it has no line graph (lg_edge_index)")
        if needs.potentials:
            sums = getattr(batch, "potential_sums", None)
            if sums is None or sums.size(-1) != len(needs.potentials):
                problems.append(f"it lacks the potential sums {list(needs.potentials)}")
        if needs.lattice_edges:
            edge_type = getattr(batch, "edge_type", None)
            if edge_type is None or not bool((edge_type == EDGE_LATTICE).any()):
                problems.append("it has no lattice self-edges")
        if problems:
            raise ValueError(
                f"{type(self.backbone).__name__} cannot use this batch: {'; '.join(problems)}. "
                "Build the graphs with model.graph_config()."
            )

    def predict(self, structures, names=None, batch_size: int = 64):
        """Main output for each valid input; invalid ones are reported, not raised
        (:func:`matgnn.predict.predict`)."""
        from matgnn.predict import predict

        return predict(self, structures, names, batch_size)

    def forward(self, batch: Data | Batch) -> dict[str, Tensor]:
        self.check_batch(batch)
        features = self.backbone(batch)
        return {name: head(features) for name, head in self.heads.items()}
