"""Tensor-property data sets (in the structure's Cartesian frame).

* ``dielectric``: matminer's ``dielectric_constant`` (Petousis et al., Sci. Data 4, 160134
  (2017)), 1,056 crystals with 3x3 ``e_electronic`` and ``e_total`` tensors. Read with
  matminer's own files (``load_dataset``'s, hash-checked when it downloads one), read with
  their markers checked (:mod:`matgnn.data.sources.matminer_json`): from ``<data_dir>/tensors``
  when a local copy is there, else downloaded. The tensors are slightly non-symmetric (up to 0.56 in
  the raw file); they are symmetrised, ``(T + T^T) / 2``, and the largest change is logged.
* ``elastic_tensor``: matminer's ``elastic_tensor_2015`` (de Jong et al., Sci. Data 2, 150009
  (2015)), 1,181 crystals: the 6x6 Voigt stiffness (GPa; the dataset's ``elastic_tensor``,
  symmetrised to the crystal by the authors) as a Cartesian ``[3, 3, 3, 3]`` tensor
  (:func:`matgnn.analysis.elasticity.voigt_to_cartesian`), with the stored ``K_VRH`` and ``G_VRH``
  for a scalar model on the same rows. The tensor lies in the frame of the dataset's ``structure``
  column (not always in that of its CIF, whose lattice pymatgen re-orients).
* ``born_charges``: Born effective charges (a 3x3 tensor per atom, column ``becs``) and the
  electronic dielectric tensor (``eps``) of 1,520 crystals, extended XYZ of
  shiangfang/e3nn-models ``data/phonon_becs_epsilon.xyz``; ``<data_dir>/tensors`` holds it
  gzipped.
* ``*_sample``: the first 150 entries of each, shipped in the package
  (``matgnn/resources/README.md``).

Every crystal-level tensor is checked against its structure (Neumann's principle, see
:mod:`matgnn.analysis.tensor_symmetry`): a tensor that the crystal's own symmetry operations change
by more than ``frame_tolerance`` of its largest component is not in the structure's frame, or too
noisy, and is dropped, with its id logged. Derived scalars, for a scalar model trained on the
same rows: ``<tensor>_mean`` = trace / 3 of a dielectric tensor (matminer's ``poly_*`` columns
are the same number rounded to 0.01).
"""

from __future__ import annotations

import gzip
import json
import logging
from collections.abc import Mapping
from importlib import resources
from pathlib import Path

import numpy as np
from ase import io as ase_io
from pymatgen.core import Structure
from tqdm.auto import tqdm

from matgnn.analysis.elasticity import voigt_to_cartesian
from matgnn.analysis.tensor_symmetry import cartesian_rotations, symmetry_residual
from matgnn.data.records import Records
from matgnn.data.sources.matminer_json import matminer_file, read_matminer_json
from matgnn.graphs.structure_json import structure_from_dict

log = logging.getLogger(__name__)
DIELECTRIC_TENSORS = ("e_electronic", "e_total")
ELASTIC_MODULI = ("K_VRH", "G_VRH")
#: largest change of a tensor under its crystal's symmetry operations, relative to its largest
#: component, for it to count as given in the structure's frame
FRAME_TOLERANCE = 0.01
ELASTIC_FRAME_TOLERANCE = 0.05
BECS_FILE = "phonon_becs_epsilon.xyz.gz"
BECS_URL = (
    "https://raw.githubusercontent.com/shiangfang/e3nn-models/"
    "24b023a8ed078e55e7db33460decd4d4f5d51e26/data/phonon_becs_epsilon.xyz"
)


def symmetrised(tensors: list[np.ndarray], name: str) -> list[np.ndarray]:
    """``(T + T^T) / 2`` of each 3x3 tensor (others are left for the data module to reject);
    logs the largest change."""
    out = [0.5 * (t + t.T) if t.shape == (3, 3) else t for t in tensors]
    changes = [np.abs(a - b).max() for a, b in zip(out, tensors, strict=True) if a.shape == (3, 3)]
    change = float(np.nanmax(changes)) if changes else 0.0
    log.info("%s: symmetrised, largest change of a component %.3g", name, change)
    return out


