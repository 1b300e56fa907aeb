"""Equivariance of the trained tensor models on their own test crystals (issue 14).

    python benchmarks/tensors/symmetry_check.py <runs folder> [--crystals 40]

For each e3nn tensor run of ``run.sh`` (``<runs>/<run>/checkpoints/best.ckpt``), on its first
``--crystals`` test crystals (``split.json``), in float64:

* rotation: the largest change between the prediction for the rotated (and shifted) crystal and
  the rotated prediction, over 3 random rotations (:func:`matgnn.testing.rotation_residuals`);
* crystal symmetry: the largest change of the prediction under the crystal's own symmetry
  operations (spglib, 1e-3 Å), per-atom tensors mapped onto their image atoms
  (:func:`matgnn.testing.crystal_symmetry_residuals`);

both relative to the prediction's largest component, written to
``results/symmetry_check.csv``.
"""

from __future__ import annotations

import argparse
import functools
import json
from pathlib import Path

import pandas as pd
from pymatgen.io.ase import AseAtomsAdaptor
from tqdm.auto import tqdm

from matgnn import load_model
from matgnn.config_dir import default_data_dir
from matgnn.data.sources import tensors
from matgnn.testing import crystal_symmetry_residuals, rotation_residuals

HERE = Path(__file__).parent
RUNS = {
    "e3nn_dielectric_electronic": "dielectric",
    "e3nn_dielectric_total": "dielectric",
    "e3nn_elastic_tensor": "elastic_tensor",
    "e3nn_born_charges": "born_charges",
}


@functools.cache
def _structures(loader: str) -> dict:
    """``{id: structure}`` of a tensor data set, read once for the runs that share it."""
    records = getattr(tensors, loader)(default_data_dir())
    return dict(zip(records.ids, records.structures, strict=True))


def check(runs: Path, crystals: int) -> pd.DataFrame:
    rows = []
    for name, source in RUNS.items():
        run = runs / name
        if not (run / "checkpoints" / "best.ckpt").is_file():
            continue
        model = load_model(run / "checkpoints" / "best.ckpt")
        by_id = _structures(source)
        test = json.loads((run / "split.json").read_text())["test"][:crystals]
        for sid in tqdm(test, desc=name):
            structure = by_id[sid]
            if not hasattr(structure, "lattice"):
                structure = AseAtomsAdaptor.get_structure(structure)
            rotation = rotation_residuals(model, structure)
            symmetry, operations = crystal_symmetry_residuals(model, structure)
            for head in rotation:
                rows.append(
                    {
                        "run": name,
                        "head": head,
                        "id": sid,
                        "operations": operations,
                        "rotation": rotation[head],
                        "crystal_symmetry": symmetry[head],
                    }
                )
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path)
    parser.add_argument("--crystals", type=int, default=40)
    args = parser.parse_args()
    frame = check(args.runs, args.crystals)
    frame.to_csv(HERE / "results" / "symmetry_check.csv", index=False, float_format="%.3g")
    summary = frame.groupby(["run", "head"]).agg(
        crystals=("id", "count"),
        operations=("operations", "sum"),
        rotation_max=("rotation", "max"),
        crystal_symmetry_max=("crystal_symmetry", "max"),
    )
    print(summary.to_string())


if __name__ == "__main__":
    main()
