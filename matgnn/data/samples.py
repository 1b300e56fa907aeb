"""Small real datasets shipped inside the package (see ``matgnn/resources/README.md``)."""

from __future__ import annotations

import warnings
from importlib import resources

import pandas as pd
from pymatgen.core import Structure

MP_SAMPLE = "mp36k_sample.csv.gz"
PHDOS_SAMPLE = "phdos_sample.csv.gz"


def mp_sample_frame() -> pd.DataFrame:
    """The 1,500-row Materials Project sample: mp_id, targets and CIF text."""
    with resources.as_file(resources.files("matgnn.resources") / MP_SAMPLE) as path:
        return pd.read_csv(path)


def phdos_sample_frame() -> pd.DataFrame:
    """400 rows of Chen et al.'s phonon DOS table with ``row`` (in the full table) and ``split``."""
    with resources.as_file(resources.files("matgnn.resources") / PHDOS_SAMPLE) as path:
        return pd.read_csv(path, index_col="row")


def mp_sample_structures(n: int | None = None) -> tuple[list[str], list[Structure]]:
    """The first ``n`` (default all) structures of the sample, with their mp-ids."""
    frame = mp_sample_frame()
    if n is not None:
        frame = frame.iloc[:n]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pymatgen's "coordinates rounded" notices
        structures = [Structure.from_str(cif, fmt="cif") for cif in frame["cif"]]
    return frame["mp_id"].tolist(), structures