def _mean(tensor: np.ndarray) -> float:
    return float(np.trace(tensor)) / 3 if tensor.shape == (3, 3) else float("nan")


def in_structure_frame(
    ids: list[str],
    structures: list[Structure],
    tensors,
    name: str,
    tolerance: float | None,
    symprec: float = 0.01,
) -> dict[str, str]:
    """``{id: reason}`` of the tensors that their crystal's symmetry operations change by more
    than ``tolerance`` (relative to the largest component); logs the share and the ids.
    ``tolerance=None`` checks nothing. A tensor of the wrong shape or with a non-finite entry is
    passed, for the data module to reject it by id with its problem."""
    if tolerance is None:
        return {}
    dropped, checked = {}, 0
    rows = zip(ids, structures, tensors, strict=True)
    # a bar on a terminal only (disable=None): written into a log it is a line per update
    bar = tqdm(rows, total=len(ids), desc=f"{name}: frame check", disable=len(ids) < 500 or None)
    for sid, structure, tensor in bar:
        tensor = np.asarray(tensor, dtype=float)
        if tensor.shape not in ((3, 3), (3, 3, 3, 3)) or not np.isfinite(tensor).all():
            continue
        checked += 1
        residual = symmetry_residual(tensor, cartesian_rotations(structure, symprec))
        if residual > tolerance:
            dropped[sid] = (
                f"{name}: the crystal's symmetry operations change the tensor by {residual:.3f} "
                f"of its largest component (> {tolerance:g}): not in the structure's frame, or "
                "too noisy"
            )
    log.info(
        "%s: %d of %d tensors invariant under their crystal's symmetry operations (relative "
        "residual <= %g); dropped%s",
        name,
        checked - len(dropped),
        checked,
        tolerance,
        (": " + ", ".join(dropped)) if dropped else " none",
    )
    return dropped


def _kept(ids: list[str], dropped: Mapping[str, str], values) -> list:
    return [v for sid, v in zip(ids, values, strict=True) if sid not in dropped]


def _dielectric_records(
    rows: list[dict], name: str, limit: int | None, frame_tolerance: float | None
) -> Records:
    rows = rows[:limit] if limit else rows
    ids = [str(r["material_id"]) for r in rows]
    pairs = zip(rows, ids, strict=True)
    structures = [_structure(r["structure"], f"{name} {sid}") for r, sid in pairs]
    tensors = {}
    for column in DIELECTRIC_TENSORS:
        raw = [np.asarray(_matrix(r[column]), dtype=float) for r in rows]
        tensors[column] = symmetrised(raw, f"{name} {column}")
    dropped: dict[str, str] = {}
    for column, values in tensors.items():
        checked = in_structure_frame(ids, structures, values, f"{name} {column}", frame_tolerance)
        dropped = {**checked, **dropped}
    targets = {}
    for column, values in tensors.items():
        targets[column] = _kept(ids, dropped, values)
        targets[f"{column}_mean"] = np.array([_mean(t) for t in targets[column]])
    return Records(
        ids=_kept(ids, dropped, ids),
        structures=_kept(ids, dropped, structures),
        targets=targets,
        name=name + (f"-first{limit}" if limit else ""),
        dropped=dropped,
    )


def _matrix(value) -> list:
    return json.loads(value) if isinstance(value, str) else value


def _structure(value, source: str) -> Structure:
    return value if isinstance(value, Structure) else structure_from_dict(value, source)


def _matminer(name: str, data_dir: str | Path | None):
    """The rows of matminer's data set ``name``: ``<data_dir>/tensors/<name>.json.gz`` (else
    matminer's own copy, downloaded once), read as matminer reads it with every marker checked
    first (:func:`~matgnn.data.sources.matminer_json.read_matminer_json`)."""
    home = None if data_dir is None else Path(data_dir) / "tensors"
    return read_matminer_json(matminer_file(name, home)).to_dict("records")


