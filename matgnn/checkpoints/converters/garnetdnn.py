"""Ye et al.'s published garnet and perovskite networks (materialsvirtuallab/garnetdnn, BSD-3)
as matgnn ``ye2018_net`` models.

    python -m matgnn.checkpoints.converters.garnetdnn --source <garnetdnn checkout>/models

Ye, Chen, Wang, Chu & Ong, Nat. Commun. 9, 3800 (2018) published Keras 2.0.6 models
(``models/<garnet|perovskite>/model_<kind>.h5``) and the scikit-learn ``StandardScaler`` of
their inputs (``scaler_<kind>.pkl``). Both are read as data:

* the ``.h5`` with ``h5py``: the layer list from the ``model_config`` attribute (JSON) and
  each ``Dense`` layer's ``kernel:0`` and ``bias:0`` arrays; nothing is deserialised by Keras;
* the ``.pkl`` is **never unpickled**: its opcodes are walked with :mod:`pickletools` and the
  float64 bytes of ``mean_``, ``var_`` and ``scale_`` are read (checked: little-endian ``f8``,
  the recorded shape, ``scale_ = sqrt(var_)`` where ``var_ > 0``).

What converts: the unmixed networks, ``Dense(h, relu) -> Dense(1, linear)`` on the site
descriptor (:mod:`matgnn.graphs.site_descriptors`): garnet ``[r_C, X_C, r_A, X_A, r_D, X_D]``
with Shannon radii at VIII/VI/IV (garnetdnn ``cn_specific=True``, what its web app feeds the
garnet models), perovskite ``[r_A, X_A, r_B, X_B]`` with pymatgen's ``ionic_radius``
(``cn_specific=False``, what its perovskite app feeds). The output is Ef relative to the
binary oxides in eV/atom (the app multiplies by 20 or 10 atoms for eV per formula unit).

What does not: the mixed-site networks (garnet ``model_c``/``a``/``d``, perovskite
``model_a``/``b``) append a binary code of the DFT ordering's index in Ye et al.'s enumeration
to the descriptor and are evaluated as the minimum over every ordering; neither the code nor the
minimum is a ``ye2018_net`` (a descriptor network with a head), and no crystal here records that
index. The garnet ``model_average`` takes six inputs whose construction garnetdnn's code does
not show. :func:`read_published` still reads all of them (:func:`numpy_forward` runs them), and
:func:`convert` refuses them in words.
"""

from __future__ import annotations

import itertools
import json
import pickletools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from matgnn.checkpoints.converters.packaging import converter_main, write_packaged
from matgnn.checkpoints.files import check_checkpoint, parameter_count, stamp
from matgnn.checkpoints.safe_config import CLASS, PARTIAL, VERSION
from matgnn.graphs.cache import file_sha256
from matgnn.graphs.config import GraphConfig

TARGET = "ef_vs_binary_oxides"
UNITS = "eV/atom"
SOURCE_COMMIT = "materialsvirtuallab/garnetdnn@333bddc"
LICENCE = "BSD-3-Clause (materialsvirtuallab/garnetdnn, Copyright (c) 2017, Materials Virtual Lab)"
CITATION = (
    "W. Ye, C. Chen, Z. Wang, I.-H. Chu and S. P. Ong, Deep neural networks for accurate "
    "predictions of crystal stability, Nat. Commun. 9, 3800 (2018)"
)


class PublishedFileError(ValueError):
    """A garnetdnn file that cannot be read as the network it should hold."""


@dataclass(frozen=True)
class PublishedNetwork:
    """One of Ye et al.'s unmixed networks.

    Args:
        name: the matgnn name.
        structure_type: ``garnet`` or ``perovskite`` (garnetdnn's folder).
        kind: the file's suffix (``unmix``).
        sites: site specs of the descriptor, in garnetdnn's order.
        data: what it was trained on, in words.
        published: the paper's error for this model.
        sha256: of the published ``.h5`` and ``.pkl`` (garnetdnn@333bddc); :func:`convert`
            refuses other files.
    """

    name: str
    structure_type: str
    kind: str
    sites: tuple[str, ...]
    data: str
    published: str
    sha256: tuple[str, str] | None = None


