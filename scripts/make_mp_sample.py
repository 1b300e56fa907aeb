"""Write matgnn/resources/mp36k_sample.csv.gz: a seeded random subset of ../shared/data/mp36k.

Run from the repository root: python scripts/make_mp_sample.py [--n 1500]. The rows and columns
are copied unchanged (no target is computed or edited); provenance goes to the README beside it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

SOURCE = Path("../shared/data/mp36k/mp36k_with_ehull.csv.gz")
OUT = Path("matgnn/resources/mp36k_sample.csv.gz")
COLUMNS = [
    "mp_id",
    "formation_energy_per_atom",
    "band_gap",
    "e_above_hull_mp2018_automatminer",
    "cif",
]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=1500)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    frame = pd.read_csv(SOURCE)
    sample = frame.sample(n=args.n, random_state=args.seed).sort_values("mp_id")[COLUMNS]
    sample.to_csv(OUT, index=False, compression={"method": "gzip", "mtime": 0})
    print(f"wrote {len(sample)} rows to {OUT} ({OUT.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