def sample_rows(file: str) -> list[dict]:
    """The rows of a JSON sample shipped in ``matgnn/resources`` (``*_sample.json.gz``)."""
    path = resources.files("matgnn.resources") / file
    with resources.as_file(path) as local, gzip.open(local, "rt") as handle:
        return json.load(handle)


def dielectric(
    data_dir: str | Path | None = None,
    limit: int | None = None,
    frame_tolerance: float | None = FRAME_TOLERANCE,
) -> Records:
    """matminer ``dielectric_constant``: targets ``e_electronic`` and ``e_total`` ``[M, 3, 3]``
    (symmetrised) and their means ``e_electronic_mean``, ``e_total_mean`` ``[M]``.

    Args:
        data_dir: folder holding ``tensors/dielectric_constant.json.gz``; ``None`` downloads
            through matminer.
        limit: keep the first ``limit`` rows.
        frame_tolerance: drop a crystal whose tensor its symmetry operations change by more
            than this share of its largest component (``None``: no check).
    """
    rows = _matminer("dielectric_constant", data_dir)
    return _dielectric_records(rows, "dielectric_constant", limit, frame_tolerance)


def dielectric_sample(
    limit: int | None = None, frame_tolerance: float | None = FRAME_TOLERANCE
) -> Records:
    """The first 150 rows of ``dielectric_constant``, shipped in the package."""
    rows = sample_rows("dielectric_sample.json.gz")
    return _dielectric_records(rows, "dielectric_sample", limit, frame_tolerance)


def _elastic_records(
    rows: list[dict], name: str, limit: int | None, frame_tolerance: float | None
) -> Records:
    rows = rows[:limit] if limit else rows
    ids = [str(r["material_id"]) for r in rows]
    pairs = zip(rows, ids, strict=True)
    structures = [_structure(r["structure"], f"{name} {sid}") for r, sid in pairs]
    voigt = [np.asarray(_matrix(r["elastic_tensor"]), dtype=float) for r in rows]
    # a matrix that is not 6x6 stays as it is: the data module rejects it by id
    tensors = [voigt_to_cartesian(v) if v.shape == (6, 6) else v for v in voigt]
    dropped = in_structure_frame(
        ids, structures, tensors, f"{name} elastic_tensor", frame_tolerance
    )
    return Records(
        ids=_kept(ids, dropped, ids),
        structures=_kept(ids, dropped, structures),
        targets={
            "elastic_tensor": _kept(ids, dropped, tensors),
            **{
                c: np.array(_kept(ids, dropped, [float(r[c]) for r in rows]))
                for c in ELASTIC_MODULI
            },
        },
        name=name + (f"-first{limit}" if limit else ""),
        dropped=dropped,
    )


def elastic_tensor(
    data_dir: str | Path | None = None,
    limit: int | None = None,
    frame_tolerance: float | None = ELASTIC_FRAME_TOLERANCE,
) -> Records:
    """matminer ``elastic_tensor_2015``: target ``elastic_tensor`` ``[M, 3, 3, 3, 3]`` (GPa, the
    structure's Cartesian frame) and the stored moduli ``K_VRH``, ``G_VRH`` ``[M]`` (GPa).

    Args:
        data_dir: folder holding ``tensors/elastic_tensor_2015.json.gz``; ``None`` downloads
            through matminer.
        limit: keep the first ``limit`` rows.
        frame_tolerance: drop a crystal whose tensor its symmetry operations change by more
            than this share of its largest component (``None``: no check). The stored DFT
            tensors are noisier than the dielectric ones: 85.5% pass at 0.01, 98.5% at 0.05.
    """
    rows = _matminer("elastic_tensor_2015", data_dir)
    return _elastic_records(rows, "elastic_tensor_2015", limit, frame_tolerance)


def elastic_sample(
    limit: int | None = None, frame_tolerance: float | None = ELASTIC_FRAME_TOLERANCE
) -> Records:
    """The first 150 rows of ``elastic_tensor_2015``, shipped in the package."""
    rows = sample_rows("elastic_sample.json.gz")
    return _elastic_records(rows, "elastic_sample", limit, frame_tolerance)


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
