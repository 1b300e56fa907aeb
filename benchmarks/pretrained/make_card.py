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
* the data licence, and the file's SHA-256;
* with ``--half`` (a model too large to ship in float32): the weights stored as float16 and the
  check of that on the run's test split (largest prediction difference, test MAE).
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import numpy as np
import yaml
from hydra.utils import instantiate
from omegaconf import OmegaConf

from matgnn.checkpoints.files import load_model, parameter_count, read_checkpoint, slim_checkpoint
from matgnn.checkpoints.pretrained import CARD, PACKAGE_DIR
from matgnn.graphs.cache import file_sha256
from matgnn.training.run_logs import training_summary


def split_rows(run: Path, subset: str) -> tuple[list[str], list]:
    """Ids and structures of one subset of a run's ``split.json``, read through the run's data
    source (``.hydra/config.yaml``)."""
    config = OmegaConf.load(run / ".hydra" / "config.yaml")
    records = instantiate(config.task.data.source)()
    wanted = set(json.loads((run / "split.json").read_text())[subset])
    rows = [k for k, sid in enumerate(records.ids) if sid in wanted]
    return [records.ids[k] for k in rows], [records.structures[k] for k in rows]


def training_elements(run: Path) -> list[str]:
    """The elements of a run's training split, from its ``split.json`` and its data source."""
    from pymatgen.core import Element

    from matgnn.graphs.structures import to_structure

    ids, structures = split_rows(run, "train")
    numbers = {
        element.Z
        for sid, structure in zip(ids, structures, strict=True)
        for element in to_structure(structure, sid)[0].composition.elements
    }
    return [Element.from_Z(z).symbol for z in sorted(numbers)]


def stored_weights_check(run: Path, original: Path, stored: Path) -> dict[str, dict[str, float]]:
    """Per output: how far the stored (float16) model's predictions on the run's test split are
    from those of the float32 checkpoint (largest absolute difference, and that relative to the
    largest absolute prediction)."""
    ids, structures = split_rows(run, "test")
    reference = load_model(original).predict(structures, ids)
    check = load_model(stored).predict(structures, ids)
    result = {}
    for output in reference.outputs:
        a, b = np.asarray(reference[output.name]), np.asarray(check[output.name])
        difference = float(np.abs(a - b).max())
        result[output.name] = {
            "max_abs_difference": difference,
            "relative_to_max_prediction": difference / float(np.abs(a).max()),
            "test_crystals": len(check.names),
        }
    return result


def headline(output: dict, metrics: dict[str, float]) -> str:
    """The card's one-line metric: MAE for a scalar, MSE and Wasserstein distance (in the grid's
    units, read from its label) for a spectrum, as Chen et al. report the phonon DOS."""
    name = output["name"]
    if "num_bins" not in output:
        mae = metrics.get(f"test_{name}_mae", float("nan"))
        return f"test MAE {mae:.4f} {output.get('units', '')}".strip()
    step = (output["grid_stop"] - output["grid_start"]) / (output["num_bins"] - 1)
    unit = re.search(r"\(([^()]*)\)\s*$", output.get("grid_label", ""))
    unit = re.sub(r"[${}]", "", unit[1]) if unit else "grid units"
    mse = metrics[f"test_{name}_rmse"] ** 2
    wasserstein = metrics[f"test_{name}_emd"] * step
    return (
        f"test MSE {mse:.4f} ({output['normalize']}-normalised), "
        f"Wasserstein {wasserstein:.1f} {unit}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("name")
    parser.add_argument("--data", required=True)
    parser.add_argument("--licence", required=True)
    parser.add_argument("--budget", default="")
    parser.add_argument("--out", type=Path, default=PACKAGE_DIR)
    parser.add_argument(
        "--units",
        default="",
        help="units of the first output, for a run whose task did not state them",
    )
    parser.add_argument(
        "--half",
        action="store_true",
        help="store large weight tensors as float16 (checked on the run's test split)",
    )
    args = parser.parse_args()
    checkpoint = read_checkpoint(args.run / "checkpoints" / "best.ckpt")
    hyper = checkpoint["hyper_parameters"]
    first = hyper["model"]["outputs"][0]
    if args.units and first.get("units") not in ("", None, args.units):
        parser.error(f"--units {args.units}, but the output says {first['units']}")
    if args.units:
        first["units"] = args.units
    provenance = hyper.setdefault("provenance", {})
    if "elements" not in provenance:
        provenance["elements"] = training_elements(args.run)
    folder = args.out / args.name
    folder.mkdir(parents=True, exist_ok=True)
    target = slim_checkpoint(checkpoint, folder / "model.ckpt", half=args.half)
    metrics = training_summary(args.run)
    parameters = parameter_count(checkpoint)  # trainable only: buffers are not parameters
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
        "metric": headline(hyper["model"]["outputs"][0], metrics),
        "test_metrics": {k: v for k, v in metrics.items() if k.startswith("test_")},
        "parameters": int(parameters),
        "size_mb": round(target.stat().st_size / 2**20, 2),
        "budget": args.budget,
        "train_seconds": metrics["train_seconds"],
        "best_epoch": int(checkpoint.get("epoch", -1)),
        "elements": provenance["elements"],
        "stored_dtype": "float16 (tensors of 1024+ values), float32 otherwise"
        if args.half
        else "float32",
        "overrides": overrides,
        "matgnn_version": provenance.get("matgnn_version"),
        "licence_of_data": args.licence,
        "file": target.name,
        "sha256": file_sha256(target),
    }
    if args.half:
        card["float16_check"] = stored_weights_check(
            args.run, args.run / "checkpoints" / "best.ckpt", target
        )
    (folder / CARD).write_text(json.dumps(card, indent=2) + "\n")
    print(json.dumps(card, indent=2))


if __name__ == "__main__":
    main()
