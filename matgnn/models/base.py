""":class:`CrystalModel`: a backbone, the graph config it was built for, and one head per
declared output."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import torch
from omegaconf import OmegaConf
from torch import Tensor, nn
from torch_geometric.data import Batch, Data

from matgnn.checkpoints.registry import register
from matgnn.graphs.config import GraphConfig
from matgnn.models.inference import Predictions, predict
from matgnn.models.interfaces import Backbone, Head, HeadFactory, NodeFeatures
from matgnn.nn.pooling import pool
from matgnn.outputs import Output, ScalarOutput


def _as_output(item: Any) -> Output:
    """An :class:`Output`; Hydra hands instantiated dataclasses inside a list back as
    structured configs, which ``OmegaConf.to_object`` turns into the instances again."""
    if OmegaConf.is_config(item):
        item = OmegaConf.to_object(item)
    if not isinstance(item, Output):
        raise TypeError(f"outputs must be matgnn.outputs.Output objects, got {item!r}")
    return item


@register("crystal_model")
class CrystalModel(nn.Module):
    """A backbone, its graph config and one head per output, behind one interface.

    ``forward(batch)`` returns ``{output name: head(features)}``. Heads may be given built, or
    as factories (Hydra ``_partial_: true``) that are called with
    ``features=backbone.feature_spec`` so that their input width always matches.

    Args:
        graph: the graph the backbone consumes; checked against ``backbone.requirements`` here.
            Every batch must carry this config's fingerprint (:meth:`check_batch`).
        backbone: a :class:`~matgnn.models.interfaces.Backbone`.
        heads: ``{output name: Head or factory}``.
        outputs: the declared outputs (:mod:`matgnn.outputs`), one per head, in reporting
            order; ``None`` declares a :class:`~matgnn.outputs.ScalarOutput` per head.
    """

    def __init__(
        self,
        graph: GraphConfig | Mapping,
        backbone: Backbone,
        heads: Mapping[str, Head | HeadFactory],
        outputs: Sequence[Output] | None = None,
    ) -> None:
        super().__init__()
        self.graph = graph if isinstance(graph, GraphConfig) else GraphConfig.from_dict(graph)
        self.graph_fingerprint = self.graph.fingerprint()
        missing = backbone.requirements.missing_in(self.graph)
        if missing:
            raise ValueError(
                f"{type(backbone).__name__} needs a graph with {'; '.join(missing)}, "
                f"but the graph config is {self.graph}"
            )
        if not heads:
            raise ValueError("a CrystalModel needs at least one head")
        self.outputs: tuple[Output, ...] = (
            tuple(_as_output(o) for o in outputs)
            if outputs is not None
            else tuple(ScalarOutput(name) for name in heads)
        )
        names = [o.name for o in self.outputs]
        if sorted(names) != sorted(heads) or len(set(names)) != len(names):
            raise ValueError(f"outputs {names} and heads {sorted(heads)} must match one to one")
        self.backbone = backbone
        self.heads = nn.ModuleDict(
            {
                name: head if isinstance(head, nn.Module) else head(features=backbone.feature_spec)
                for name, head in heads.items()
            }
        )
        if self.graph.cell == "primitive":
            per_atom = [n for n, h in self.heads.items() if getattr(h, "readout", "") == "sum"]
            per_atom += [o.name for o in self.outputs if o.level == "atom"]
            if per_atom:
                raise ValueError(
                    f"outputs {per_atom} are extensive or per atom, but the graph is built on "
                    "the primitive cell (cell: primitive), whose atoms are not the input's: "
                    "use ++model.graph.cell=as_given, or a mean readout"
                )
        #: training provenance (task, data, split hash, matgnn version); set by load_model.
        self.provenance: dict[str, Any] = {}
        #: the fingerprint of the frozen backbone features put on the training graphs
        #: (:mod:`matgnn.training.feature_cache`); ``None``: the backbone always runs
        self.cached_features_fingerprint: str | None = None

    def graph_config(self) -> GraphConfig:
        """The :class:`GraphConfig` to build this model's input graphs with."""
        return self.graph

    def output(self, name: str) -> Output:
        return next(o for o in self.outputs if o.name == name)

    def check_batch(self, batch: Data) -> None:
        """Refuse, in words, a batch built with any other graph config than this model's."""
        stamps = getattr(batch, "graph_fingerprint", None)
        if stamps is None:
            raise ValueError(
                f"{type(self.backbone).__name__} cannot use this batch: its graphs carry no "
                "graph_fingerprint (not made by matgnn.graphs.build_graph). Build them with "
                "build_graph(structure, model.graph_config())."
            )
        others = sorted({stamps} if isinstance(stamps, str) else set(stamps))
        wrong = [s for s in others if s != self.graph_fingerprint]
        if not wrong:
            return
        known = GraphConfig.from_fingerprint(wrong[0])
        detail = (
            "; differences (batch vs model): " + self.graph.described_differences(known)
            if known is not None
            else ""
        )
        raise ValueError(
            f"{type(self.backbone).__name__} cannot use this batch: it was built with graph "
            f"config {wrong[0]}, the model needs {self.graph_fingerprint} ({self.graph}){detail}. "
            "Build the graphs with model.graph_config()."
        )

    def predict(self, structures, names=None, batch_size: int = 64) -> Predictions:
        """Every output for each valid input, in eval mode; invalid inputs are reported, not
        raised (:func:`matgnn.models.inference.predict`)."""
        self.eval()
        return predict(self, structures, names, batch_size)

    @torch.no_grad()
    def draws(self, batch: Data | Batch) -> dict[str, Tensor]:
        """One draw of every output as reported (probabilities for a classifier):
        ``{output: [1, rows, ...]}``, float64 on the CPU (the predictor protocol of
        :mod:`matgnn.models.inference`; an estimator gives several)."""
        device = next(self.parameters()).device
        out = self(batch.to(device))
        return {o.name: o.present(out[o.name]).double().cpu()[None] for o in self.outputs}

    @torch.no_grad()
    def embed(self, batch: Data | Batch) -> Tensor:
        """Each crystal's latent vector, the backbone's scalar atom features mean-pooled (the
        space :mod:`matgnn.uncertainty.latent` measures distances in), in eval mode as it is.

        Shapes:
            batch of B crystals -> ``[B, scalar features]``, float64 on the CPU.
        """
        self.check_batch(batch)
        device = next(self.parameters()).device
        features = self.backbone_features(batch.to(device))
        pooled = pool(features.scalars.float(), features.batch, features.num_crystals, "mean")
        return pooled.double().cpu()

    def backbone_features(self, batch: Data | Batch) -> NodeFeatures:
        """The backbone's features of ``batch``: the frozen backbone's stored ones when the
        graphs carry them with this model's fingerprint
        (:func:`matgnn.training.feature_cache.attach_backbone_features`), else the backbone's
        forward pass."""
        stamps = getattr(batch, "backbone_fingerprint", None)
        fingerprint = self.cached_features_fingerprint
        if fingerprint is None or stamps is None:
            return self.backbone(batch)
        if ({stamps} if isinstance(stamps, str) else set(stamps)) != {fingerprint}:
            return self.backbone(batch)
        trainable = [n for n, p in self.backbone.named_parameters() if p.requires_grad]
        if trainable:
            raise RuntimeError(
                f"the graphs carry this model's cached backbone features, but {len(trainable)} "
                f"backbone tensors became trainable after they were computed (e.g. "
                f"{trainable[0]}): the features would no longer be the backbone's"
            )
        return NodeFeatures(
            scalars=batch.backbone_scalars,
            atomic_numbers=batch.atomic_numbers,
            batch=self.backbone.crystal_index(batch),
            num_crystals=int(batch.lattice.size(0)),
            irreps=getattr(batch, "backbone_irreps", None),
        )

    def forward(self, batch: Data | Batch) -> dict[str, Tensor]:
        self.check_batch(batch)
        features = self.backbone_features(batch)
        device = features.scalars.device.type
        if not torch.is_autocast_enabled(device):
            return {name: head(features) for name, head in self.heads.items()}
        # Mixed precision: the backbone runs in the autocast dtype, the readout and heads in
        # float32, so that predictions, losses and target normalisation keep full precision.
        features = replace(
            features,
            scalars=features.scalars.float(),
            irreps=None if features.irreps is None else features.irreps.float(),
        )
        with torch.autocast(device, enabled=False):
            return {name: head(features) for name, head in self.heads.items()}
