"""Start a model from a trained checkpoint: strict weight transfer with a readable diff, new heads
for new targets, freezing, and the parameter split for separate learning rates.

Users of alignn and matgl ask for exactly this (alignn #111 and #34, matgl #71 and #264). Their
pain points were silent partial loads (``strict=False``), size-mismatch errors deep in torch when
the head changes, and no way to freeze layers.

* **Backbone**: loaded strictly. The graph config must be the checkpoint's (another cutoff or
  neighbour rule changes what every weight means), and every backbone tensor must exist with
  its shape. Otherwise :class:`TransferError` lists the missing, unexpected and reshaped keys.
* **Heads**: a head of the new model is copied from the checkpoint's head of the same name when
  both declare the same output (same kind, target and shape). Any other head starts fresh, and
  the transfer says which; regression <-> classification <-> vector is a new head.
* **Target normalisation** (head buffers: mean, std, per-element references) is refitted on
  the new training split by default (``keep_normalization=False``). A copied head then starts
  from the pretrained weights, de-normalised with statistics of the data it now sees: the
  right choice when the new data are a different population of the same target (matgl #287
  asks for the offsets precisely because they do not carry over). ``keep_normalization=True``
  keeps the pretrained statistics, e.g. to continue training on more data of the same source.
* **Elements**: every run records the elements of its training split (``provenance["elements"]``).
  An element of the new data that the checkpoint never saw is an error by default
  (:func:`check_elements`), naming the elements and the structures that hold them: its input
  (an embedding row, or the CGCNN feature vector through an embedding trained on other elements)
  carries nothing learned about it. ``unseen_elements="allow"`` is the documented fallback:
  training continues and fine-tuning learns the element from the new data alone, which needs
  the embeddings trainable (not with ``freeze=embeddings|backbone|layers:k``: then a warning).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from matgnn.graphs.data import CrystalGraph
from matgnn.graphs.elements import describe_unseen, unseen_elements
from matgnn.models import CrystalModel

log = logging.getLogger(__name__)

#: the freezing options of :func:`freeze`
FREEZE_CHOICES = ("none", "embeddings", "backbone", "layers:<k>")
#: what :func:`check_elements` does with an element the checkpoint never saw
UNSEEN_ELEMENTS = ("error", "allow")


class TransferError(ValueError):
    """Weights that cannot be transferred, with what differs."""


@dataclass
class StateDiff:
    """How a state dict differs from the one a module expects."""

    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    reshaped: list[tuple[str, tuple[int, ...], tuple[int, ...]]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.missing or self.unexpected or self.reshaped)

    def __str__(self) -> str:
        lines = []
        if self.missing:
            lines.append(
                f"missing in the checkpoint ({len(self.missing)}): " + ", ".join(self.missing)
            )
        if self.unexpected:
            lines.append(
                f"in the checkpoint only ({len(self.unexpected)}): " + ", ".join(self.unexpected)
            )
        for key, theirs, ours in self.reshaped:
            lines.append(f"shape of {key}: checkpoint {list(theirs)}, model {list(ours)}")
        return "\n".join(lines)


def state_diff(expected: Mapping[str, Tensor], given: Mapping[str, Tensor]) -> StateDiff:
    """Missing, unexpected and reshaped keys of ``given`` against ``expected``."""
    return StateDiff(
        missing=sorted(set(expected) - set(given)),
        unexpected=sorted(set(given) - set(expected)),
        reshaped=[
            (k, tuple(given[k].shape), tuple(expected[k].shape))
            for k in sorted(set(expected) & set(given))
            if given[k].shape != expected[k].shape
        ],
    )


def load_strictly(module: nn.Module, state: Mapping[str, Tensor], what: str) -> None:
    """``module.load_state_dict(state)``, or a :class:`TransferError` naming every difference."""
    diff = state_diff(module.state_dict(), state)
    if diff:
        raise TransferError(f"{what}: the checkpoint's weights do not fit this model\n{diff}")
    module.load_state_dict(state)


@dataclass
class Transfer:
    """What :func:`transfer` did: heads copied from the checkpoint and heads started fresh."""

    copied_heads: list[str]
    new_heads: list[str]


def transfer(model: CrystalModel, source: CrystalModel) -> Transfer:
    """Copy ``source``'s backbone (strictly) and its matching heads into ``model``."""
    if model.graph.differences(source.graph):
        listed = model.graph.described_differences(source.graph)
        raise TransferError(
            "fine-tuning needs the checkpoint's graph config; differences (checkpoint vs "
            f"this run): {listed}. Use the pretrained model's model config."
        )
    load_strictly(model.backbone, source.backbone.state_dict(), "backbone")
    copied, new = [], []
    theirs = {o.name: o.to_config() for o in source.outputs}
    for output in model.outputs:
        head = model.heads[output.name]
        if theirs.get(output.name) != output.to_config() or state_diff(
            head.state_dict(), source.heads[output.name].state_dict()
        ):
            new.append(output.name)
            continue
        head.load_state_dict(source.heads[output.name].state_dict())
        copied.append(output.name)
    return Transfer(copied, new)


