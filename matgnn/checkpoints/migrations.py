"""Checkpoint format versions and the migrations between them.

* **1** (no ``matgnn_format`` key; matgnn up to issue 14): the model config named classes by
  Hydra ``_target_`` module paths, rebuilt with ``hydra.utils.instantiate``; the optimizer,
  scheduler and data loader were stored as Hydra configs too.
* **2**: objects are ``{"@class": <registered name>, "@version": n, ...}``
  (:mod:`matgnn.checkpoints.safe_config`); the training recipe and the data loader are plain
  descriptions (``"class": "torch.optim.AdamW"``), never instantiated.

A version-1 file is migrated on read: each ``_target_`` is looked up in
:data:`LEGACY_TARGETS`, a fixed table of every path that matgnn ever wrote, and any other
path is refused with its key path. Nothing is imported by the name a file holds.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import Any

from matgnn.checkpoints.safe_config import CLASS, PARTIAL, VERSION, UnsafeConfigError

#: the key of the format version in a checkpoint dict
FORMAT_KEY = "matgnn_format"
#: the version this matgnn writes
FORMAT_VERSION = 2


def _paths(name: str, *paths: str) -> dict[str, str]:
    return dict.fromkeys(paths, name)


#: every ``_target_`` a version-1 checkpoint's model config can hold -> its registered name
LEGACY_TARGETS: Mapping[str, str] = {
    **_paths("crystal_model", "matgnn.models.CrystalModel", "matgnn.models.base.CrystalModel"),
    **_paths("graph_config", "matgnn.graphs.GraphConfig", "matgnn.graphs.config.GraphConfig"),
    **_paths("cgcnn", "matgnn.models.CGCNN", "matgnn.models.cgcnn.CGCNN"),
    **_paths("alignn", "matgnn.models.ALIGNN", "matgnn.models.alignn.ALIGNN"),
    **_paths("matformer", "matgnn.models.Matformer", "matgnn.models.matformer.Matformer"),
    **_paths("potnet", "matgnn.models.PotNet", "matgnn.models.potnet.PotNet"),
    **_paths(
        "e3nn",
        "matgnn.models.EquivariantNetwork",
        "matgnn.models.equivariant.EquivariantNetwork",
    ),
    **_paths(
        "ye2018_net",
        "matgnn.models.SiteDescriptorNetwork",
        "matgnn.models.site_descriptor_net.SiteDescriptorNetwork",
    ),
    **_paths(
        "regression_head", "matgnn.heads.RegressionHead", "matgnn.heads.regression.RegressionHead"
    ),
    **_paths(
        "classification_head",
        "matgnn.heads.ClassificationHead",
        "matgnn.heads.classification.ClassificationHead",
    ),
    **_paths("vector_head", "matgnn.heads.VectorHead", "matgnn.heads.vector.VectorHead"),
    **_paths("tensor_head", "matgnn.heads.TensorHead", "matgnn.heads.tensor.TensorHead"),
    **_paths(
        "atom_tensor_head",
        "matgnn.heads.AtomTensorHead",
        "matgnn.heads.atom_tensor.AtomTensorHead",
    ),
    **_paths("scalar_output", "matgnn.outputs.ScalarOutput", "matgnn.outputs.scalar.ScalarOutput"),
    **_paths(
        "class_output",
        "matgnn.outputs.ClassOutput",
        "matgnn.outputs.classification.ClassOutput",
    ),
    **_paths(
        "gaussian_output", "matgnn.outputs.GaussianOutput", "matgnn.outputs.gaussian.GaussianOutput"
    ),
    **_paths(
        "spectrum_output", "matgnn.outputs.SpectrumOutput", "matgnn.outputs.spectrum.SpectrumOutput"
    ),
    **_paths("tensor_output", "matgnn.outputs.TensorOutput", "matgnn.outputs.tensor.TensorOutput"),
    **_paths(
        "atom_tensor_output",
        "matgnn.outputs.AtomTensorOutput",
        "matgnn.outputs.tensor.AtomTensorOutput",
    ),
    **_paths(
        "elastic_tensor_output",
        "matgnn.outputs.ElasticTensorOutput",
        "matgnn.outputs.tensor.ElasticTensorOutput",
    ),
}


def _legacy_model(node: Any, path: str) -> Any:
    """A version-1 model config with ``_target_``/``_partial_`` turned into ``@class``/
    ``@partial`` through :data:`LEGACY_TARGETS`."""
    if isinstance(node, list):
        return [_legacy_model(item, f"{path}[{k}]") for k, item in enumerate(node)]
    if not isinstance(node, Mapping):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        here = f"{path}.{key}"
        if key == "_target_":
            name = LEGACY_TARGETS.get(value) if isinstance(value, str) else None
            if name is None:
                raise UnsafeConfigError(
                    f"{here}: {str(value)[:80]!r} is not a class that matgnn ever wrote into a "
                    "checkpoint; refused (a checkpoint may only name registered matgnn classes)"
                )
            out[CLASS] = name
            out.setdefault(VERSION, 1)
        elif key == "_partial_":
            out[PARTIAL] = value
        else:
            out[key] = _legacy_model(value, here)
    return out


def described(config: Any) -> Any:
    """A Hydra config as a plain description: ``_target_`` becomes ``class`` (a string that is
    recorded, never called); the other Hydra keys are dropped."""
    if isinstance(config, list):
        return [described(item) for item in config]
    if not isinstance(config, Mapping):
        return config
    out = {}
    for key, value in config.items():
        if key == "_target_":
            out["class"] = value
        elif key not in ("_partial_", "_args_", "_recursive_", "_convert_"):
            out[key] = described(value)
    return out


def _v1_to_v2(checkpoint: dict[str, Any]) -> dict[str, Any]:
    hyper = checkpoint.get("hyper_parameters")
    if isinstance(hyper, Mapping) and "model" in hyper:
        hyper = dict(hyper)
        hyper["model"] = _legacy_model(hyper["model"], "hyper_parameters.model")
        recipe = {k: hyper.pop(k) for k in ("optimizer", "scheduler") if k in hyper}
        if recipe:
            hyper["recipe"] = described({k: v for k, v in recipe.items() if v is not None})
        provenance = hyper.get("provenance")
        if isinstance(provenance, Mapping) and isinstance(provenance.get("data_source"), Mapping):
            provenance = dict(provenance)
            provenance["data_source"] = described(provenance["data_source"])
            hyper["provenance"] = provenance
        checkpoint["hyper_parameters"] = hyper
    return checkpoint


#: ``{version: function}`` turning a checkpoint of that version into the next
MIGRATIONS: Mapping[int, Callable[[dict[str, Any]], dict[str, Any]]] = {1: _v1_to_v2}


def format_version(checkpoint: Mapping[str, Any]) -> int:
    """The format version of a checkpoint dict (1 when it records none)."""
    version = checkpoint.get(FORMAT_KEY, 1)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise UnsafeConfigError(f"{FORMAT_KEY}: must be an integer >= 1, got {version!r}")
    return version


def migrate(checkpoint: Mapping[str, Any]) -> dict[str, Any]:
    """``checkpoint`` brought to :data:`FORMAT_VERSION` (a copy; the input is not changed)."""
    version = format_version(checkpoint)
    if version > FORMAT_VERSION:
        raise UnsafeConfigError(
            f"checkpoint format {version} was written by a newer matgnn (this one reads up to "
            f"{FORMAT_VERSION}); upgrade matgnn"
        )
    result = dict(checkpoint)
    if "hyper_parameters" in result:
        result["hyper_parameters"] = copy.deepcopy(result["hyper_parameters"])
    while version < FORMAT_VERSION:
        result = MIGRATIONS[version](result)
        version += 1
    result[FORMAT_KEY] = FORMAT_VERSION
    return result