NETWORKS = {
    n.name: n
    for n in (
        PublishedNetwork(
            "ye2018_garnet_unmixed",
            "garnet",
            "unmix",
            ("C:VIII", "A:VI", "D:IV"),
            "Ye et al.'s 635 unmixed C3A2D3O12 garnets (their DFT, GGA/GGA+U, Materials "
            "Project settings; the scaler records 635 samples), Ef relative to the binary oxides",
            "MAE 7-10 meV/atom (Ye et al. 2018, garnet models)",
            (
                "006bc10deb2b0e9612978bc579e683e14c915c535fb361247536ce3e38e618e6",
                "aa0906057cc02080b19f60143564b08025d88f2a0e3613b44a6525c20d77836d",
            ),
        ),
        PublishedNetwork(
            "ye2018_perovskite_unmixed",
            "perovskite",
            "unmix",
            ("A", "B"),
            "Ye et al.'s 240 unmixed ABO3 perovskites (their DFT; the scaler records 240 "
            "samples), Ef relative to the binary oxides",
            "MAE 21-34 meV/atom (Ye et al. 2018, unmixed perovskites, 10-fold CV)",
            (
                "7727feac03a02f486375bfe69c17b4c5a95d93d7ab8c97b4a0d2cc0081b9d98a",
                "4bd996bb3d0589902f73c9440baa5ca3c57e9ec3cccc62f6c8991f045089fa76",
            ),
        ),
    )
}


def read_dense_layers(path: str | Path) -> list[dict[str, Any]]:
    """``[{"units", "activation", "kernel" [in, out], "bias" [out]}, ...]`` of a Keras
    Sequential ``.h5`` (Dropout layers skipped: inference is the identity)."""
    try:
        import h5py
    except ImportError as missing:
        raise ImportError(
            "reading garnetdnn's .h5 files needs h5py (pip install h5py; in matgnn's dev extras)"
        ) from missing
    path = Path(path)
    with h5py.File(path, "r") as f:
        if "model_config" not in f.attrs:
            raise PublishedFileError(f"{path}: no model_config attribute (not a Keras model file)")
        config = json.loads(f.attrs["model_config"])
        layers = config.get("config")
        if config.get("class_name") != "Sequential" or not isinstance(layers, list):
            raise PublishedFileError(f"{path}: not a Keras 2 Sequential model")
        dense = []
        for layer in layers:
            kind, options = layer.get("class_name"), layer.get("config", {})
            if kind == "Dropout":
                continue
            if kind != "Dense":
                raise PublishedFileError(f"{path}: layer {kind} is not Dense or Dropout")
            name = options["name"]
            group = f["model_weights"][name][name]
            kernel, bias = np.asarray(group["kernel:0"]), np.asarray(group["bias:0"])
            if options.get("use_bias", True) is False or kernel.shape[1] != options["units"]:
                raise PublishedFileError(f"{path}: layer {name} does not match its config")
            if not (np.isfinite(kernel).all() and np.isfinite(bias).all()):
                raise PublishedFileError(f"{path}: layer {name} holds non-finite weights")
            dense.append(
                {
                    "units": int(options["units"]),
                    "activation": options.get("activation", "linear"),
                    "kernel": kernel.astype(np.float64),
                    "bias": bias.astype(np.float64),
                }
            )
    for a, b in itertools.pairwise(dense):
        if a["kernel"].shape[1] != b["kernel"].shape[0]:
            raise PublishedFileError(f"{path}: layer widths do not chain")
    return dense


_INT_OPS = ("BININT", "BININT1", "BININT2", "INT", "LONG", "LONG1")


