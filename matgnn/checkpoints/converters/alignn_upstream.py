"""Weights of upstream ALIGNN (``alignn.models.alignn.ALIGNN``, NIST, Choudhary & DeCost, npj
Comput. Mater. 7, 185 (2021)), of its LayerNorm twin ``ALIGNNAtomWise`` and of that one's
pure-PyTorch rewrite ``ALIGNNAtomWisePure`` to matgnn's
:class:`~matgnn.models.ALIGNN` and back.

The layer set is the same: a ``Linear -> BatchNorm -> SiLU`` atom embedding, two such blocks
after each RBF expansion (bonds 0-8 Å, angle cosines -1..1), ``alignn_layers`` ALIGNN
updates and ``gcn_layers`` edge-gated convolutions with BatchNorm, mean pooling and one
``Linear``. Names, key by key:

===========================================  ==============================================
upstream                                     matgnn (``backbone.`` prefix)
===========================================  ==============================================
``atom_embedding.layer.{0,1}``               ``atom_embedding.{0,1}``
``edge_embedding.1.layer.{0,1}``             ``edge_embedding.1.{0,1}``
``edge_embedding.2.layer.{0,1}``             ``edge_embedding.1.{3,4}``
``angle_embedding.*``                        likewise
``*.src_gate / dst_gate / edge_gate``        the same names
``*.src_update`` (applied to the receiver)   ``*.self_update``
``*.dst_update`` (gathered from the sender)  ``*.neighbor_update``
``*.bn_nodes``, ``*.bn_edges``               the same names
``fc``                                       ``heads.<output>.mlp.0``
===========================================  ==============================================

The last ALIGNN layer's angle BatchNorm (``alignn_layers.-1.edge_update.bn_edges``) and the
last GCN layer's edge BatchNorm (``gcn_layers.-1.bn_edges``) compute outputs that upstream
never reads; matgnn does not build them, so :func:`to_matgnn` drops them (they do not change a
prediction or a gradient) and :func:`from_matgnn` fills them with fresh ``BatchNorm1d``
values. Upstream has no target normalisation: the converted head's normaliser is the
identity.

Upstream's ``alignn.models.alignn_atomwise.ALIGNNAtomWise`` (config name ``alignn_atomwise``,
the network upstream's trainer trains) is the same layer set with ``LayerNorm`` wherever
``ALIGNN`` has ``BatchNorm``, and the same names: it converts to matgnn's ALIGNN with
``norm="layer"`` and back. Only its crystal output ``out`` has a counterpart; its force,
stress and bond-length penalty terms act on other outputs (``calculate_gradient`` and the rest
are ignored), while the options that change ``out`` or add weights (``use_cutoff_function``,
``atomwise_output_features``, ``additional_output_features``, and ``energy_mult_natoms=False``
with ``use_penalty``, which adds the penalty to ``out`` itself) are refused.

Upstream's pure-PyTorch ``alignn.models.alignn_atomwise_pure.ALIGNNAtomWisePure`` (config name
``alignn_atomwise_pure``, no DGL) is ``ALIGNNAtomWise`` rewritten with index and scatter
operations: with its default ``conv_type="alignn"`` the same edge-gated layers, LayerNorms and
names, so it converts exactly as ``alignn_atomwise`` does. Its state adds one buffer,
``_species_table`` (an atomic-number lookup of the atom features, read only by its
LAMMPS/TorchScript entry point ``forward_tensors_z``, zeros until ``register_species_table``
fills it; ``forward`` never reads it): :func:`to_matgnn` drops it, :func:`from_matgnn`
(``network="alignn_atomwise_pure"``) writes it as zeros, so a converted model to be exported
for ``forward_tensors_z`` needs ``register_species_table()`` first, as upstream's own export
does. Refused besides ``alignn_atomwise``'s: its attention layers (``conv_type`` ``n_alignn``,
``t_alignn``: other layer kinds, other weights), and the ZBL repulsion that ``forward`` adds to
``out`` itself when it computes gradients (``use_zbl``, on by default whenever
``calculate_gradient`` is; a property model sets ``calculate_gradient=False``). Unlike
``ALIGNNAtomWise`` it adds its bond-length penalty to a copy, so ``energy_mult_natoms=False``
leaves ``out`` alone.

Upstream's ``link`` (``log``/``logit``), ``extra_features``, classification and
``zero_inflated`` options have no counterpart and are refused; so is a matgnn model upstream
cannot represent (another atom input, bond range, readout or head: :func:`representable`).

The agreement (same graph fed to both, forward and gradients, random and trained weights) is
measured by ``benchmarks/fidelity/alignn_upstream.py``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from matgnn.checkpoints.converters.state import numbered_layers
from matgnn.checkpoints.safe_config import CLASS, PARTIAL, VERSION
from matgnn.nn.mlp import NORMS

#: ``ALIGNNConfig`` fields and the matgnn backbone argument each becomes
CONFIG_FIELDS = {
    "alignn_layers": "alignn_layers",
    "gcn_layers": "gcn_layers",
    "hidden_features": "hidden_features",
    "embedding_features": "embedding_features",
    "edge_input_features": "edge_basis",
    "triplet_input_features": "angle_basis",
}
#: upstream options matgnn's ALIGNN has no counterpart for: refused unless at these values
UNSUPPORTED = {
    "atom_input_features": 92,
    "output_features": 1,
    "link": "identity",
    "zero_inflated": False,
    "classification": False,
    "extra_features": 0,
}
#: ``alignn_atomwise`` options that change its crystal output or add weights: refused unless
#: at these values
UNSUPPORTED_ATOMWISE = {
    "use_cutoff_function": False,
    "atomwise_output_features": 0,
    "additional_output_features": 0,
}
#: ``alignn_atomwise_pure`` options with no counterpart besides ``alignn_atomwise``'s: its
#: attention layer kinds (Shao et al. 2026) have other weights
UNSUPPORTED_PURE = {"conv_type": "alignn"}
#: upstream's model name -> matgnn's ``norm``
NETWORKS = {"alignn": "batch", "alignn_atomwise": "layer", "alignn_atomwise_pure": "layer"}
#: the networks with ``ALIGNNAtomWise``'s options (forces, stresses, penalty, ...)
ATOMWISE_NETWORKS = ("alignn_atomwise", "alignn_atomwise_pure")
#: ``ALIGNNAtomWisePure``'s atomic-number table of atom features (a buffer; rows)
SPECIES_TABLE = "_species_table"
SPECIES_TABLE_ROWS = 120
#: upstream's defaults of each network's config (alignn 2026.8.11), for the fields a config
#: leaves out: ``alignn_atomwise``'s differ from ``alignn``'s (and from matgnn's)
DEFAULTS = {
    "alignn": {"alignn_layers": 4, "gcn_layers": 4, "atom_input_features": 92,
               "edge_input_features": 80, "triplet_input_features": 40,
               "embedding_features": 64, "hidden_features": 256},
    "alignn_atomwise": {"alignn_layers": 2, "gcn_layers": 2, "atom_input_features": 1,
                        "edge_input_features": 80, "triplet_input_features": 40,
                        "embedding_features": 64, "hidden_features": 64},
}  # fmt: skip
DEFAULTS["alignn_atomwise_pure"] = DEFAULTS["alignn_atomwise"]  # its config mirrors it
#: per-layer renames inside an edge-gated convolution
CONV_NAMES = {"src_update": "self_update", "dst_update": "neighbor_update"}
#: the two MLP blocks after each RBF: upstream index -> matgnn Sequential offset
EMBEDDING_BLOCKS = {"1": 0, "2": 3}


class ConversionError(ValueError):
    """Weights or settings that have no place in the other implementation."""


def backbone_config(upstream: Mapping[str, Any]) -> dict[str, Any]:
    """matgnn's ALIGNN backbone (registry data) for an upstream ``ALIGNNConfig``,
    ``ALIGNNAtomWiseConfig`` or ``ALIGNNAtomWisePureConfig`` (as a dict; its ``name`` says
    which, ``alignn`` if absent)."""
    name = upstream.get("name", "alignn")
    if name not in NETWORKS:
        raise ConversionError(
            f"upstream network {name!r} has no matgnn counterpart (known: {sorted(NETWORKS)})"
        )
    upstream = {**DEFAULTS[name], **upstream}
    unsupported = {
        **UNSUPPORTED,
        **(UNSUPPORTED_ATOMWISE if name in ATOMWISE_NETWORKS else {}),
        **(UNSUPPORTED_PURE if name == "alignn_atomwise_pure" else {}),
    }
    refused = {
        key: upstream[key]
        for key, value in unsupported.items()
        if key in upstream and upstream[key] != value
    }
    if refused:
        raise ConversionError(f"upstream {name} settings with no matgnn counterpart: {refused}")
    if name == "alignn_atomwise" and upstream.get("use_penalty", True):
        if not upstream.get("energy_mult_natoms", True):
            # upstream then adds its bond-length penalty to `out` in place (en_out is out)
            raise ConversionError(
                "upstream alignn_atomwise with energy_mult_natoms=False and use_penalty=True "
                "adds its bond-length penalty to its crystal output: no matgnn counterpart"
            )
    if name == "alignn_atomwise_pure" and _pure_adds_zbl(upstream):
        raise ConversionError(
            "upstream alignn_atomwise_pure with calculate_gradient (and use_zbl, its default "
            "then) adds the ZBL repulsion to its crystal output: no matgnn counterpart "
            "(a property model sets calculate_gradient=False or use_zbl=False)"
        )
    return {
        CLASS: "alignn",
        VERSION: 1,
        "atom_features": "cgcnn",
        "norm": NETWORKS[name],
        **{
            ours: int(upstream[theirs])
            for theirs, ours in CONFIG_FIELDS.items()
            if theirs in upstream
        },
        "distance_max": 8.0,
    }


def _pure_adds_zbl(upstream: Mapping[str, Any]) -> bool:
    """Whether ``ALIGNNAtomWisePure`` with these settings adds ZBL to ``out`` (alignn
    2026.8.11: ``gradwise_weight=0`` switches ``calculate_gradient`` off; ``use_zbl=None``
    follows ``calculate_gradient``)."""
    gradients = bool(upstream.get("calculate_gradient", True)) and (
        upstream.get("gradwise_weight", 1.0) != 0
    )
    zbl = upstream.get("use_zbl")
    return gradients and (gradients if zbl is None else bool(zbl))


def model_config(upstream: Mapping[str, Any], output: Mapping[str, Any]) -> dict[str, Any]:
    """A full matgnn model config (registry data) with one scalar ``output`` (an output's
    ``to_config()``) and the ALIGNN graph preset."""
    from matgnn.graphs.config import GraphConfig

    head = {CLASS: "regression_head", VERSION: 1, PARTIAL: True, "num_targets": 1,
            "hidden": [], "readout": "mean"}  # fmt: skip
    return {
        CLASS: "crystal_model",
        VERSION: 1,
        "graph": GraphConfig.preset("alignn").to_config(),
        "backbone": backbone_config(upstream),
        "heads": {output["name"]: head},
        "outputs": [dict(output)],
    }


def _layer_counts(state: Mapping[str, Tensor]) -> tuple[int, int]:
    return numbered_layers(state, "alignn_layers"), numbered_layers(state, "gcn_layers")


def _unused(alignn_layers: int, gcn_layers: int) -> list[str]:
    """Prefixes of upstream's BatchNorms whose outputs are never read."""
    unused = []
    if alignn_layers:
        unused.append(f"alignn_layers.{alignn_layers - 1}.edge_update.bn_edges.")
    if gcn_layers:
        unused.append(f"gcn_layers.{gcn_layers - 1}.bn_edges.")
    return unused


