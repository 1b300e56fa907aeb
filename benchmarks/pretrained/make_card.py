"""Turn a finished training run into a pretrained model with its card (issue 12).

    python benchmarks/pretrained/make_card.py <run dir> <name> --data "<what data>" \
        --licence "<licence of the data>" [--budget "<what the run cost>"] \
        [--out matgnn/resources/pretrained]

Writes ``<out>/<name>/model.ckpt`` (the run's best checkpoint without optimizer state) and
``<out>/<name>/card.json``:
* name, task and data, with the split sizes and the split's SHA-256;
* test metrics, read from the run's metrics CSV; the headline metric;
* parameter count and file size;
* the budget, the summed epoch times and the run's overrides;
* the elements of the training split (what ``finetune.unseen_elements`` checks against):
  the checkpoint's ``provenance["elements"]``, or, for a run made before runs recorded them,
  read from the run's ``split.json`` and its data source (then written into the model file's
  provenance too);
* the data licence, and the file's SHA-256.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import yaml
from hydra.utils import instantiate
from omegaconf import OmegaConf

from matgnn.checkpoint import read_checkpoint, slim_checkpoint
from matgnn.graphs.cache import file_sha256
from matgnn.pretrained import CARD, PACKAGE_DIR


def test_metrics(run: Path) -> dict[str, float]:
    metrics: dict[str, float] = {}
    epoch_seconds = 0.0
    for path in sorted(run.glob("logs/*/metrics.csv")):
        with open(path) as handle:
            for row in csv.DictReader(handle):
                for key, value in row.items():
                    if key.startswith("test_") and value:
                        metrics[key] = float(value)
                if row.get("train_epoch_time_s"):
                    epoch_seconds += float(row["train_epoch_time_s"])
    metrics["train_seconds"] = round(epoch_seconds, 1)
    return metrics


def training_elements(run: Path) -> list[str]:
    """The elements of a run's training split, from its ``split.json`` and its data source."""
    from pymatgen.core import Element

    from matgnn.graphs.structures import to_structure

    config = OmegaConf.load(run / ".hydra" / "config.yaml")
    records = instantiate(config.task.data.source)()
    train = set(json.loads((run / "split.json").read_text())["train"])
    numbers = {
        element.Z
        for sid, structure in zip(records.ids, records.structures, strict=True)
        if sid in train
        for element in to_structure(structure, sid)[0].composition.elements
    }
    return [Element.from_Z(z).symbol for z in sorted(numbers)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("name")
    parser.add_argument("--data", required=True)
    parser.add_argument("--licence", required=True)
    parser.add_argument("--budget", default="")
    parser.add_argument("--out", type=Path, default=PACKAGE_DIR)
    args = parser.parse_args()
    checkpoint = read_checkpoint(args.run / "checkpoints" / "best.ckpt")
    hyper = checkpoint["hyper_parameters"]
    provenance = hyper.setdefault("provenance", {})
    if "elements" not in provenance:
        provenance["elements"] = training_elements(args.run)
    folder = args.out / args.name
    folder.mkdir(parents=True, exist_ok=True)
    target = slim_checkpoint(checkpoint, folder / "model.ckpt")
    metrics = test_metrics(args.run)
    output = hyper["model"]["outputs"][0]["name"]
    units = hyper["model"]["outputs"][0].get("units", "")
    parameters = sum(
        v.numel() for k, v in checkpoint["state_dict"].items() if "normalizer" not in k
    )
    overrides = yaml.safe_load((args.run / ".hydra" / "overrides.yaml").read_text())
    card = {
        "name": args.name,
        "task": provenance.get("task"),
        "model": provenance.get("model"),
        "data": args.data,
        "split": {
            "sizes": provenance.get("split_sizes"),
            "sha256": provenance.get("split_sha256"),
            "seed": provenance.get("seed"),
        },
        "metric": f"test MAE {metrics.get(f'test_{output}_mae', float('nan')):.4f} {units}".strip(),
        "test_metrics": {k: v for k, v in metrics.items() if k.startswith("test_")},
        "parameters": int(parameters),
        "size_mb": round(target.stat().st_size / 2**20, 2),
        "budget": args.budget,
        "train_seconds": metrics["train_seconds"],
        "best_epoch": int(checkpoint.get("epoch", -1)),
        "elements": provenance["elements"],
        "overrides": overrides,
        "matgnn_version": provenance.get("matgnn_version"),
        "licence_of_data": args.licence,
        "file": target.name,
        "sha256": file_sha256(target),
    }
    (folder / CARD).write_text(json.dumps(card, indent=2) + "\n")
    print(json.dumps(card, indent=2))


if __name__ == "__main__":
    main()