def freeze(model: CrystalModel, what: str) -> list[str]:
    """Stop gradients to part of the backbone; returns the frozen parameter names.

    Args:
        what: ``"none"``, ``"embeddings"`` (every backbone parameter outside the
            message-passing layers), ``"backbone"`` (all of it) or ``"layers:<k>"`` (the
            embeddings and the first ``k`` message-passing layers).
    """
    backbone = model.backbone
    layers = backbone.message_passing_layers()
    if what == "none":
        chosen: list[nn.Module] = []
    elif what == "backbone":
        chosen = [backbone]
    elif what == "embeddings" or what.startswith("layers:"):
        k = 0 if what == "embeddings" else _layer_count(what, len(layers))
        inside = {id(p) for layer in layers for p in layer.parameters()}
        kept = {id(p) for layer in layers[:k] for p in layer.parameters()}
        for parameter in backbone.parameters():
            if id(parameter) not in inside or id(parameter) in kept:
                parameter.requires_grad_(False)
        chosen = []
    else:
        raise ValueError(f"finetune.freeze={what!r}; choose one of {', '.join(FREEZE_CHOICES)}")
    for module in chosen:
        module.requires_grad_(False)
    return [f"backbone.{n}" for n, p in backbone.named_parameters() if not p.requires_grad]


def _layer_count(what: str, available: int) -> int:
    count = what.removeprefix("layers:")
    if not count.isdigit() or not 0 < int(count) <= available:
        raise ValueError(
            f"finetune.freeze={what!r}: k must be an integer from 1 to {available} (the "
            "number of message-passing layers)"
        )
    return int(count)


def frozen_modules(model: nn.Module) -> list[nn.Module]:
    """Modules with parameters, all frozen: kept in eval mode during training so that their
    batch-norm statistics and dropout stay as pretrained."""
    return [
        m
        for m in model.modules()
        if any(True for _ in m.parameters(recurse=False))
        and not any(p.requires_grad for p in m.parameters(recurse=False))
    ]


def parameter_groups(
    model: CrystalModel, lr: float, backbone_lr_scale: float
) -> list[dict[str, object]]:
    """Optimizer groups: the trainable backbone at ``lr * backbone_lr_scale``, the heads at
    ``lr``; frozen parameters are left out. With a scale of 1, one group (as a run without
    fine-tuning has, so that its checkpoints resume)."""
    if backbone_lr_scale == 1.0:
        return [{"params": [p for p in model.parameters() if p.requires_grad], "lr": lr}]
    backbone = [p for p in model.backbone.parameters() if p.requires_grad]
    heads = [p for p in model.heads.parameters() if p.requires_grad]
    groups = [{"params": heads, "lr": lr}]
    if backbone:
        groups.insert(0, {"params": backbone, "lr": lr * backbone_lr_scale})
    return groups


@torch.no_grad()
def copy_normalization(model: CrystalModel, source: CrystalModel, heads: list[str]) -> None:
    """Put ``source``'s normalisation buffers back into the copied ``heads``."""
    for name in heads:
        target = dict(model.heads[name].named_buffers())
        for key, value in source.heads[name].named_buffers():
            target[key].copy_(value)