def _rename(key: str) -> str:
    """An upstream backbone key as matgnn's (without the ``backbone.`` prefix)."""
    parts = key.split(".")
    if parts[0] == "atom_embedding" and parts[1] == "layer":
        return ".".join(["atom_embedding", *parts[2:]])
    if parts[0] in ("edge_embedding", "angle_embedding"):
        if parts[1] == "0":  # the RBF centres
            return key
        block, index = parts[1], int(parts[3])
        return ".".join([parts[0], "1", str(EMBEDDING_BLOCKS[block] + index), *parts[4:]])
    return ".".join(CONV_NAMES.get(p, p) for p in parts)


def to_matgnn(upstream: Mapping[str, Tensor], head: str) -> dict[str, Tensor]:
    """matgnn state-dict entries (``backbone.*`` and ``heads.<head>.mlp.0.*``) of an upstream
    ``ALIGNN``, ``ALIGNNAtomWise`` or ``ALIGNNAtomWisePure`` state dict (the same names; the
    last one's ``_species_table`` buffer is dropped). The atom-feature table and the normaliser
    are not in upstream's state: take them from a freshly built matgnn model."""
    alignn_layers, gcn_layers = _layer_counts(upstream)
    dropped = tuple(_unused(alignn_layers, gcn_layers))
    out: dict[str, Tensor] = {}
    for key, value in upstream.items():
        if key.startswith(dropped) or key == SPECIES_TABLE:
            continue
        if key.startswith("fc."):
            out[f"heads.{head}.mlp.0.{key[3:]}"] = value
        else:
            out[f"backbone.{_rename(key)}"] = value
    return out


