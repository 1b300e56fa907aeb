"""Materials Project sets stored as CSV with a CIF column.

* ``mp_sample``: the 1,500-structure sample shipped in the package (the embedded default task).
* ``mp2018``: the 36,737-structure MP set of ``<data_dir>/mp36k/mp36k_with_ehull.csv.gz``
  (kdmsit/MEGNet distribution of the CGCNN MP id list; see ``../shared/data/README.md``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from matgnn.data.records import Records
from matgnn.samples import mp_sample_frame

MP_TARGETS = (
    "formation_energy_per_atom",
    "band_gap",
    "e_above_hull_mp2018_automatminer",
    "is_metal",
)
MP36K_FILE = Path("mp36k") / "mp36k_with_ehull.csv.gz"


def records_from_frame(frame: pd.DataFrame, target: str, name: str) -> Records:
    """Records of an MP table; ``target="is_metal"`` is 1 where ``band_gap == 0`` else 0, the
    rule of Matbench's ``mp_is_metal`` (true on every one of its rows against ``mp_gap``)."""
    if target == "is_metal" and "band_gap" in frame.columns:
        frame = frame.assign(
            is_metal=(frame["band_gap"] == 0).astype(np.int64).where(frame["band_gap"].notna())
        )
    if target not in frame.columns:
        raise ValueError(f"{name}: no target column {target!r}; columns: {list(frame.columns)}")
    return Records(
        ids=frame["mp_id"].astype(str).tolist(),
        structures=frame["cif"].tolist(),
        targets=frame[target].to_numpy(dtype=np.float64),
        name=f"{name}-{target}",
    )


def mp_sample(target: str = "formation_energy_per_atom", limit: int | None = None) -> Records:
    """The shipped 1,500-row MP sample (``matgnn/resources/mp36k_sample.csv.gz``)."""
    frame = mp_sample_frame()
    return records_from_frame(frame.iloc[:limit] if limit else frame, target, "mp_sample")


def mp2018(
    data_dir: str | Path, target: str = "formation_energy_per_atom", limit: int | None = None
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
