"""Which cell autoencoder run decodes more validation lattices within 0.1 Å and 2°: model
selection on the validation structures (the test set stays for Table 1).

    python benchmarks/design/cell_choice.py --data <vo_dataset.json.gz> RUN [RUN ...]

Prints each run's best checkpoint epoch, the lattice RMSE and the count within tolerance (to
stderr), then the chosen run folder (to stdout, for ``CELL_RUN=$(...) run.sh generator``).
``benchmarks/design/results/cell_choice.txt`` holds the issue-27 choice, made with the same
computation in a scratch script before this one was written (the file says so).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np


def main(argv: list[str] | None = None) -> None:
    import torch

    from matgnn.design import images
    from matgnn.design.run import load_vo_dataset
    from matgnn.design.training import image_spec_of, load_autoencoder

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="the V-O data set (.json.gz)")
    parser.add_argument("runs", type=Path, nargs="+")
    args = parser.parse_args(argv)
    data = load_vo_dataset(args.data, "", "")
    index = {sid: k for k, sid in enumerate(data.ids)}
    val = [json.loads((run / "split.json").read_text())["val"] for run in args.runs]
    if not val[0] or any(v != val[0] for v in val):
        raise ValueError(f"{[str(r) for r in args.runs]}: not one non-empty validation split")
    best = None
    for run in args.runs:
        path = run / "checkpoints" / "best.ckpt"
        network = load_autoencoder(path, "cell")
        spec = image_spec_of(network)
        lattices = [images.standard_lattice(data.structures[index[s]].lattice) for s in val[0]]
        batch = torch.stack([torch.from_numpy(images.cell_image(x, spec)) for x in lattices])
        with torch.no_grad():
            decoded = torch.cat([network(b) for b in batch[:, None].split(64)])[:, 0].numpy()
        errors, within, failed = [], 0, 0
        for lattice, image in zip(lattices, decoded, strict=True):
            try:
                back = images.lattice_from_cell_image(image, spec)
            except images.RepresentationError:
                failed += 1
                continue
            errors.append(images.lattice_errors(lattice, back))
            within += images.lattice_within(errors[-1])
        errors = np.array(errors).reshape(-1, 6)
        rmse = np.sqrt((errors**2).mean(axis=0)) if len(errors) else np.full(6, np.nan)
        epoch = torch.load(path, map_location="cpu", weights_only=True)["epoch"]
        print(
            f"{run}: best checkpoint epoch {epoch}, no lattice {failed}, RMSE a/b/c "
            f"{np.round(rmse[:3], 3).tolist()} Å, angles {np.round(rmse[3:], 2).tolist()}°, "
            f"within 0.1 Å and 2°: {within} of {len(lattices)}",
            file=sys.stderr,
        )
        if best is None or within > best[0]:
            best = (within, run)
    print(best[1])


if __name__ == "__main__":
    main()
