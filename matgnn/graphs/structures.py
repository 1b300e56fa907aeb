"""Turn user input (pymatgen, ASE, CIF/POSCAR paths or text) into a validated ``Structure``.

Every error is a ``ValueError`` whose message starts with the structure's name, so that a
dataset loader or the prediction CLI can report the offending entry without a traceback.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
from ase import Atoms
from pymatgen.core import Element, Structure
from pymatgen.io.ase import AseAtomsAdaptor
from pymatgen.optimization.neighbors import find_points_in_spheres

StructureLike = Structure | Atoms | str | Path


def structure_name(structure: Structure, fallback: str | None = None) -> str:
    """A human-readable name for error messages: ``fallback``, the ``id`` property, or formula."""
    if fallback:
        return str(fallback)
    props = getattr(structure, "properties", None) or {}
    for key in ("id", "material_id", "name"):
        if props.get(key):
            return str(props[key])
    try:
        return structure.composition.reduced_formula
    except Exception:  # composition of an invalid structure may itself fail
        return "<structure>"


def _looks_like_path(text: str) -> bool:
    return "\n" not in text and len(text) < 4096 and Path(text).exists()


def _parse_text(text: str, name: str) -> Structure:
    """Parse CIF, POSCAR or extended XYZ text."""
    stripped = text.lstrip()
    errors = []
    fmts = ["cif", "poscar"] if "data_" in text or stripped.startswith("#") else ["poscar", "cif"]
    for fmt in fmts:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return Structure.from_str(text, fmt=fmt)
        except Exception as exc:
            errors.append(f"{fmt}: {exc}")
    try:  # extended XYZ and anything else ASE reads
        from ase.io import read as ase_read

        atoms = ase_read(io.StringIO(text), format="extxyz")
        return AseAtomsAdaptor.get_structure(atoms)
    except Exception as exc:
        errors.append(f"extxyz: {exc}")
    raise ValueError(f"{name}: could not parse structure text ({'; '.join(errors)})")


def _read_file(path: Path, name: str) -> Structure:
    if not path.is_file():
        raise ValueError(f"{name}: no such file")
    if path.stat().st_size == 0:
        raise ValueError(f"{name}: empty file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return Structure.from_file(path)
    except Exception as pmg_exc:
        try:
            from ase.io import read as ase_read

            return AseAtomsAdaptor.get_structure(ase_read(path))
        except Exception as ase_exc:
            raise ValueError(
                f"{name}: unparsable structure file (pymatgen: {pmg_exc}; ase: {ase_exc})"
            ) from None


def to_structure(obj: StructureLike, name: str | None = None) -> tuple[Structure, str]:
    """Convert ``obj`` to a pymatgen ``Structure`` and return it with its display name.

    Accepts a ``Structure``, an ASE ``Atoms``, a path (CIF, POSCAR/CONTCAR, extxyz, anything
    pymatgen or ASE reads) or CIF/POSCAR/extxyz text. Raises ``ValueError`` naming the input.
    """
    if isinstance(obj, Structure):
        return obj, structure_name(obj, name)
    if isinstance(obj, Path) or (isinstance(obj, str) and _looks_like_path(obj)):
        path = Path(obj)
        label = name or str(path)
        return _read_file(path, label), label
    if isinstance(obj, str):
        label = name or "<structure text>"
        if not obj.strip():
            raise ValueError(f"{label}: empty structure text")
        return _parse_text(obj, label), label
    if isinstance(obj, Atoms):
        label = name or str(obj.get_chemical_formula())
        try:
            return AseAtomsAdaptor.get_structure(obj), label
        except Exception as exc:
            raise ValueError(f"{label}: cannot convert ASE Atoms ({exc})") from None
    raise ValueError(f"{name or '<input>'}: unsupported structure type {type(obj).__name__}")


def check_structure(structure: Structure, name: str, min_distance: float = 0.1) -> None:
    """Raise ``ValueError`` (prefixed with ``name``) if ``structure`` cannot become a graph.

    Rejects: no sites, disordered or non-element sites, NaN/inf lattice or coordinates,
    zero or negative cell volume (left-handed basis), atoms closer than ``min_distance`` Å
    (periodic images included).
    """
    if len(structure) == 0:
        raise ValueError(f"{name}: empty structure (no sites)")
    for idx, site in enumerate(structure):
        if not site.is_ordered:
            raise ValueError(
                f"{name}: site {idx} is disordered ({site.species_string}); matgnn needs "
                "fully ordered structures (order it first, e.g. with OrderDisorderedStructure)"
            )
        specie = site.specie
        if not isinstance(getattr(specie, "element", specie), Element):
            raise ValueError(f"{name}: site {idx} has unknown element {specie!s}")
    matrix = np.asarray(structure.lattice.matrix, dtype=float)
    if not np.all(np.isfinite(matrix)):
        raise ValueError(f"{name}: lattice contains NaN or inf: {matrix.tolist()}")
    frac = np.asarray(structure.frac_coords, dtype=float)
    if not np.all(np.isfinite(frac)):
        bad = np.flatnonzero(~np.isfinite(frac).all(axis=1)).tolist()
        raise ValueError(f"{name}: NaN or inf coordinates at sites {bad}")
    det = float(np.linalg.det(matrix))
    scale = float(np.prod(np.linalg.norm(matrix, axis=1)))
    if abs(det) <= 1e-6 * max(scale, 1e-300) or abs(det) < 1e-6:
        raise ValueError(f"{name}: zero cell volume ({det:.3g} Å^3; degenerate lattice vectors)")
    if det < 0:
        raise ValueError(
            f"{name}: negative cell volume ({det:.3g} Å^3): the lattice basis is left-handed; "
            "swap two lattice vectors"
        )
    check_overlaps(matrix, frac, structure, name, min_distance)


def check_overlaps(
    matrix: np.ndarray, frac: np.ndarray, structure: Structure, name: str, min_distance: float
) -> None:
    cart = frac @ matrix
    centers, neighbors, images, dists = find_points_in_spheres(
        cart,
        cart,
        r=float(min_distance),
        pbc=np.ones(3, dtype=np.int64),
        lattice=matrix,
        tol=1e-8,
    )
    is_self = (centers == neighbors) & np.all(images == 0, axis=1)
    close = np.flatnonzero(~is_self & (dists < min_distance))
    if close.size:
        k = close[np.argmin(dists[close])]
        i, j = int(centers[k]), int(neighbors[k])
        what = "an image of itself" if i == j else f"atom {j} ({structure[j].species_string})"
        raise ValueError(
            f"{name}: overlapping atoms: atom {i} ({structure[i].species_string}) and {what} "
            f"are {dists[k]:.4f} Å apart (< min_distance {min_distance} Å)"
        )
