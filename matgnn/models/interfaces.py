"""The interface every model part implements: a :class:`Backbone` maps a batched
``CrystalGraph`` to :class:`NodeFeatures`; a :class:`Head` maps those to one output.

This module imports no backbone and no head, so heads, backbones and
:class:`matgnn.models.CrystalModel` all depend on it and never on each other."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch_geometric.data import Data

from matgnn.graphs.config import GraphConfig
from matgnn.graphs.geometry import cartesian_positions, edge_vectors


@dataclass(frozen=True)
class GraphRequirements:
    """Graph parts a backbone consumes.

    Args:
        line_graph: needs ``lg_edge_index`` (ALIGNN).
        lattice_edges: needs the Matformer lattice self-edges.
        potentials: needs ``potential_sums`` with exactly these columns, in this order.
        radius_cutoff: needs a radius graph reaching at least this far (a smooth-cutoff model
            would see a k-NN graph's arbitrary edge set as a discontinuity).
        site_descriptor_length: needs ``site_descriptor`` with this many values per crystal
            (``GraphConfig.site_descriptors``).
        foundation_graph: needs the graph of this pretrained backbone
            (``GraphConfig.foundation_graph``, e.g. ``"chgnet"``).
    """

    line_graph: bool = False
    lattice_edges: bool = False
    potentials: tuple[str, ...] = ()
    radius_cutoff: float | None = None
    site_descriptor_length: int | None = None
    foundation_graph: str = ""

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
        if self.foundation_graph and graph.foundation_graph != self.foundation_graph:
            missing.append(
                f"the {self.foundation_graph} graph (foundation_graph: {self.foundation_graph}; "
                f"the graph has {graph.foundation_graph or 'none'!r})"
            )
        if self.site_descriptor_length is not None:
            from matgnn.graphs.site_descriptors import descriptor_length

            have = descriptor_length(graph.site_descriptors, graph.species_per_site)
            if have != self.site_descriptor_length:
                missing.append(
                    f"site descriptors of length {self.site_descriptor_length} (the graph's "
                    f"site_descriptors={list(graph.site_descriptors)}, species_per_site="
                    f"{graph.species_per_site} give {have})"
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
    #: whether the backbone runs in the autocast dtype under ``torch.autocast`` (bf16 mixed
    #: precision); ``False``: it runs in full precision whatever the context (SevenNet: e3nn's
    #: compiled linears do not take mixed dtypes)
    follows_autocast: bool = True

    @abstractmethod
    def forward(self, batch: Data) -> NodeFeatures: ...

    @abstractmethod
    def message_passing_layers(self) -> list[nn.Module]:
        """The message-passing layers in the order they run; every other parameter of the
        backbone is part of its embeddings (what fine-tuning freezes layer by layer)."""

    @classmethod
    def with_irreps_for(cls, args: dict, needed: list[str]) -> dict:
        """This backbone's constructor arguments (registry data) changed so that it emits the
        irreps that tensor heads need (``needed``: one irreps string per head), where it can;
        default: unchanged (a head then refuses a backbone without them in words)."""
        return args

    def fit_to_training_data(self, graphs: Sequence[Data]) -> None:
        """Fit any statistics the backbone keeps as buffers (e.g. input standardisation) on
        the training graphs; called once by the trainer before training. Default: nothing."""

    @staticmethod
    def crystal_index(batch: Data) -> Tensor:
        if getattr(batch, "batch", None) is not None:
            return batch.batch
        return torch.zeros(batch.num_nodes, dtype=torch.long, device=batch.atomic_numbers.device)

    @classmethod
    def edge_vectors(cls, batch: Data) -> Tensor:
        """``r_e`` [E, 3] from ``frac_coords @ lattice`` (see :mod:`matgnn.graphs.geometry`),
        always in the input's precision: under bf16 autocast the network runs in bf16 but the
        geometry does not (a bf16 bond length is off by up to 0.4%, 0.01 Å at 3 Å)."""
        index = cls.crystal_index(batch)
        with torch.autocast(batch.lattice.device.type, enabled=False):
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
