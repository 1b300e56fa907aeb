"""Model labels of the V-O data set and how good the labeller is on the known V-O structures.

    python benchmarks/design/labels.py --run [--data FILE] [--model NAME]   # ~2 min, 2 cores
    python benchmarks/design/labels.py [--update docs/results/inverse-design.md]

``--run`` predicts the formation energy of every structure of the V-O data set (``--data``: a
saved ``VODataset``, default the shipped sample) with a named pretrained matgnn model and writes
``benchmarks/design/results/vo_labels.csv.gz`` (``matgnn.design.labels``: the label column names
the model; the first line holds the provenance). These labels are a model's predictions for
unrelaxed, substituted structures, never DFT. The table (the labeller against MP's DFT formation
energies of the known V-O structures) is written from that file alone; a missing file fails.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

REPOSITORY = Path(__file__).resolve().parents[2]
if str(REPOSITORY) not in sys.path:
    sys.path.insert(0, str(REPOSITORY))

from benchmarks.catalog import publish  # noqa: E402

RESULTS = REPOSITORY / "benchmarks" / "design" / "results" / "vo_labels.csv.gz"
BLOCK = "imatgen-labels"


def run(data_file: str, model: str, results: Path = RESULTS) -> None:
    from matgnn.design.labels import label_with_model, save_labels
    from matgnn.design.vo_dataset import PROVENANCE, VODataset, vo_sample

    data = vo_sample() if data_file == "sample" else VODataset.from_json(data_file)
    start = time.perf_counter()
    frame = label_with_model(data, model)
    seconds = time.perf_counter() - start
    provenance = (
        f"{PROVENANCE} Labels: formation energy per atom (eV/atom) predicted by the matgnn "
        f"pretrained model {model} for the structures as they are (unrelaxed); {len(data)} "
        f"structures, {seconds:.0f} s on 2 CPU cores (benchmarks/design/labels.py)."
    )
    save_labels(frame, results, provenance)
    print(f"wrote {results}")


def table(results: Path = RESULTS) -> str:
    from matgnn.design.labels import labeller_check, read_labels

    if not results.is_file():
        raise FileNotFoundError(f"{results} is missing: run python {Path(__file__).name} --run")
    frame, header = read_labels(results)
    column = next(c for c in frame.columns if "__predicted_by__" in c)
    check = labeller_check(frame, column)
    labels = frame.loc[~frame["known_vo"], column].astype(float)
    rejected = int((frame["rejected"] != "").sum())
    labelled = int(np.isfinite(frame[column].astype(float)).sum())
    stable = int((labels <= 0.0).sum())
    return "\n".join(
        [
            "| labeller | structures | labelled | refused | known V-O (MP DFT) | "
            "MAE on them (eV/atom) | largest error | substituted: label range (eV/atom) "
            "| substituted with label <= 0 |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
            f"| `{header['labeller']}` | {len(frame):,} | {labelled:,} | "
            f"{rejected} | {check['known']} | {check['mae']:.3f} | {check['max_error']:.3f} | "
            f"{np.nanmin(labels):.2f} to {np.nanmax(labels):.2f} | {stable:,} |",
        ]
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", action="store_true")
    parser.add_argument("--data", default="sample", help="'sample' or a VODataset .json.gz")
    parser.add_argument("--model", default="cgcnn_xie2018_formation_energy")
    parser.add_argument("--update", type=Path, nargs="*", default=[])
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.run:
        run(args.data, args.model, args.results)
    publish(table(args.results), args.update, BLOCK)


if __name__ == "__main__":
    main()
