"""Which basis autoencoder run reconstructs more validation structures: model selection on the
validation structures (the test set stays for Table 1), each run through its basis
autoencoder alone (the cell image exact), at its own best decoding of the peak threshold and
merge saddle (:func:`~matgnn.design.decoding.choose_decoding` over the same validation sweep).

    python benchmarks/design/basis_choice.py --data <vo_dataset.json.gz> RUN [RUN ...]

Prints each run's best checkpoint epoch, its chosen decoding, the structures fully
reconstructed (every atom within 0.1 Å, the cell exact), matched by ``StructureMatcher`` and
the median position RMSE (to stderr), then the chosen run folder (to stdout;
:func:`chosen_run`: the most fully reconstructed, then the most matched, then the first
named). The runs must share one validation split; a run's ``decoding.json`` is neither read
nor written (``run.sh evaluate`` chooses the published one through both autoencoders).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def compare_runs(data, runs: list[Path]) -> list[dict[str, object]]:
    """One record per run: ``run``, ``epoch`` (of its best checkpoint), ``decoding`` (chosen),
    ``structures``, ``fully_reconstructed``, ``matches``, ``median_position_rmse`` (over the
    structures with every atom back)."""
    import torch

    from matgnn.design.decoding import SADDLES, THRESHOLDS, choose_decoding, decoded_at
    from matgnn.design.evaluate import sweep_decodings
    from matgnn.design.training import image_spec_of, load_autoencoder

    index = {sid: k for k, sid in enumerate(data.ids)}
    val = [json.loads((run / "split.json").read_text())["val"] for run in runs]
    if not val[0] or any(v != val[0] for v in val):
        raise ValueError(f"{[str(r) for r in runs]}: not one non-empty validation split")
    rows = [index[sid] for sid in val[0]]
    settings = [(threshold, saddle) for threshold in THRESHOLDS for saddle in SADDLES]
    records = []
    for run in runs:
        path = run / "checkpoints" / "best.ckpt"
        network = load_autoencoder(path, "basis")
        sweep = sweep_decodings(data, rows, None, network, image_spec_of(network), settings)
        decoding = choose_decoding(sweep)
        chosen = decoded_at(sweep, decoding)
        back = chosen.loc[chosen["same_composition"].astype(bool), "position_rmse"]
        records.append(
            {
                "run": str(run),
                "epoch": int(torch.load(path, map_location="cpu", weights_only=True)["epoch"]),
                "decoding": (decoding.peak_threshold, decoding.merge_saddle),
                "structures": len(rows),
                "fully_reconstructed": int(chosen["fully_reconstructed"].sum()),
                "matches": int(chosen["matches"].sum()),
                "median_position_rmse": float(back.median()) if len(back) else float("nan"),
            }
        )
    return records


def chosen_run(records: list[dict[str, object]]) -> str:
    """The run of :func:`compare_runs`' records with the most structures fully reconstructed,
    then the most matched; of equal ones the first named."""
    return str(max(records, key=lambda r: (r["fully_reconstructed"], r["matches"]))["run"])


def main(argv: list[str] | None = None) -> None:
    from matgnn.design.run import load_vo_dataset

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="the V-O data set (.json.gz)")
    parser.add_argument("runs", type=Path, nargs="+")
    args = parser.parse_args(argv)
    records = compare_runs(load_vo_dataset(args.data, "", ""), args.runs)
    for r in records:
        threshold, saddle = r["decoding"]
        print(
            f"{r['run']}: best checkpoint epoch {r['epoch']}, decoding threshold {threshold:g} "
            f"merge saddle {saddle}; the cell exact: fully reconstructed "
            f"{r['fully_reconstructed']} of {r['structures']}, matched {r['matches']}, median "
            f"position RMSE {r['median_position_rmse']:.4f} Å",
            file=sys.stderr,
        )
    print(chosen_run(records))


if __name__ == "__main__":
    main()
