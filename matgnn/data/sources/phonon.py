"""Phonon density of states of Chen et al., Adv. Sci. 8, 2004214 (2021).

1,522 crystals from Petretto et al.'s DFPT database (Sci. Data 5, 180065 (2018), CC BY 4.0),
each with a 51-bin phonon DOS on 0-1000 cm^-1 (20 cm^-1 steps, smoothed, max-normalised) and
the authors' own train/valid/test index files. The table is ``data.csv`` of the authors'
tutorial (ninarina12/phononDoS_tutorial, MIT): columns ``mp_id`` (first 883 rows only),
``structure`` (``str(ase.Atoms.todict())``), ``phfreq`` and ``phdos`` (Python lists).

``data_dir=None`` downloads the table and index files from the tutorial repository (URLs not
checked from here: no machine of this project reaches GitHub); otherwise
``<data_dir>/phonon_dos_chen2021/phdos_1522.csv`` and ``idx_{train,valid,test}.txt`` are read.
"""

from __future__ import annotations

import ast
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
from ase import Atoms

from matgnn.data.records import Records
from matgnn.data.samples import phdos_sample_frame

CHEN_DIR = "phonon_dos_chen2021"
CHEN_TABLE = "phdos_1522.csv"
CHEN_URL = "https://raw.githubusercontent.com/ninarina12/phononDoS_tutorial/main/"
# Where the tutorial repository keeps each file (its data.csv and idx_test.txt sit at the top).
REMOTE_FILES = {
    "phdos_1522.csv": "data.csv",
    "idx_train.txt": "data/idx_train.txt",
    "idx_valid.txt": "data/idx_valid.txt",
    "idx_test.txt": "idx_test.txt",
}
INDEX_FILES = {"train": "idx_train.txt", "val": "idx_valid.txt", "test": "idx_test.txt"}
FREQUENCIES_CM = np.linspace(0.0, 1000.0, 51)
#: the target's name: the max-normalised 51-bin DOS
TARGET = "phdos"


def chen2021_phonon_dos(data_dir: str | Path | None = None, limit: int | None = None) -> Records:
    """The 1,522 crystals with their 51-bin DOS (``targets`` ``[M, 51]``) and Chen's split.

    Args:
        data_dir: folder holding ``phonon_dos_chen2021/``; ``None`` downloads.
        limit: keep only the first ``limit`` rows (the split is cut to match).
    """
    folder = _local_or_download(data_dir)
    frame = pd.read_csv(folder / CHEN_TABLE)
    split_rows = {k: np.loadtxt(folder / f, dtype=int).tolist() for k, f in INDEX_FILES.items()}
    return records_from_chen_frame(frame, split_rows, "phonon_dos_chen2021", limit)


def phonon_dos_sample(limit: int | None = None) -> Records:
    """The 400-row subset shipped in the package (300/50/50 rows of Chen's own train/valid/test
    files; ``scripts/make_phonon_sample.py``)."""
    frame = phdos_sample_frame()
    split_rows = {k: frame.index[frame["split"] == k].tolist() for k in INDEX_FILES}
    return records_from_chen_frame(frame, split_rows, "phonon_dos_sample", limit)


def records_from_chen_frame(
    frame: pd.DataFrame, split_rows: dict[str, list[int]], name: str, limit: int | None = None
) -> Records:
    """Records from a table in the format of Chen's ``data.csv`` (index = row of the full
    table) and row-index splits."""
    if limit:
        frame = frame.iloc[:limit]
    ids = chen_ids(frame)
    grids = np.array([ast.literal_eval(f) for f in frame["phfreq"]])
    if not np.allclose(grids, FREQUENCIES_CM):
        raise ValueError(f"{name}: frequency grid differs from 0-1000 cm^-1 in 51 bins")
    targets = np.array([ast.literal_eval(d) for d in frame["phdos"]], dtype=float)
    structures = [Atoms(**ast.literal_eval(s)) for s in frame["structure"]]
    position = {row: i for i, row in enumerate(frame.index)}
    split = {k: [ids[position[r]] for r in rows if r in position] for k, rows in split_rows.items()}
    return Records(
        ids=ids, structures=structures, targets={TARGET: targets}, name=name, split=split
    )


def chen_ids(frame: pd.DataFrame) -> list[str]:
    """The mp-id where the table has one, else ``phdos-<row>`` (rows 883 onwards have none)."""
    return [
        str(mp) if isinstance(mp, str) and mp else f"phdos-{row:04d}"
        for row, mp in zip(frame.index, frame["mp_id"], strict=True)
    ]


def _local_or_download(data_dir: str | Path | None) -> Path:
    if data_dir is not None:
        folder = Path(data_dir) / CHEN_DIR
        if not (folder / CHEN_TABLE).is_file():
            raise FileNotFoundError(f"phonon_dos: {folder / CHEN_TABLE} not found")
        return folder
    folder = Path.home() / ".cache" / "matgnn" / CHEN_DIR
    folder.mkdir(parents=True, exist_ok=True)
    for local, remote in REMOTE_FILES.items():
        if not (folder / local).is_file():
            urllib.request.urlretrieve(CHEN_URL + remote, folder / local)
    return folder
