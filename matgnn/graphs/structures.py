"""Turn user input (pymatgen, ASE, CIF/POSCAR paths or text) into a validated ``Structure``.

Every error is a ``ValueError`` whose message starts with the structure's name, so that a
dataset loader or the prediction CLI can report the offending entry without a traceback.
"""

from __future__ import annotations

import io
import re
import warnings
from pathlib import Path

import numpy as np
from ase import Atoms
from monty.io import zopen
from pymatgen.core import DummySpecies, Element, Structure
from pymatgen.io.ase import AseAtomsAdaptor
from pymatgen.io.cif import CifParser

from matgnn.graphs.structure_json import RefusedMarker, read_structure_file

StructureLike = Structure | Atoms | str | Path


def id_property(structure: Structure) -> str | None:
    """The structure's own id (``properties`` keys id, material_id, name), if it has one."""
    props = getattr(structure, "properties", None) or {}
    for key in ("id", "material_id", "name"):
        if props.get(key):
            return str(props[key])
    return None


def structure_name(structure: Structure, fallback: str | None = None) -> str:
    """A human-readable name for error messages: ``fallback``, the ``id`` property, or formula."""
    label = fallback or id_property(structure)
    if label:
        return str(label)
    try:
        return structure.composition.reduced_formula
    except Exception:  # composition of an invalid structure may itself fail
        return "<structure>"


def _looks_like_path(text: str) -> bool:
    return "\n" not in text and len(text) < 4096 and Path(text).exists()


class StructureRefused(ValueError):
    """Input that parses but would be read wrong (a file of several structures, a POSCAR without
    element names, a marker naming a Python object): refused as it is, never handed on to
    another reader."""


#: a CIF data block's header line
_DATA_BLOCK = re.compile(r"^[ \t]*data_", re.MULTILINE | re.IGNORECASE)


def _only(count: int, name: str, what: str) -> None:
    if count > 1:
        raise StructureRefused(
            f"{name}: holds {count} structures ({what}); give one structure per file or text"
        )
    if count == 0:
        raise ValueError(f"{name}: holds no structure")


def _refuse_guessed_elements(caught: list[warnings.WarningMessage], name: str) -> None:
    """pymatgen reads a POSCAR without element names (VASP 4) as H, He, Li, ... with only a
    warning: refuse it instead."""
    for warning in caught:
        if "Elements in POSCAR cannot be determined" in str(warning.message):
            raise StructureRefused(
                f"{name}: the POSCAR names no elements (no element line, VASP 4 style), so "
                "pymatgen would guess H, He, Li, ...; add the line of element symbols above "
                "the counts (VASP 5)"
            )


def _pymatgen_text(text: str, fmt: str, name: str) -> Structure:
    """pymatgen's reading of CIF or POSCAR text, refusing what it would read wrong: a CIF of
    several structures (pymatgen takes the first) and a POSCAR without element names."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if fmt == "cif" and len(_DATA_BLOCK.findall(text)) > 1:
            structures = CifParser.from_str(text).parse_structures(primitive=False)
            _only(len(structures), name, "CIF data blocks")
            structure = structures[0]
        else:
            structure = Structure.from_str(text, fmt=fmt)
    _refuse_guessed_elements(caught, name)
    return structure


def _ase_structure(frames: list[Atoms], name: str) -> Structure:
    """The one structure of what ASE read (every frame, so a trajectory or a multi-frame
    extended XYZ is refused rather than read as its last frame)."""
    _only(len(frames), name, "frames")
    return AseAtomsAdaptor.get_structure(frames[0])


def _parse_text(text: str, name: str) -> Structure:
    """Parse CIF, POSCAR or extended XYZ text."""
    stripped = text.lstrip()
    errors = []
    fmts = ["cif", "poscar"] if "data_" in text or stripped.startswith("#") else ["poscar", "cif"]
    for fmt in fmts:
        try:
            return _pymatgen_text(text, fmt, name)
        except StructureRefused:
            raise
        except Exception as exc:
            errors.append(f"{fmt}: {exc}")
    try:  # extended XYZ and anything else ASE reads
        from ase.io import read as ase_read

        frames = ase_read(io.StringIO(text), format="extxyz", index=":")
    except Exception as exc:
        errors.append(f"extxyz: {exc}")
    else:
        return _ase_structure(frames, name)
    raise ValueError(f"{name}: could not parse structure text ({'; '.join(errors)})")


def _read_file(path: Path, name: str) -> Structure:
    if not path.is_file():
        raise ValueError(f"{name}: no such file")
    if path.stat().st_size == 0:
        raise ValueError(f"{name}: empty file")
    errors = []
    try:  # pymatgen's JSON/YAML: its markers checked before pymatgen decodes any
        structure = read_structure_file(path, name)
    except RefusedMarker as exc:
        raise StructureRefused(str(exc)) from None
    except Exception as exc:  # not a structure dict: perhaps ASE's JSON; never pymatgen's
        errors.append(f"pymatgen: {exc}")
    else:
        if structure is not None:
            return structure
        try:
            if ".cif" in path.name.lower():
                with zopen(path, "rt", encoding="utf-8", errors="replace") as handle:
                    return _pymatgen_text(handle.read(), "cif", name)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                structure = Structure.from_file(path)
            _refuse_guessed_elements(caught, name)
            return structure
        except StructureRefused:
            raise
        except Exception as exc:
            errors.append(f"pymatgen: {exc}")
    try:
        from ase.io import read as ase_read

        frames = ase_read(path, index=":")
    except Exception as exc:
        errors.append(f"ase: {exc}")
        raise ValueError(f"{name}: unparsable structure file ({'; '.join(errors)})") from None
    return _ase_structure(frames, name)


def to_structure(obj: StructureLike, name: str | None = None) -> tuple[Structure, str | None]:
    """Convert ``obj`` to a pymatgen ``Structure``; return it with its name (None: unnamed).

    Accepts a ``Structure``, an ASE ``Atoms``, a path (CIF, POSCAR/CONTCAR, extxyz, anything
    pymatgen or ASE reads) or CIF/POSCAR/extxyz text. Raises ``ValueError`` naming the input.
    """
    if isinstance(obj, Structure):
        return obj, name or id_property(obj)
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


def structure_arrays(
    structure: Structure, name: str | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate ``structure`` and return (lattice [3, 3], frac [N, 3], atomic numbers [N]).

    Raises ``ValueError`` (prefixed with the structure's name) for: no sites, disordered or
    non-element sites, NaN/inf lattice or coordinates, zero or negative cell volume
    (left-handed basis). Overlapping atoms are found from the neighbour list
    (:func:`check_min_distance`), which the graph needs anyway.
    """

    def fail(problem: str) -> ValueError:
        return ValueError(f"{structure_name(structure, name)}: {problem}")

    if len(structure) == 0:
        raise fail("empty structure (no sites)")
    try:
        species = structure.species  # raises AttributeError for a disordered site
    except AttributeError:
        idx = next(i for i, site in enumerate(structure) if not site.is_ordered)
        raise fail(
            f"site {idx} is disordered ({structure[idx].species_string}); matgnn needs fully "
            "ordered structures (order it first, e.g. with OrderDisorderedStructure)"
        ) from None
    # pymatgen gives a dummy species (``X``, ``Xe0+``-like placeholders) the hash of its symbol
    # as its Z: a different number in every process
    numbers = np.array(
        [0 if isinstance(sp, DummySpecies) else getattr(sp, "Z", 0) for sp in species],
        dtype=np.int64,
    )
    if (numbers <= 0).any():
        idx = int(np.flatnonzero(numbers <= 0)[0])
        raise fail(f"site {idx} has unknown element {structure[idx].species_string}")
    matrix = np.array(structure.lattice.matrix, dtype=np.float64)
    frac = np.array(structure.frac_coords, dtype=np.float64)
    problem = cell_problem(matrix, frac, right_handed=True)
    if problem:
        raise fail(problem)
    return matrix, frac, numbers


