"""A model assembles itself from (graph, backbone, outputs): one head per declared output, the
equivariant backbone widened to the irreps its tensor heads need, all as registry data.

:func:`assemble` is what ``matgnn.train`` calls with the composed ``model=`` config and the
task's outputs; the result is the config a checkpoint stores and :func:`build` constructs (no
Hydra, no import by name). :func:`from_hydra` turns a composed Hydra node (trusted: our own
YAML, with ``_target_`` paths) into registry data once, at the start of a run.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from matgnn.checkpoints import registry, safe_config
from matgnn.checkpoints.safe_config import CLASS, PARTIAL, VERSION
from matgnn.graphs.config import GraphConfig
from matgnn.outputs import Output

log = logging.getLogger(__name__)

#: the head a model config defines for a bare ``instantiate(compose_option("model", name))``;
#: the template of every output's default head.
DEFAULT_HEAD = "y"


def from_hydra(node: Any) -> Any:
    """A composed, resolved Hydra config (plain containers) as registry data: each
    ``_target_`` becomes the registered name of the class it points at (a class that is not
    registered is refused in words), ``_partial_`` becomes ``@partial``; a graph node (a
    ``GraphConfig`` or one of its presets) becomes the full graph as data."""
    if isinstance(node, list):
        return [from_hydra(item) for item in node]
    if not isinstance(node, Mapping):
        return node
    target = node.get("_target_")
    if target is None:
        return {key: from_hydra(value) for key, value in node.items()}
    from hydra.utils import get_object, instantiate

    obj = get_object(str(target))
    if obj is GraphConfig or getattr(obj, "__self__", None) is GraphConfig:  # a preset
        return instantiate(dict(node)).to_config()
    out: dict[str, Any] = {CLASS: registry.name_of(obj), VERSION: registry.entry_of(obj).version}
    if node.get("_partial_"):
        out[PARTIAL] = True
    for key, value in node.items():
        if key not in safe_config.HYDRA_KEYS:
            out[key] = from_hydra(value)
    return out


def head_configs(
    outputs: Sequence[Output], template: Mapping[str, Any], chosen: Mapping[str, Any] | None
) -> dict[str, Any]:
    """One head per output: ``chosen[name]`` where given (``task.heads``), else the output's
    default head built from the model's template head."""
    chosen = dict(chosen or {})
    unknown = sorted(set(chosen) - {o.name for o in outputs})
    if unknown:
        raise ValueError(f"task.heads names {unknown}, which are not outputs of the task")
    return {o.name: chosen.get(o.name) or o.head_config(template) for o in outputs}


def widened_backbone(backbone: Mapping[str, Any], outputs: Sequence[Output]) -> dict[str, Any]:
    """``backbone`` changed by its class so that it emits the irreps that the outputs'
    equivariant heads need (:meth:`~matgnn.models.interfaces.Backbone.with_irreps_for`: the
    e3nn network widens its ``irreps_out``, SevenNet emits a block's equivariant features)."""
    backbone = dict(backbone)
    needed = [irreps for irreps in (o.irreps for o in outputs) if irreps]
    found = registry.entry(str(backbone.get(CLASS, "")))
    if not needed or found is None or not hasattr(found.cls, "with_irreps_for"):
        return backbone
    widened = found.cls.with_irreps_for(backbone, needed)
    for key in sorted(set(widened) | set(backbone)):
        if widened.get(key) != backbone.get(key):
            log.info(
                "backbone %s: %s -> %s (the task's tensor heads)",
                key,
                backbone.get(key),
                widened.get(key),
            )
    return widened


def assemble(
    model: Mapping[str, Any],
    outputs: Sequence[Output],
    heads: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The full model config, as registry data, of ``model`` (registry data: graph, backbone
    and the template head ``heads.y``) predicting ``outputs``; ``heads`` overrides the default
    head of the outputs it names."""
    if not outputs:
        raise ValueError("a model needs at least one declared output")
    template = (model.get("heads") or {}).get(DEFAULT_HEAD)
    if template is None:
        raise ValueError(f"model config has no template head heads.{DEFAULT_HEAD}")
    return {
        **{k: v for k, v in model.items() if k not in ("heads", "outputs")},
        "backbone": widened_backbone(model["backbone"], outputs),
        "heads": head_configs(outputs, template, heads),
        "outputs": [o.to_config() for o in outputs],
    }


def with_source(
    model: Mapping[str, Any],
    source: Mapping[str, Any],
    source_name: str,
    chosen_heads: Mapping[str, Any] | None = None,
    *,
    outputs: Sequence[Output],
) -> dict[str, Any]:
    """``model`` (assembled) taking the graph and backbone of ``source`` (a checkpoint's
    model config) for fine-tuning, and the source's head for each output both declare
    identically. The source's backbone is widened for the tensor heads of ``outputs`` (the
    run's outputs) as :func:`assemble` widens the run's own (:func:`widened_backbone`): a
    tensor task fine-tuned from a scalar-task SevenNet checkpoint gets block 3's equivariant
    features from the same weights (when the checkpoint kept block 3, as its default of all
    five blocks does); where widening adds weights (e3nn's ``irreps_out``, SevenNet blocks the
    checkpoint dropped) the transfer refuses them by name. A source whose backbone is another
    architecture than the run's ``model=`` is refused in words: the run's folder and
    provenance would name the wrong model."""
    mine, theirs = model["backbone"][CLASS], source["backbone"][CLASS]
    if mine != theirs:
        raise ValueError(
            f"finetune.from={source_name} is a {theirs} model, but this run chose model={mine}: "
            f"use model={theirs} (fine-tuning keeps the checkpoint's architecture)"
        )
    if model["graph"] != source["graph"] or model["backbone"] != source["backbone"]:
        log.info(
            "finetune.from=%s: graph and backbone settings taken from the checkpoint", source_name
        )
    backbone = widened_backbone(source["backbone"], outputs)
    model = {**model, "graph": source["graph"], "backbone": backbone}
    heads = dict(model["heads"])
    saved_outputs = {o["name"]: o for o in source["outputs"]}
    for output in model["outputs"]:
        name = output["name"]
        if saved_outputs.get(name) == output and name not in (chosen_heads or {}):
            heads[name] = source["heads"][name]
    return {**model, "heads": heads}


def build(config: Mapping[str, Any]):
    """The :class:`~matgnn.models.CrystalModel` of an assembled config (validated first)."""
    return safe_config.build(config, "model", root="crystal_model")
