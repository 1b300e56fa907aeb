"""JARVIS-DFT ``dft_3d`` (Choudhary et al., npj Comput. Mater. 6, 173 (2020)) with the
JARVIS-Leaderboard train/val/test split of each property.

``data_dir=None`` (a connected machine): structures and targets from jarvis-tools
(``jarvis.db.figshare.data("dft_3d")``, ``pip install jarvis-tools``) and the split file from
the leaderboard repository. With ``data_dir``: ``<data_dir>/jarvis/jarvis_dft3d_subset.csv``
(columns ``jid``, ``poscar`` and the properties) and
``<data_dir>/jarvis/leaderboard/SinglePropertyPrediction/dft_3d_<target>.json.zip``.
JARVIS marks a missing value ``"na"``; rows without the target are dropped before anything
else (they are unlabelled, not invalid).
"""

from __future__ import annotations

import io
import json
import logging
import urllib.request
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
from pymatgen.core import Lattice, Structure

from matgnn.data.records import Records
from matgnn.data.sources.columns import require_columns

log = logging.getLogger(__name__)

SUBSET_FILE = Path("jarvis") / "jarvis_dft3d_subset.csv"
SPLIT_DIR = Path("jarvis") / "leaderboard" / "SinglePropertyPrediction"
LEADERBOARD_URL = (
    "https://raw.githubusercontent.com/usnistgov/jarvis_leaderboard/main/jarvis_leaderboard/"
    "benchmarks/AI/SinglePropertyPrediction/"
)


def jarvis_dft3d(
    target: str = "formation_energy_peratom",
    data_dir: str | Path | None = None,
    limit: int | None = None,
) -> Records:
    """``dft_3d`` rows that have ``target``, with the leaderboard split (``Records.split``).

    Args:
        target: a ``dft_3d`` key, e.g. ``formation_energy_peratom`` (eV/atom) or ``ehull``
            (eV/atom).
        data_dir: folder holding ``jarvis/`` (see module docstring); ``None`` downloads.
        limit: keep only the first ``limit`` labelled rows.
    """
    if data_dir is None:
        frame = _download_dft3d(target)
        split = _leaderboard_split(zipfile.ZipFile(io.BytesIO(_fetch(f"dft_3d_{target}.json.zip"))))
    else:
        path = Path(data_dir) / SUBSET_FILE
        if not path.is_file():
            raise FileNotFoundError(f"jarvis: {path} not found")
        frame = pd.read_csv(path)
        require_columns(frame, ("jid", "poscar"), f"jarvis: {path}")
        frame["structure"] = frame["poscar"]
        split_file = Path(data_dir) / SPLIT_DIR / f"dft_3d_{target}.json.zip"
        if not split_file.is_file():
            raise FileNotFoundError(f"jarvis: leaderboard split {split_file} not found")
        split = _leaderboard_split(zipfile.ZipFile(split_file))
    require_columns(frame, [target], "jarvis dft_3d", "property")
    values = pd.to_numeric(frame[target].replace("na", np.nan), errors="coerce")
    labelled = frame[values.notna()].copy()
    labelled[target] = values[values.notna()]
    log.info("jarvis dft_3d %s: %d of %d rows labelled", target, len(labelled), len(frame))
    if limit:
        labelled = labelled.iloc[:limit]
    ids = labelled["jid"].astype(str).tolist()
    present = set(ids)
    return Records(
        ids=ids,
        structures=labelled["structure"].tolist(),
        targets={target: labelled[target].to_numpy(dtype=np.float64)},
        name=f"jarvis_dft3d-{target}"
        + ("" if data_dir is None else "-local")
        + (f"-first{limit}" if limit else ""),
        split={k: [i for i in v if i in present] for k, v in split.items()},
    )


def _leaderboard_split(archive: zipfile.ZipFile) -> dict[str, list[str]]:
    """``{"train": {jid: value}, "val": ..., "test": ...}`` -> lists of jids."""
    with archive.open(archive.namelist()[0]) as handle:
        raw = json.load(handle)
    return {k: list(v) for k, v in raw.items()}


def _fetch(name: str) -> bytes:
    with urllib.request.urlopen(LEADERBOARD_URL + name) as response:
        return response.read()


def _download_dft3d(target: str) -> pd.DataFrame:
    try:
        from jarvis.db.figshare import data
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError("JARVIS downloads need jarvis-tools: pip install jarvis-tools") from error
    rows = data("dft_3d")
    return pd.DataFrame(
        {
            "jid": [r["jid"] for r in rows],
            target: [r.get(target, "na") for r in rows],
            "structure": [jarvis_atoms_to_structure(r["atoms"]) for r in rows],
        }
    )


def jarvis_atoms_to_structure(atoms: dict) -> Structure:
    """A jarvis-tools ``Atoms.to_dict()`` (lattice_mat, coords, elements, cartesian) -> pymatgen."""
    return Structure(
        Lattice(atoms["lattice_mat"]),
        atoms["elements"],
        atoms["coords"],
        coords_are_cartesian=bool(atoms["cartesian"]),
    )
