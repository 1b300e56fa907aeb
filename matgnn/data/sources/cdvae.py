"""CDVAE's perov_5 (Xie et al., ICLR 2022): 18,928 Castelli cubic perovskites (Castelli et al.,
Energy Environ. Sci. 5, 9034 (2012)), five atoms each, with CDVAE's train/val/test split.

Targets: ``heat_ref`` (heat of formation, eV per 5-atom cell, CDVAE's property) or
``heat_all`` (= Matbench perovskites' e_form), ``dir_gap``, ``ind_gap``.

``data_dir=None`` downloads CDVAE's ``data/perov_5/{train,val,test}.csv`` (CIF column). With
``data_dir``, the same three files under ``<data_dir>/cdvae/perov_5/`` are read if they all
exist; otherwise ``<data_dir>/cdvae/perov_5_all_structures_jarvis_leaderboard.csv.gz`` (the
same rows as POSCAR text with a ``split`` column). Rows without the target are dropped first
(in the copy here only 1,024 of the 11,356 training rows carry ``heat_ref``).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from matgnn.data.records import Records
from matgnn.data.sources.columns import require_columns

log = logging.getLogger(__name__)

CDVAE_URL = "https://raw.githubusercontent.com/txie-93/cdvae/main/data/perov_5/"
SPLITS = ("train", "val", "test")
ALL_IN_ONE = Path("cdvae") / "perov_5_all_structures_jarvis_leaderboard.csv.gz"


def cdvae_perov5(
    target: str = "heat_ref", data_dir: str | Path | None = None, limit: int | None = None
) -> Records:
    """perov_5 rows that have ``target``, with CDVAE's split (``Records.split``)."""
    frame = _read(data_dir)
    require_columns(frame, [target], "perov_5", "target column")
    labelled = frame[frame[target].notna()]
    log.info("perov_5 %s: %d of %d rows labelled", target, len(labelled), len(frame))
    if limit:
        labelled = labelled.iloc[:limit]
    ids = [f"perov5-{i}" for i in labelled["material_id"]]
    split = {
        k: [sid for sid, s in zip(ids, labelled["split"], strict=True) if s == k] for k in SPLITS
    }
    return Records(
        ids=ids,
        structures=labelled["structure"].tolist(),
        targets={target: labelled[target].to_numpy(dtype=np.float64)},
        name=f"perov_5-{target}" + (f"-first{limit}" if limit else ""),
        split=split,
    )


def perov5_structures(data_dir: str | Path | None = None, limit: int | None = None) -> Records:
    """Every perov_5 structure (18,928), labelled or not, with CDVAE's split and no targets
    (a structure set: its heats of formation are :func:`cdvae_perov5`'s)."""
    frame = _read(data_dir)
    if limit:
        frame = frame.iloc[:limit]
    ids = [f"perov5-{i}" for i in frame["material_id"]]
    split = {k: [sid for sid, s in zip(ids, frame["split"], strict=True) if s == k] for k in SPLITS}
    return Records(ids, frame["structure"].tolist(), {}, name="perov_5-structures", split=split)


def _read(data_dir: str | Path | None) -> pd.DataFrame:
    if data_dir is None:
        return _cdvae_csvs(lambda split: f"{CDVAE_URL}{split}.csv")
    folder = Path(data_dir) / "cdvae" / "perov_5"
    if all((folder / f"{s}.csv").is_file() for s in SPLITS):
        return _cdvae_csvs(lambda split: folder / f"{split}.csv")
    path = Path(data_dir) / ALL_IN_ONE
    if not path.is_file():
        raise FileNotFoundError(
            f"perov_5: neither {folder}/{{train,val,test}}.csv nor {path} found"
        )
    frame = _read_table(path, ("material_id", "poscar", "split"))
    frame["structure"] = frame["poscar"]
    return frame


def _read_table(path, columns: tuple[str, ...]) -> pd.DataFrame:
    """The CSV at ``path``, refused by name without the ``columns`` the loader reads."""
    frame = pd.read_csv(path)
    require_columns(frame, columns, f"perov_5: {path}")
    return frame


def _cdvae_csvs(location) -> pd.DataFrame:
    parts = []
    for split in SPLITS:
        part = _read_table(location(split), ("material_id", "cif"))
        part["split"] = split
        part["structure"] = part["cif"]
        parts.append(part)
    return pd.concat(parts, ignore_index=True)
