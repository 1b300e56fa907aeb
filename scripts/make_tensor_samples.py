"""Write the tensor samples of matgnn/resources from ../shared/data/tensors.

Run from the repository root: python scripts/make_tensor_samples.py. Copies the first
``--rows`` entries, unchanged, of

* ``dielectric_constant.json.gz`` (matminer dataset, Petousis et al. 2017) ->
  ``dielectric_sample.json.gz``: columns material_id, structure (as pymatgen's dict),
  e_electronic and e_total (the dataset's own JSON strings), nsites;
* ``elastic_tensor_2015.json.gz`` (matminer dataset, de Jong et al. 2015) ->
  ``elastic_sample.json.gz``: columns material_id, formula, structure (as pymatgen's dict: the
  frame of the tensor; the CIF's lattice is re-oriented for some rows), elastic_tensor (6x6
  Voigt, GPa) and the stored moduli K_VRH, G_VRH, K_Voigt, G_Voigt, K_Reuss, G_Reuss;
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


ELASTIC_COLUMNS = ("K_VRH", "G_VRH", "K_Voigt", "G_Voigt", "K_Reuss", "G_Reuss")


def elastic(rows: int) -> None:
    from matminer.datasets import load_dataset

    frame = load_dataset("elastic_tensor_2015", data_home=str(SOURCE)).iloc[:rows]
    records = [
        {
            "material_id": row["material_id"],
            "formula": row["formula"],
            "structure": row["structure"].as_dict(),
            "elastic_tensor": [list(map(float, r)) for r in row["elastic_tensor"]],
            **{c: float(row[c]) for c in ELASTIC_COLUMNS},
        }
        for _, row in frame.iterrows()
    ]
    path = OUT / "elastic_sample.json.gz"
    with gzip.GzipFile(path, "wb", mtime=0) as handle:
        handle.write(json.dumps(records).encode())
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
    parser.add_argument("--only", choices=("dielectric", "elastic", "born_charges"))
    args = parser.parse_args()
    for name, write in (
        ("dielectric", dielectric),
        ("elastic", elastic),
        ("born_charges", born_charges),
    ):
        if args.only in (None, name):
            write(args.rows)


if __name__ == "__main__":
    main()
