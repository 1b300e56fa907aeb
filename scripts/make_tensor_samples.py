"""Write the tensor samples of matgnn/resources from ../shared/data/tensors.

Run from the repository root: python scripts/make_tensor_samples.py. Copies the first
``--rows`` entries, unchanged, of

* ``dielectric_constant.json.gz`` (matminer dataset, Petousis et al. 2017) ->
  ``dielectric_sample.json.gz``: columns material_id, structure (as pymatgen's dict),
  e_electronic and e_total (the dataset's own JSON strings), nsites;
* ``phonon_becs_epsilon.xyz.gz`` (shiangfang/e3nn-models) -> ``becs_sample.xyz.gz``: the first
  entries' lines, byte for byte.

Nothing is computed or changed.
"""

from __future__ import annotations

import argparse
import gzip
import json
from pathlib import Path

SOURCE = Path("../shared/data/tensors")
OUT = Path("matgnn/resources")


def dielectric(rows: int) -> None:
    from matminer.datasets import load_dataset

    frame = load_dataset("dielectric_constant", data_home=str(SOURCE)).iloc[:rows]
    records = [
        {
            "material_id": row.material_id,
            "structure": row.structure.as_dict(),
            "e_electronic": row.e_electronic,
            "e_total": row.e_total,
            "nsites": int(row.nsites),
        }
        for row in frame.itertuples()
    ]
    path = OUT / "dielectric_sample.json.gz"
    with gzip.open(path, "wt") as handle:
        json.dump(records, handle)
    print(f"wrote {path} ({path.stat().st_size / 1e3:.0f} kB, {len(records)} rows)")


def born_charges(rows: int) -> None:
    with gzip.open(SOURCE / "phonon_becs_epsilon.xyz.gz", "rt") as handle:
        lines = handle.read().splitlines(keepends=True)
    kept, line, entries = [], 0, 0
    while line < len(lines) and entries < rows:
        count = int(lines[line])
        kept += lines[line : line + count + 2]
        line += count + 2
        entries += 1
    path = OUT / "becs_sample.xyz.gz"
    with gzip.open(path, "wt") as handle:
        handle.writelines(kept)
    print(f"wrote {path} ({path.stat().st_size / 1e3:.0f} kB, {entries} crystals)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=150)
    args = parser.parse_args()
    dielectric(args.rows)
    born_charges(args.rows)


if __name__ == "__main__":
    main()
