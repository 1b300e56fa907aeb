"""Write matgnn/resources/phdos_sample.csv.gz: a seeded subset of Chen et al.'s phonon DOS table.

Run from the repository root: python scripts/make_phonon_sample.py. Takes ``--train``/``--val``/
``--test`` rows at random (seed 0) from each of the authors' own split files, copies the rows of
``../shared/data/phonon_dos_chen2021/phdos_1522.csv`` unchanged and adds ``row`` (the row in the
full table) and ``split`` (which index file named it). Nothing is computed.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

SOURCE = Path("../shared/data/phonon_dos_chen2021")
OUT = Path("matgnn/resources/phdos_sample.csv.gz")
INDEX_FILES = {"train": "idx_train.txt", "val": "idx_valid.txt", "test": "idx_test.txt"}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--train", type=int, default=300)
    parser.add_argument("--val", type=int, default=50)
    parser.add_argument("--test", type=int, default=50)
    args = parser.parse_args()
    table = pd.read_csv(SOURCE / "phdos_1522.csv")
    rng = np.random.default_rng(0)
    parts = []
    for split, name in INDEX_FILES.items():
        rows = np.loadtxt(SOURCE / name, dtype=int)
        chosen = np.sort(rng.choice(rows, size=getattr(args, split), replace=False))
        part = table.iloc[chosen].copy()
        part.insert(0, "row", chosen)
        part["split"] = split
        parts.append(part)
    pd.concat(parts).sort_values("row").to_csv(OUT, index=False)
    print(f"wrote {OUT} ({OUT.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