def check_elements(
    seen: Sequence[str] | None,
    subsets: Mapping[str, Sequence[CrystalGraph]],
    policy: str = "error",
    source: str = "the checkpoint",
    frozen: bool = False,
) -> dict[str, list[str]]:
    """Refuse (``policy="error"``) or allow with a warning (``"allow"``) data holding elements
    that ``source`` was never trained on; returns them with their structure ids.

    ``seen=None`` (a checkpoint from before elements were recorded) cannot be checked: a
    warning says so. ``frozen``: the embeddings are frozen, so an allowed unseen element keeps
    its untrained input.
    """
    if policy not in UNSEEN_ELEMENTS:
        raise ValueError(
            f"finetune.unseen_elements must be one of {UNSEEN_ELEMENTS}, got {policy!r}"
        )
    if seen is None:
        log.warning("%s does not record its training elements: unseen elements not checked", source)
        return {}
    found = unseen_elements(seen, ((g.sample_id, g) for graphs in subsets.values() for g in graphs))
    if not found:
        return found
    message = f"{len(found)} elements that {source} never saw in training: {describe_unseen(found)}"
    if policy == "error":
        raise TransferError(
            f"{message}. The pretrained model has learned nothing about them. Drop those "
            "structures, or set finetune.unseen_elements=allow to learn them from the new data "
            "alone (with the embeddings trainable)"
        )
    log.warning(
        "%s; finetune.unseen_elements=allow: %s",
        message,
        "but the embeddings are frozen, so they stay untrained"
        if frozen
        else "they are learned from the new data",
    )
    return found


def _choice(value: object) -> str:
    """A YAML ``true``/``false`` (read as a bool) as the choice's name."""
    return str(value).lower() if isinstance(value, bool) else str(value)


@dataclass(frozen=True)
class FineTuning:
    """How a run starts from a trained checkpoint (``finetune:`` in ``matgnn/configs/train.yaml``).

    Args:
        source: a checkpoint file or the name of a pretrained model (``None``: train from
            scratch; ``freeze`` and ``backbone_lr_scale`` still apply).
        freeze: ``none``, ``embeddings``, ``backbone`` or ``layers:<k>`` (:func:`freeze`).
        backbone_lr_scale: the backbone's learning rate relative to the heads'.
        keep_normalization: keep the source's target normalisation in the copied heads.
        unseen_elements: ``error`` or ``allow`` (:func:`check_elements`).
        transfer_weights: copy the source's weights (``False`` when resuming a fine-tuning
            run: its own checkpoint has them).
        cache_features: ``auto`` (default), ``true`` or ``false``: compute a frozen backbone's
            features once per crystal and train the heads on them
            (:mod:`matgnn.training.feature_cache`); ``auto`` does when the backbone is frozen
            and deterministic, ``true`` refuses a run where it cannot.
    """

    source: str | None = None
    freeze: str = "none"
    backbone_lr_scale: float = 1.0
    keep_normalization: bool = False
    unseen_elements: str = "error"
    transfer_weights: bool = True
    cache_features: str = "auto"

    def __post_init__(self) -> None:
        from matgnn.training.feature_cache import CACHE_CHOICES

        if self.cache_features not in CACHE_CHOICES:
            raise ValueError(
                f"finetune.cache_features={self.cache_features!r}; choose one of "
                f"{', '.join(CACHE_CHOICES)}"
            )

    @classmethod
    def from_settings(cls, settings: Mapping | None, resuming: bool = False) -> FineTuning:
        """From the ``finetune`` config node (``from`` is the source)."""
        settings = dict(settings or {})
        return cls(
            source=settings.get("from"),
            freeze=str(settings.get("freeze", "none")),
            backbone_lr_scale=float(settings.get("backbone_lr_scale", 1.0)),
            keep_normalization=bool(settings.get("keep_normalization", False)),
            unseen_elements=str(settings.get("unseen_elements", "error")),
            transfer_weights=not resuming,
            cache_features=_choice(settings.get("cache_features", "auto")),
        )

    def load_source(self) -> CrystalModel | None:
        """The source model (checked load), or ``None`` when there is nothing to transfer."""
        if not self.source or not self.transfer_weights:
            return None
        from matgnn.checkpoints.files import load_model
        from matgnn.checkpoints.pretrained import resolve_checkpoint

        return load_model(resolve_checkpoint(self.source))

    def start(
        self, model: CrystalModel, subsets: Mapping[str, Sequence[CrystalGraph]]
    ) -> tuple[CrystalModel, Transfer] | None:
        """Check the data's elements against the source and transfer its weights into
        ``model``; returns (source, transfer) or ``None``."""
        source = self.load_source()
        if source is None:
            return None
        check_elements(
            source.provenance.get("elements"),
            subsets,
            policy=self.unseen_elements,
            source=str(self.source),
            frozen=self.freeze != "none",
        )
        done = transfer(model, source)
        log.info(
            "fine-tuning from %s: backbone loaded; heads copied %s, new %s",
            self.source,
            done.copied_heads,
            done.new_heads,
        )
        return source, done
