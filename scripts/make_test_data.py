"""Build ``tests/data/mini``: small real subsets of ``../shared/data`` in the same layout, so that
every local-copy loader (``paths.data_dir=...``) runs in CI, where the shared folder is absent.

    .venv/bin/python scripts/make_test_data.py [--data-dir ../shared/data] [--rows 40]

Each file holds the first rows of its source file (in the source's own format, nothing
recomputed or invented), enough for a task with ``limit=30`` after the loader's own filters;
``PROVENANCE.md`` next to them names every source file, the rows kept and the licence. Not in
the subset: the matminer tensor sets (``dielectric_constant``, ``elastic_tensor_2015``),
because matminer checks each file's published SHA-256 before it reads it, so no subset can
stand in for them (their loaders' record-building code runs in CI on the ``*_sample`` tasks);
and the Matbench tables (``tests/matbench/data`` holds their subsets).
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import shutil
import zipfile
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "tests" / "data" / "mini"

#: (path under the data dir, how it was cut, licence) for PROVENANCE.md
MADE: list[tuple[str, str, str]] = []

#: the licence files of the sources, copied next to their subsets (paths under the data dir)
LICENCES = (
    "mp36k/LICENSE_kdmsit_MEGNet.txt",
    "jarvis/leaderboard/LICENSE.rst",
    "cdvae/LICENSE_cdvae.txt",
    "phonon_dos_chen2021/LICENSE_ninarina12_phononDoS_tutorial.txt",
    "phonon_dos_chen2021/LICENSE_Kozlan-TA_phononDos.txt",
    "ye2018/LICENSE",
    "tensors/LICENSE_e3nn-models.txt",
)


def _gzip_csv(frame: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False, compression={"method": "gzip", "mtime": 0})


def mp36k(data: Path, rows: int) -> None:
    name = "mp36k/mp36k_with_ehull.csv.gz"
    _gzip_csv(pd.read_csv(data / name, nrows=rows), OUT / name)
    MADE.append((name, f"first {rows} rows", "Materials Project data CC BY 4.0 (structures and "
                 "energies); kdmsit/MEGNet's CSV, MIT "
                 "(`mp36k/LICENSE_kdmsit_MEGNet.txt`)"))  # fmt: skip


def jarvis(data: Path, rows: int) -> None:
    name = "jarvis/jarvis_dft3d_subset.csv"
    rows += rows // 2  # about 1 in 6 rows lacks a formation energy or an ehull
    frame = pd.read_csv(data / name, nrows=rows)
    (OUT / name).parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(OUT / name, index=False)
    MADE.append((name, f"first {rows} rows", "JARVIS-DFT (NIST), NIST terms of use "
                 "(`jarvis/leaderboard/LICENSE.rst`)"))  # fmt: skip
    kept = set(frame["jid"].astype(str))
    for target in ("formation_energy_peratom", "ehull"):
        split = f"jarvis/leaderboard/SinglePropertyPrediction/dft_3d_{target}.json.zip"
        with zipfile.ZipFile(data / split) as archive:
            inner = archive.namelist()[0]
            raw = json.loads(archive.read(inner))
        cut = {k: {j: v for j, v in part.items() if j in kept} for k, part in raw.items()}
        (OUT / split).parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(OUT / split, "w", zipfile.ZIP_DEFLATED) as archive:
            info = zipfile.ZipInfo(inner, date_time=(1980, 1, 1, 0, 0, 0))
            archive.writestr(info, json.dumps(cut))
        MADE.append((split, "the split entries of the rows above", "JARVIS-Leaderboard (NIST), "
                     "NIST terms of use (`jarvis/leaderboard/LICENSE.rst`)"))  # fmt: skip


def perov5(data: Path, rows: int) -> None:
    name = "cdvae/perov_5_all_structures_jarvis_leaderboard.csv.gz"
    frame = pd.read_csv(data / name)
    labelled = frame[frame["heat_ref"].notna()]
    per_split = max(rows // 3, 12)
    cut = pd.concat(
        [labelled[labelled["split"] == s].head(per_split) for s in ("train", "val", "test")]
    )
    _gzip_csv(frame.loc[sorted(cut.index)], OUT / name)
    MADE.append((name, f"the first {per_split} rows with heat_ref of each split",
                 "txie-93/cdvae, MIT (`cdvae/LICENSE_cdvae.txt`); Castelli et al. CMR "
                 "perovskites"))  # fmt: skip


def chen2021(data: Path, rows: int) -> None:
    folder = "phonon_dos_chen2021"
    (OUT / folder).mkdir(parents=True, exist_ok=True)
    table = pd.read_csv(data / folder / "phdos_1522.csv", nrows=rows)
    table.to_csv(OUT / folder / "phdos_1522.csv", index=False)
    for split in ("idx_train.txt", "idx_valid.txt", "idx_test.txt"):
        shutil.copyfile(data / folder / split, OUT / folder / split)
    MADE.append((f"{folder}/phdos_1522.csv", f"first {rows} rows (row numbers kept: the split "
                 "files index the full table)", "DFPT phonons of Petretto et al., Sci. Data 5, "
                 "180065 (2018), CC BY 4.0; table of ninarina12/phononDoS_tutorial, MIT "
                 "(`phonon_dos_chen2021/LICENSE_*.txt`)"))  # fmt: skip
    MADE.append((f"{folder}/idx_*.txt", "whole (rows past the subset are skipped)", "same"))


def ye2018(data: Path, rows: int) -> None:
    name = "ye2018/ye2018_perovskite_ef.csv"  # the whole table (62 kB): the package ships it too
    (OUT / name).parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(data / name, OUT / name)
    MADE.append(
        (
            name,
            "whole (as in matgnn/resources/ye2018)",
            "materialsvirtuallab/garnetdnn, BSD-3 (`ye2018/LICENSE`)",
        )
    )


def born_charges(data: Path, rows: int) -> None:
    name = "tensors/phonon_becs_epsilon.xyz.gz"
    with gzip.open(data / name, "rt") as handle:
        lines = handle.read().splitlines()
    out, start, frames = io.StringIO(), 0, 0
    while start < len(lines) and frames < rows:
        count = int(lines[start])
        out.write("\n".join(lines[start : start + count + 2]) + "\n")
        start += count + 2
        frames += 1
    (OUT / name).parent.mkdir(parents=True, exist_ok=True)
    with open(OUT / name, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as handle:
        handle.write(out.getvalue().encode())
    MADE.append(
        (
            name,
            f"first {frames} crystals",
            "shiangfang/e3nn-models @ 24b023a, "
            "data/phonon_becs_epsilon.xyz, MIT (`tensors/LICENSE_e3nn-models.txt`); the "
            "source database is not stated there (likely Petretto et al. 2018 DFPT)",
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--rows", type=int, default=40)
    args = parser.parse_args()
    if OUT.exists():
        shutil.rmtree(OUT)
    for build in (mp36k, jarvis, perov5, chen2021, ye2018, born_charges):
        build(args.data_dir, args.rows)
    for licence in LICENCES:
        (OUT / licence).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(args.data_dir / licence, OUT / licence)
    lines = [
        "# tests/data/mini: small real subsets of ../shared/data",
        "",
        "Written by `scripts/make_test_data.py` (its docstring says what is left out and why);",
        "the same layout as the shared data folder, so a loader reads it through",
        "`paths.data_dir=tests/data/mini`. Nothing is recomputed: each file holds rows of its",
        "source file, in that file's own format.",
        "",
        "Each source's licence file is copied next to its subset.",
        "",
        "| file | rows kept | source and licence |",
        "|---|---|---|",
        *(f"| `{name}` | {how} | {licence} |" for name, how, licence in MADE),
    ]
    (OUT / "PROVENANCE.md").write_text("\n".join(lines) + "\n")
    size = sum(p.stat().st_size for p in OUT.rglob("*") if p.is_file())
    print(f"{OUT}: {len(MADE)} files, {size / 2**20:.2f} MB")


if __name__ == "__main__":
    main()
