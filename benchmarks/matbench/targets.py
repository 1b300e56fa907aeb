"""The official Matbench v0.1 targets of the tasks our stored submissions predict, shipped so
that a test recomputes every stored fold's scores from its per-crystal predictions:

    python benchmarks/matbench/targets.py [--data-dir ../shared/data]

writes ``benchmarks/matbench/targets/<task>.csv.gz`` (``mbid,target``, the values as the
official table holds them) from ``<data dir>/matbench_targets/<task>.json.bz2``
(materialsproject/matbench, MIT; see ``targets/PROVENANCE.md``).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from matbench.metadata import mbv01_metadata

from matgnn.data.sources.matbench import TARGETS_DIR, read_target_table

HERE = Path(__file__).resolve().parent / "targets"
#: the tasks of the stored submission folders (benchmarks/matbench, benchmarks/foundation)
TASKS = ("matbench_phonons", "matbench_perovskites", "matbench_log_kvrh", "matbench_log_gvrh")


def write(data_dir: Path) -> None:
    HERE.mkdir(exist_ok=True)
    for task in TASKS:
        frame = read_target_table(data_dir / TARGETS_DIR / f"{task}.json.bz2")
        column = frame[mbv01_metadata[task].target].rename("target")
        column.index.name = "mbid"
        # fixed gzip header time: the same table gives the same bytes
        column.to_csv(
            HERE / f"{task}.csv.gz",
            float_format="%.17g",
            compression={"method": "gzip", "mtime": 0},
        )
        print(f"{task}: {len(column)} targets")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data-dir", type=Path, default=Path(os.environ.get("MATGNN_DATA_DIR", "../shared/data"))
    )
    write(parser.parse_args().data_dir)


if __name__ == "__main__":
    main()
