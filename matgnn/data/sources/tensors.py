"""Tensor-property data sets (in the structure's Cartesian frame).

* ``dielectric``: matminer's ``dielectric_constant`` (Petousis et al., Sci. Data 4, 160134
  (2017)), 1,056 crystals with 3x3 ``e_electronic`` and ``e_total`` tensors. Read with
  matminer's own ``load_dataset`` (which checks the file hash): from ``<data_dir>/tensors`` when
  a local copy is there, else downloaded. The tensors are slightly non-symmetric (up to 0.56 in
  the raw file); they are symmetrised, ``(T + T^T) / 2``, and the largest change is logged.
* ``born_charges``: Born effective charges (a 3x3 tensor per atom, column ``becs``) and the
  electronic dielectric tensor (``eps``) of 1,520 crystals, extended XYZ of
  shiangfang/e3nn-models ``data/phonon_becs_epsilon.xyz``; ``<data_dir>/tensors`` holds it
  gzipped.
* ``*_sample``: the first 150 entries of each, shipped in the package
  (``matgnn/resources/README.md``).
"""

from __future__ import annotations

import gzip
import json
import logging
from importlib import resources
from pathlib import Path

import numpy as np
from ase import io as ase_io
from pymatgen.core import Structure

from matgnn.data.records import Records

log = logging.getLogger(__name__)
DIELECTRIC_TENSORS = ("e_electronic", "e_total")
BECS_FILE = "phonon_becs_epsilon.xyz.gz"
BECS_URL = (
    "https://raw.githubusercontent.com/shiangfang/e3nn-models/"
    "24b023a8ed078e55e7db33460decd4d4f5d51e26/data/phonon_becs_epsilon.xyz"
)


def symmetrised(tensors: np.ndarray, name: str) -> np.ndarray:
    """``(T + T^T) / 2`` of ``[M, 3, 3]`` tensors; logs the largest change."""
    symmetric = 0.5 * (tensors + tensors.transpose(0, 2, 1))
    change = float(np.abs(symmetric - tensors).max()) if len(tensors) else 0.0
    log.info("%s: symmetrised, largest change of a component %.3g", name, change)
    return symmetric


def _dielectric_records(rows: list[dict], name: str, limit: int | None) -> Records:
    rows = rows[:limit] if limit else rows
    targets = {}
    for column in DIELECTRIC_TENSORS:
        raw = np.array([_matrix(r[column]) for r in rows], dtype=float).reshape(-1, 3, 3)
        targets[column] = symmetrised(raw, f"{name} {column}")
    return Records(
        ids=[str(r["material_id"]) for r in rows],
        structures=[_structure(r["structure"]) for r in rows],
        targets=targets,
        name=name + (f"-first{limit}" if limit else ""),
    )


def _matrix(value) -> list:
    return json.loads(value) if isinstance(value, str) else value


def _structure(value) -> Structure:
    return value if isinstance(value, Structure) else Structure.from_dict(value)


def dielectric(data_dir: str | Path | None = None, limit: int | None = None) -> Records:
    """matminer ``dielectric_constant``: targets ``e_electronic`` and ``e_total`` ``[M, 3, 3]``.

    Args:
        data_dir: folder holding ``tensors/dielectric_constant.json.gz``; ``None`` downloads
            through matminer.
        limit: keep the first ``limit`` rows.
    """
    from matminer.datasets import load_dataset

    home = None if data_dir is None else str(Path(data_dir) / "tensors")
    frame = load_dataset("dielectric_constant", data_home=home)
    return _dielectric_records(frame.to_dict("records"), "dielectric_constant", limit)


def dielectric_sample(limit: int | None = None) -> Records:
    """The first 150 rows of ``dielectric_constant``, shipped in the package."""
    path = resources.files("matgnn.resources") / "dielectric_sample.json.gz"
    with resources.as_file(path) as local, gzip.open(local, "rt") as handle:
        rows = json.load(handle)
    return _dielectric_records(rows, "dielectric_sample", limit)


def _born_records(path: Path, name: str, limit: int | None) -> Records:
    with gzip.open(path, "rt") if path.suffix == ".gz" else open(path) as handle:
        frames = ase_io.read(handle, index=f":{limit}" if limit else ":", format="extxyz")
    return Records(
        ids=[f"becs-{i}" for i in range(len(frames))],
        structures=frames,
        targets={
            "becs": [np.asarray(a.arrays["becs"], dtype=float).reshape(-1, 3, 3) for a in frames],
            "eps": np.array([np.reshape(a.info["eps"], (3, 3)) for a in frames], dtype=float),
        },
        name=name + (f"-first{limit}" if limit else ""),
    )


def born_charges(data_dir: str | Path | None = None, limit: int | None = None) -> Records:
    """Born effective charges ``becs`` (per atom, ``[N, 3, 3]`` each) and ``eps``.

    Args:
        data_dir: folder holding ``tensors/phonon_becs_epsilon.xyz.gz``; ``None`` downloads
            the published file.
        limit: keep the first ``limit`` crystals.
    """
    if data_dir is None:
        import urllib.request

        cache = Path.home() / ".cache" / "matgnn"
        cache.mkdir(parents=True, exist_ok=True)
        path = cache / "phonon_becs_epsilon.xyz"
        if not path.is_file():
            urllib.request.urlretrieve(BECS_URL, path)
    else:
        path = Path(data_dir) / "tensors" / BECS_FILE
        if not path.is_file():
            raise FileNotFoundError(f"born_charges: {path} not found; set data_dir")
    return _born_records(path, "born_charges", limit)


def born_charges_sample(limit: int | None = None) -> Records:
    """The first 150 crystals of the Born-charge set, shipped in the package."""
    path = resources.files("matgnn.resources") / "becs_sample.xyz.gz"
    with resources.as_file(path) as local:
        return _born_records(Path(local), "born_charges_sample", limit)