def cell_problem(matrix: np.ndarray, frac: np.ndarray, right_handed: bool) -> str | None:
    """What makes a cell no crystal, in words, or ``None``: NaN or inf in the lattice or the
    coordinates, zero volume (degenerate lattice vectors), and with ``right_handed`` a
    left-handed basis (negative volume; the graph builder's periodic images assume a
    right-handed one, while the iMatGen images hold only lengths and angles, which have no
    hand).

    Shapes:
        ``matrix [3, 3]`` (rows are lattice vectors), ``frac [N, 3]``.
    """
    if not np.all(np.isfinite(matrix)):
        return f"lattice contains NaN or inf: {np.asarray(matrix).tolist()}"
    if not np.all(np.isfinite(frac)):
        bad = np.flatnonzero(~np.isfinite(frac).all(axis=1)).tolist()
        return f"NaN or inf coordinates at sites {bad}"
    det = float(np.linalg.det(matrix))
    scale = float(np.prod(np.linalg.norm(matrix, axis=1)))
    if abs(det) <= 1e-6 * scale or abs(det) < 1e-6:
        return f"zero cell volume ({det:.3g} Å^3; degenerate lattice vectors)"
    if right_handed and det < 0:
        return (
            f"negative cell volume ({det:.3g} Å^3): the lattice basis is left-handed; "
            "swap two lattice vectors"
        )
    return None


def primitive_cell(structure: Structure, name: str | None, tolerance: float) -> Structure:
    """The Niggli-reduced primitive cell of ``structure`` (pymatgen ``get_primitive_structure``
    with a site tolerance of ``tolerance`` Å; positions are not symmetrised). Every supercell
    and every choice of unit cell of one crystal gives the same lattice and the same atoms.
    The structure is validated first, so bad input fails with :func:`structure_arrays`'s
    message rather than inside pymatgen's search."""
    structure_arrays(structure, name)
    try:
        primitive = structure.get_primitive_structure(tolerance=tolerance, use_site_props=False)
        reduced = primitive.get_reduced_structure()
    except Exception as exc:
        raise ValueError(
            f"{structure_name(structure, name)}: primitive-cell search failed ({exc})"
        ) from None
    if len(structure) % len(reduced):
        raise ValueError(
            f"{structure_name(structure, name)}: primitive-cell search gave {len(reduced)} "
            f"atoms, which does not divide the {len(structure)} of the cell"
        )
    return reduced


def check_min_distance(
    center: np.ndarray,
    neighbor: np.ndarray,
    distance: np.ndarray,
    numbers: np.ndarray,
    name: str,
    min_distance: float,
) -> None:
    """Raise if any neighbour pair (periodic images included) is closer than ``min_distance``."""
    close = np.flatnonzero(distance < min_distance)
    if close.size:
        k = close[np.argmin(distance[close])]
        i, j = int(center[k]), int(neighbor[k])
        what = "an image of itself" if i == j else f"atom {j} ({Element.from_Z(numbers[j])})"
        raise ValueError(
            f"{name}: overlapping atoms: atom {i} ({Element.from_Z(numbers[i])}) and {what} "
            f"are {distance[k]:.4f} Å apart (< min_distance {min_distance} Å)"
        )
