"""Upstream ALIGNN's own trainer on one matgnn run's split (issue 25, part 4, ALIGNN arm).

    PYTHONPATH=benchmarks/.reference-site python benchmarks/fidelity/equal_budget_alignn.py \\
        <data folder> <output folder> --seed S --epochs E --batch-size B

``<data folder>`` is what ``equal_budget_prepare.py --layout alignn`` writes: one CIF per
crystal and ``id_prop.csv`` (no header) listing the training, validation and test crystals in
that order, with targets standardised on the training split, plus ``split_sizes.json``.

Training is upstream's own pipeline, called as its command line calls it:
``alignn.train_alignn.train_for_folder`` (reads the CIFs, builds jarvis k-nearest DGL graphs
into LMDB caches, ``train_dgl``: AdamW, OneCycle stepped per batch, L1 loss, a
``best_model.pt`` at each validation improvement). ``keep_data_order`` with ``n_train``,
``n_val`` and ``n_test`` makes upstream take the file's first rows for training and its last
rows for validation and test, i.e. matgnn's split.

Where upstream's recipe is not matgnn's: its training and validation loaders drop the last
partial batch (``data.py``: ``drop_last=True``), so it trains on whole batches only and picks
``best_model.pt`` by the loss over the validation crystals of full batches (64 of 100 on the
phonon fold); its AdamW exempts biases and normalisation parameters from weight decay
(``group_decay``), matgnn's decays every parameter.

Upstream 2026.8.11 trains only its ``alignn_*`` models (``train.py``: the epoch loop runs
``if "alignn_" in config.model.name``), so the network is ``alignn_atomwise`` (the published
widths, LayerNorm where the published ``ALIGNN`` has BatchNorm, no forces) and not the
BatchNorm ``ALIGNN`` that matgnn's ALIGNN equals weight for weight.

Upstream writes its test predictions from the last epoch's weights; to test the
best-validation checkpoint as matgnn does, this script then loads ``best_model.pt`` into the
same network and predicts upstream's own test graphs (its ``test_data`` LMDB cache), writing
``test_best.csv`` (``id,true,predicted``, standardised units) next to upstream's files.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import types
from pathlib import Path

import torch

# dgl 2.1.0 ships graphbolt only for older torch builds; ALIGNN uses DGL's core alone.
sys.modules.setdefault("dgl.graphbolt", types.ModuleType("dgl.graphbolt"))


def upstream_config(out: Path, sizes: dict, seed: int, epochs: int, batch_size: int) -> dict:
    """The published recipe (upstream's example config: cutoff 8 Å, 12 neighbours, AdamW
    1e-3, weight decay 1e-5, OneCycle) at the given budget, with the published widths."""
    return {
        "dataset": "user_data",
        "target": "target",
        "atom_features": "cgcnn",
        "neighbor_strategy": "k-nearest",
        "id_tag": "jid",
        "random_seed": seed,
        "n_train": sizes["train"],
        "n_val": sizes["val"],
        "n_test": sizes["test"],
        "train_ratio": None,
        "keep_data_order": True,
        "epochs": epochs,
        "batch_size": batch_size,
        "learning_rate": 1.0e-3,
        "weight_decay": 1.0e-5,
        "optimizer": "adamw",
        "scheduler": "onecycle",
        "criterion": "l1",
        "num_workers": 0,
        "cutoff": 8.0,
        "max_neighbors": 12,
        "use_canonize": True,
        "compute_line_graph": True,
        "write_predictions": True,
        "write_checkpoint": True,
        "progress": False,
        "use_lmdb": True,
        "output_dir": str(out),
        "filename": str(out / "cache_"),
        "model": {
            "name": "alignn_atomwise",
            "alignn_layers": 4,
            "gcn_layers": 4,
            "atom_input_features": 92,
            "edge_input_features": 80,
            "triplet_input_features": 40,
            "embedding_features": 64,
            "hidden_features": 256,
            "output_features": 1,
            "calculate_gradient": False,
            "atomwise_output_features": 0,
            "graphwise_weight": 1.0,
            "gradwise_weight": 0.0,
            "stresswise_weight": 0.0,
            "atomwise_weight": 0.0,
        },
    }


def test_best(out: Path, config: dict, ids: list[str]) -> None:
    """``best_model.pt`` on upstream's own test graphs -> ``test_best.csv``."""
    from alignn.config import TrainingConfig
    from alignn.lmdb_dataset import TorchLMDBDataset
    from alignn.models.alignn_atomwise import ALIGNNAtomWise

    model_config = TrainingConfig(**config).model
    net = ALIGNNAtomWise(model_config)
    net.load_state_dict(torch.load(out / "best_model.pt", map_location="cpu"))
    net.eval()
    data = TorchLMDBDataset(lmdb_path=config["filename"] + "test_data", line_graph=True, ids=ids)
    if len(data) != len(ids):
        raise SystemExit(f"{out}: the test cache holds {len(data)} graphs, expected {len(ids)}")
    rows = []
    with torch.no_grad():
        for index, crystal in enumerate(ids):
            g, lg, lattice, label = data[index]
            predicted = net([g, lg, lattice])["out"]
            rows.append((crystal, float(label), float(predicted.reshape(-1)[0])))
    with (out / "test_best.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "true", "predicted"])
        writer.writerows(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--epochs", type=int, required=True)
    parser.add_argument("--batch-size", type=int, required=True)
    args = parser.parse_args()
    data, out = args.data.resolve(), args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    sizes = json.loads((data / "split_sizes.json").read_text())
    if sizes["val"] < args.batch_size:
        # upstream's validation loader drops the last partial batch: it would validate nothing
        raise SystemExit(f"{data}: {sizes['val']} validation crystals, fewer than one batch "
                         f"({args.batch_size}); upstream would never validate")  # fmt: skip
    config = upstream_config(out, sizes, args.seed, args.epochs, args.batch_size)
    (out / "upstream_config.json").write_text(json.dumps(config, indent=1) + "\n")
    from matgnn.huge_pages import describe

    print(f"huge pages: {describe()}", flush=True)  # what its epoch times depend on

    from alignn.train_alignn import train_for_folder

    os.chdir(out)
    train_for_folder(
        root_dir=str(data),
        config_name=str(out / "upstream_config.json"),
        file_format="cif",
        output_dir=str(out),
    )
    with (data / "id_prop.csv").open() as handle:
        ids = [row[0] for row in csv.reader(handle)]
    test_best(out, config, ids[len(ids) - sizes["test"] :])


if __name__ == "__main__":
    main()