def read_scaler(path: str | Path) -> dict[str, Any]:
    """``mean``, ``scale``, ``var`` (float64 arrays) and ``n_samples_seen`` of a pickled
    scikit-learn ``StandardScaler``, read from its opcodes without unpickling.

    Each attribute name must occur once; each array's ``ndarray.__setstate__`` tuple is read
    as (version, shape, dtype, fortran, data): a one-dimensional shape, and exactly
    ``8 x length`` bytes of data; the pickle's only dtype must be little-endian ``f8``. This
    reads sklearn's own pickles; :func:`convert` further accepts only the published files
    (their SHA-256 is pinned in :data:`NETWORKS`)."""
    path = Path(path)
    ops = list(pickletools.genops(path.read_bytes()))
    strings = [(i, arg) for i, (_, arg, _) in enumerate(ops) if isinstance(arg, str)]
    if not any("StandardScaler" in arg for _, arg in strings):
        raise PublishedFileError(f"{path}: not a pickled sklearn StandardScaler")
    names = ("mean_", "var_", "scale_", "n_samples_seen_")
    found = [(arg, i) for i, arg in strings if arg in names]
    repeated = sorted({a for a, _ in found if sum(b == a for b, _ in found) > 1})
    if repeated:
        raise PublishedFileError(f"{path}: {repeated} occur more than once")
    keys = dict(found)
    missing = sorted({"mean_", "scale_", "n_samples_seen_"} - set(keys))
    if missing:
        raise PublishedFileError(f"{path}: no {missing} in the pickle")
    # every array's dtype is the one memoised numpy dtype: it must be little-endian float64
    codes = (
        {arg for _, arg in strings if re.fullmatch(r"[<>|=]|[a-zA-Z]+\d*", arg)}
        - set(names)
        - {"copy", "with_mean", "with_std"}
    )
    if not {"f8", "<"} <= codes or codes & {"f4", "f2", "i8", "i4", ">", "float32", "float64"}:
        raise PublishedFileError(f"{path}: arrays are not all little-endian float64 ({codes})")
    count = next(
        (arg for op, arg, _ in ops[keys["n_samples_seen_"] + 1 :] if op.name in _INT_OPS), None
    )
    if not isinstance(count, int) or count <= 0:
        raise PublishedFileError(f"{path}: n_samples_seen_ is not a positive integer")
    out: dict[str, Any] = {"n_samples_seen": count}
    for key in ("mean_", "var_", "scale_"):
        if key in keys:
            end = min([k for k in keys.values() if k > keys[key]], default=len(ops))
            out[key.rstrip("_")] = _array_after(ops, keys[key], end, f"{path}: {key}")
    mean, scale = out["mean"], out["scale"]
    if mean.shape != scale.shape or not (np.isfinite(mean).all() and (scale > 0).all()):
        raise PublishedFileError(f"{path}: mean_/scale_ shapes differ or scale_ is not positive")
    if "var" in out:
        expected = np.where(out["var"] > 0, np.sqrt(out["var"]), 1.0)
        if out["var"].shape != mean.shape or not np.allclose(expected, scale, rtol=1e-12):
            raise PublishedFileError(f"{path}: scale_ is not sqrt(var_)")
    return out


def _array_after(ops: list, start: int, end: int, where: str) -> np.ndarray:
    """The 1-D float64 array whose ``__setstate__`` tuple follows opcode ``start`` (before
    ``end``, the next attribute): ``MARK version (shape,) dtype fortran data TUPLE BUILD``;
    exactly one byte string of more than one byte may follow the shape."""
    mark = next((i for i in range(start, len(ops)) if ops[i][0].name == "MARK"), None)
    if mark is None or ops[mark + 1][0].name not in _INT_OPS:
        raise PublishedFileError(f"{where}: no ndarray state after the name")
    shape, i = [], mark + 2
    while ops[i][0].name in _INT_OPS:
        shape.append(ops[i][1])
        i += 1
    if not ops[i][0].name.startswith("TUPLE") or len(shape) != 1 or shape[0] <= 0:
        raise PublishedFileError(f"{where}: shape {shape} is not one-dimensional")
    buffers = [arg for _, arg, _ in ops[i:end] if isinstance(arg, bytes) and len(arg) > 1]
    data = buffers[0] if len(buffers) == 1 else None
    if data is None or len(data) != 8 * shape[0]:
        raise PublishedFileError(f"{where}: no {8 * shape[0]}-byte float64 buffer of shape {shape}")
    return np.frombuffer(data, dtype="<f8").copy()


