"""Materials Project sets stored as CSV with a CIF column.

* ``mp_sample``: the 1,500-structure sample shipped in the package (the embedded default task).
* ``mp2018``: the 36,737-structure MP set of ``<data_dir>/mp36k/mp36k_with_ehull.csv.gz``
  (kdmsit/MEGNet distribution of the CGCNN MP id list; see ``../shared/data/README.md``).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from pymatgen.core import Structure

from matgnn.data.records import Records
from matgnn.data.samples import mp_sample_frame
from matgnn.data.sources.columns import require_columns

MP_TARGETS = (
    "formation_energy_per_atom",
    "band_gap",
    "e_above_hull_mp2018_automatminer",
    "is_metal",
)
MP36K_FILE = Path("mp36k") / "mp36k_with_ehull.csv.gz"


CRYSTAL_SYSTEMS = (
    "triclinic",
    "monoclinic",
    "orthorhombic",
    "tetragonal",
    "trigonal",
    "hexagonal",
    "cubic",
)


def crystal_system_label(cif: str, symprec: float = 0.1) -> int:
    """Index in :data:`CRYSTAL_SYSTEMS` of the structure's crystal system, as spglib finds it
    with the Materials Project's tolerance (``symprec=0.1``, pymatgen SpacegroupAnalyzer)."""
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    with warnings.catch_warnings():  # "fractional coordinates rounded to ideal values"
        warnings.simplefilter("ignore")
        structure = Structure.from_str(cif, fmt="cif")
    return CRYSTAL_SYSTEMS.index(SpacegroupAnalyzer(structure, symprec).get_crystal_system())


def records_from_frame(frame: pd.DataFrame, target: str | Sequence[str], name: str) -> Records:
    """Records of an MP table with one target column or several (a multi-output task).
    ``"crystal_system"`` is derived from each structure (:func:`crystal_system_label`);
    ``"is_metal"`` is 1 where ``band_gap == 0`` else 0, the rule of Matbench's ``mp_is_metal``
    (true on every one of its rows against ``mp_gap``)."""
    columns = [target] if isinstance(target, str) else list(target)
    if "crystal_system" in columns and "cif" in frame.columns:
        frame = frame.assign(crystal_system=[crystal_system_label(c) for c in frame["cif"]])
    if "is_metal" in columns and "band_gap" in frame.columns:
        frame = frame.assign(
            is_metal=(frame["band_gap"] == 0).astype(np.int64).where(frame["band_gap"].notna())
        )
    require_columns(frame, ("mp_id", "cif"), name)
    require_columns(frame, columns, name, "target column")
    return Records(
        ids=frame["mp_id"].astype(str).tolist(),
        structures=frame["cif"].tolist(),
        targets={c: frame[c].to_numpy(dtype=np.float64) for c in columns},
        name=f"{name}-{'+'.join(columns)}",
    )


def mp_sample(
    target: str | Sequence[str] = "formation_energy_per_atom", limit: int | None = None
) -> Records:
    """The shipped 1,500-row MP sample (``matgnn/resources/mp36k_sample.csv.gz``); ``target``
    is one column or several (``band_gap``, ``is_metal``, ...)."""
    frame = mp_sample_frame()
    return records_from_frame(frame.iloc[:limit] if limit else frame, target, "mp_sample")


def mp2018(
    data_dir: str | Path,
    target: str | Sequence[str] = "formation_energy_per_atom",
    limit: int | None = None,
) -> Records:
    """The 36,737-structure MP 2018 set read from ``<data_dir>/mp36k/``.

    Not downloadable from a public URL in this form (it is the kdmsit/MEGNet CSV joined with
    automatminer's e_above_hull); ``data_dir`` must hold the copy described in
    ``../shared/data/README.md``.
    """
    path = Path(data_dir) / MP36K_FILE
    if not path.is_file():
        raise FileNotFoundError(f"mp2018: {path} not found; set data_dir to the shared data folder")
    frame = pd.read_csv(path, nrows=limit)
    return records_from_frame(frame, target, "mp2018")