def representable(config: Mapping[str, Any]) -> str:
    """The output name of a matgnn model config that upstream ``ALIGNN`` can represent;
    raises :class:`ConversionError` saying what cannot be: upstream reads the CGCNN atom table,
    expands bond lengths on 0-8 Å, averages the atoms and applies one ``Linear``."""
    backbone, heads = config["backbone"], config["heads"]
    problems = []
    if backbone.get(CLASS) != "alignn":
        problems.append(f"the backbone is {backbone.get(CLASS)!r}, not alignn")
    if backbone.get("atom_features", "cgcnn") != "cgcnn":
        problems.append(f"atom_features={backbone['atom_features']!r} (upstream: cgcnn)")
    if float(backbone.get("distance_max", 8.0)) != 8.0:
        problems.append(f"distance_max={backbone['distance_max']} (upstream: 8)")
    if len(heads) != 1:
        problems.append(f"{len(heads)} heads (upstream: one fc)")
    for name, head in heads.items():
        wanted = {CLASS: "regression_head", "readout": "mean", "num_targets": 1}
        found = {k: head.get(k, {"readout": "mean", "num_targets": 1}.get(k)) for k in wanted}
        if found != wanted or list(head.get("hidden", [])) or head.get("variance"):
            problems.append(f"head {name!r} is not one mean-pooled Linear: {dict(head)}")
    if problems:
        raise ConversionError("upstream ALIGNN cannot represent this model: " + "; ".join(problems))
    return next(iter(heads))