def read_published(folder: str | Path, structure_type: str, kind: str) -> dict[str, Any]:
    """The layers and scaler of ``<folder>/<structure_type>/model_<kind>.h5``."""
    folder = Path(folder) / structure_type
    model, scaler = folder / f"model_{kind}.h5", folder / f"scaler_{kind}.pkl"
    for path in (model, scaler):
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found (garnetdnn's models/ folder expected)")
    layers, scale = read_dense_layers(model), read_scaler(scaler)
    if layers[0]["kernel"].shape[0] != len(scale["mean"]):
        raise PublishedFileError(
            f"{model}: {layers[0]['kernel'].shape[0]} inputs, scaler has {len(scale['mean'])}"
        )
    return {"layers": layers, "scaler": scale, "files": (model, scaler)}


def numpy_forward(published: dict[str, Any], descriptors: np.ndarray) -> np.ndarray:
    """Keras' forward pass in plain numpy: standardise, then each Dense with its activation
    (``relu`` or ``linear``). ``descriptors [B, D]`` -> ``[B]``."""
    scaler = published["scaler"]
    x = (np.asarray(descriptors, dtype=np.float64) - scaler["mean"]) / scaler["scale"]
    for layer in published["layers"]:
        x = x @ layer["kernel"] + layer["bias"]
        if layer["activation"] == "relu":
            x = np.maximum(x, 0.0)
        elif layer["activation"] != "linear":
            raise PublishedFileError(f"activation {layer['activation']!r} not supported")
    return x[:, 0]


def model_config(network: PublishedNetwork, hidden: int) -> dict[str, Any]:
    """The matgnn model (registry data) of an unmixed network with ``hidden`` units."""
    from matgnn.outputs import ScalarOutput

    graph = GraphConfig(
        mode="radius", cutoff=4.0, site_descriptors=list(network.sites), species_per_site=1
    )
    return {
        CLASS: "crystal_model",
        VERSION: 1,
        "graph": graph.to_config(),
        "backbone": {
            CLASS: "ye2018_net",
            VERSION: 1,
            "num_descriptors": 2 * len(network.sites),
            "hidden": [hidden],
            "activation": "ReLU",
        },
        "heads": {
            TARGET: {
                CLASS: "regression_head",
                VERSION: 1,
                PARTIAL: True,
                "num_targets": 1,
                "hidden": [],
                "readout": "mean",
            }
        },
        "outputs": [ScalarOutput(TARGET, target=TARGET, units=UNITS).to_config()],
    }


def convert(folder: str | Path, network: PublishedNetwork) -> dict[str, Any]:
    """The matgnn checkpoint (a dict, current format, checked) of one published network."""
    from matgnn.models.assembly import build

    published = read_published(folder, network.structure_type, network.kind)
    digests = tuple(file_sha256(f) for f in published["files"])
    if network.sha256 is not None and digests != network.sha256:
        raise PublishedFileError(
            f"{published['files'][0].parent}: model_{network.kind}.h5 / scaler_{network.kind}.pkl "
            f"are not the files published at {SOURCE_COMMIT} (SHA-256 {digests})"
        )
    layers, scaler = published["layers"], published["scaler"]
    shape = [(layer["units"], layer["activation"]) for layer in layers]
    if len(layers) != 2 or shape[0][1] != "relu" or shape[1] != (1, "linear"):
        raise PublishedFileError(
            f"{published['files'][0]}: layers {shape} are not Dense(h, relu) -> Dense(1, linear),"
            " the ye2018_net form (the mixed-site models are not: see the module docstring)"
        )
    if layers[0]["kernel"].shape[0] != 2 * len(network.sites):
        raise PublishedFileError(
            f"{published['files'][0]}: {layers[0]['kernel'].shape[0]} inputs, the descriptor of "
            f"sites {network.sites} has {2 * len(network.sites)}"
        )
    config = model_config(network, layers[0]["units"])
    model = build(config)
    state = model.state_dict()
    state["backbone.input_mean"] = torch.tensor(
        scaler["mean"], dtype=state["backbone.input_mean"].dtype
    )
    state["backbone.input_std"] = torch.tensor(
        scaler["scale"], dtype=state["backbone.input_std"].dtype
    )
    state["backbone.fitted"] = torch.tensor(True)
    placed = {
        "backbone.layers.0.0": layers[0],
        f"heads.{TARGET}.mlp.0": layers[1],
    }
    for prefix, layer in placed.items():
        weight = state[f"{prefix}.weight"]
        state[f"{prefix}.weight"] = torch.tensor(layer["kernel"].T, dtype=weight.dtype)
        state[f"{prefix}.bias"] = torch.tensor(layer["bias"], dtype=weight.dtype)
    state[f"heads.{TARGET}.normalizer.mean"].zero_()
    state[f"heads.{TARGET}.normalizer.std"].fill_(1.0)
    state[f"heads.{TARGET}.normalizer.element_reference"].zero_()
    model.load_state_dict(state)  # strict: every key placed
    model_file, scaler_file = published["files"]
    provenance = {
        "converted_from": {
            "files": [model_file.name, scaler_file.name],
            "sha256": [file_sha256(model_file), file_sha256(scaler_file)],
            "format": f"Keras 2.0.6 .h5 + sklearn StandardScaler pickle ({SOURCE_COMMIT}, "
            f"models/{network.structure_type})",
            "scaler_samples": scaler["n_samples_seen"],
        },
        "model": "ye2018_net",
        "task": network.name,
        "targets": {TARGET: TARGET},
        "data": network.data,
    }
    checkpoint = {
        "hyper_parameters": {"model": config, "provenance": provenance},
        "state_dict": {f"model.{k}": v for k, v in model.state_dict().items()},
        "global_step": 0,
    }
    return check_checkpoint(stamp(checkpoint))


def card(network: PublishedNetwork, checkpoint: dict[str, Any], file: Path) -> dict[str, Any]:
    provenance = checkpoint["hyper_parameters"]["provenance"]
    parameters = parameter_count(checkpoint)
    return {
        "name": network.name,
        "task": f"{TARGET}: formation energy relative to the binary oxides ({UNITS}), Ye et al. "
        f"2018 {network.structure_type}s with unmixed sites; input: crystals whose sites carry "
        "prototype_site and oxidation_state (the ye2018 tasks)",
        "data": network.data,
        "split": {"sizes": None, "seed": None},
        "metric": f"published {network.published}; the file records no validation value",
        "published": network.published,
        "model": "ye2018_net",
        "test_metrics": {},
        "units": UNITS,
        "parameters": parameters,
        "size_mb": round(file.stat().st_size / 1e6, 3),
        "budget": "Ye et al.'s training (garnetdnn; Adam, MSE); epochs not recorded",
        "converted_from": provenance["converted_from"],
        "elements": [],
        "elements_note": "species with a tabulated ionic radius at the site's coordination",
        "licence": LICENCE,
        "licence_of_data": "Ye et al.'s DFT data as published with garnetdnn (BSD-3-Clause)",
        "citation": CITATION,
        "file": file.name,
        "sha256": file_sha256(file),
    }


def write_pretrained(network: PublishedNetwork, source: Path, out: Path | None = None) -> Path:
    """Convert one network and write ``<out>/<name>/model.ckpt`` and ``card.json``."""
    checkpoint = convert(source, network)
    return write_packaged(network.name, checkpoint, lambda c, file: card(network, c, file), out)


def main(argv: Sequence[str] | None = None) -> None:
    converter_main(
        __doc__.split("\n\n")[0],
        NETWORKS,
        write_pretrained,
        "garnetdnn's models/ folder (garnet/, perovskite/)",
        argv,
        source_required=True,
    )


if __name__ == "__main__":
    main()
