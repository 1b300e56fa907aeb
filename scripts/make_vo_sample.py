"""Write matgnn/resources/vo_sample.json.gz: the shipped subset of the iMatGen V-O data set
(matgnn.design.vo_dataset) that the tests use without ../shared/data.

    python scripts/make_vo_sample.py [data_dir]   (default ../shared/data)

Every known V-O structure (MP binaries of V and O within the size filters) and 186 substituted
ones drawn with numpy's default_rng(0), in data-set order.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from matgnn.design.vo_dataset import SAMPLE, build_vo_dataset

SUBSTITUTED = 186


def main(data_dir: str = "../shared/data") -> None:
    data = build_vo_dataset(data_dir)
    known = [i for i, k in enumerate(data.known) if k]
    others = [i for i, k in enumerate(data.known) if not k]
    drawn = np.random.default_rng(0).choice(others, size=SUBSTITUTED, replace=False)
    sample = data.subset(sorted([*known, *drawn.tolist()]))
    sample.counts = {
        **data.counts,
        "sample_known_vo": len(known),
        "sample_substituted": SUBSTITUTED,
    }
    target = Path(__file__).resolve().parents[1] / "matgnn" / "resources" / SAMPLE
    sample.to_json(target)
    print(f"{target}: {len(sample)} structures; full data set: {data.counts}")


if __name__ == "__main__":
    main(*sys.argv[1:])