def from_matgnn(
    state: Mapping[str, Tensor], config: Mapping[str, Any], network: str | None = None
) -> dict[str, Tensor]:
    """An upstream ``ALIGNN`` state dict of a matgnn ALIGNN (its state dict and model config,
    checked by :func:`representable`; its normaliser must be the identity), with upstream's two
    unused BatchNorms at fresh values; an ``ALIGNNAtomWise`` state dict (two unused fresh
    LayerNorms) for ``norm="layer"``, or with ``network="alignn_atomwise_pure"`` an
    ``ALIGNNAtomWisePure`` one (the same, and its ``_species_table`` buffer as zeros).
    ``network`` (upstream's config name) must agree with the model's ``norm``."""
    norm = config["backbone"].get("norm", "batch")
    network = network or {"batch": "alignn", "layer": "alignn_atomwise"}.get(norm)
    if network not in NETWORKS:
        raise ConversionError(f"unknown upstream network {network!r} (known: {sorted(NETWORKS)})")
    if NETWORKS[network] != norm:
        raise ConversionError(
            f"upstream network {network!r} for a matgnn ALIGNN with norm={norm!r}: "
            f"the norms differ (known: {NETWORKS})"
        )
    head = representable(config)
    prefix = f"heads.{head}."
    normalizer = {k[len(prefix + "normalizer.") :]: v for k, v in state.items()
                  if k.startswith(prefix + "normalizer.")}  # fmt: skip
    if normalizer and not (
        torch.all(normalizer["mean"] == 0)
        and torch.all(normalizer["std"] == 1)
        and torch.all(normalizer["element_reference"] == 0)
    ):
        raise ConversionError(
            "the head has a fitted target normaliser, which upstream ALIGNN has no place for"
        )
    backbone = {k[len("backbone.") :]: v for k, v in state.items() if k.startswith("backbone.")}
    reverse = {_rename(k): k for k in _upstream_keys(backbone)}
    out: dict[str, Tensor] = {}
    for ours, theirs in reverse.items():
        out[theirs] = backbone[ours]
    for key in ("weight", "bias"):
        out[f"fc.{key}"] = state[f"{prefix}mlp.0.{key}"]
    alignn_layers, gcn_layers = _layer_counts(backbone)
    width = backbone["atom_embedding.0.weight"].size(0)
    fresh = NORMS[norm](width).state_dict()
    for unused in _unused(alignn_layers, gcn_layers):
        for key, value in fresh.items():
            out[unused + key] = value.clone()
    if network == "alignn_atomwise_pure":
        features = backbone["atom_embedding.0.weight"].size(1)
        out[SPECIES_TABLE] = torch.zeros(SPECIES_TABLE_ROWS, features)
    return out


def _upstream_keys(backbone: Mapping[str, Tensor]) -> list[str]:
    """Upstream's name of every matgnn backbone key but the atom table (inverse of
    :func:`_rename`)."""
    inverse_blocks = {offset: block for block, offset in EMBEDDING_BLOCKS.items()}
    inverse_conv = {ours: theirs for theirs, ours in CONV_NAMES.items()}
    keys = []
    for key in backbone:
        parts = key.split(".")
        if parts[0] == "atom_input":
            continue
        if parts[0] == "atom_embedding":
            keys.append(".".join(["atom_embedding", "layer", *parts[1:]]))
        elif parts[0] in ("edge_embedding", "angle_embedding") and parts[1] == "1":
            index = int(parts[2])
            block = inverse_blocks[0 if index < 3 else 3]
            keys.append(".".join([parts[0], block, "layer", str(index % 3), *parts[3:]]))
        elif parts[0] in ("edge_embedding", "angle_embedding"):
            keys.append(key)
        else:
            keys.append(".".join(inverse_conv.get(p, p) for p in parts))
    return keys
