"""pymatgen's JSON (and YAML) structures read as data, never as code.

pymatgen serialises a ``Structure`` as a dict with ``@module``/``@class`` markers, and reading
one back (``Structure.from_dict``, ``Structure.from_file`` on ``.json``/``.yaml``, matminer's
``load_dataframe_from_json``) hands parts of it to monty's ``MontyDecoder``, which imports
whatever module a marker names and builds whatever class it names (a site's ``properties``
pass through it; matminer decodes the whole document). A file from a stranger could so import
any module on the path or build any dataclass. Here every marker is checked before anything
is decoded: only pymatgen's own structure, lattice, site, species and composition classes, and
monty's plain numpy array, may be named; anything else is refused with the file and the place
in it.

:func:`check_markers` is the check; :func:`structure_from_dict` builds a ``Structure`` from a
checked dict, :func:`read_json_document` parses a (compressed) JSON file and checks it, and
:func:`decode_document` decodes a checked document as matminer does.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from monty.io import zopen
from pymatgen.core import Structure

#: the (``@module``, ``@class``) markers a structure file may hold: what pymatgen writes for a
#: structure and its parts, and monty's numpy array (decoded by monty without an import)
ALLOWED_MARKERS = frozenset(
    {
        ("pymatgen.core.structure", "Structure"),
        ("pymatgen.core.structure", "IStructure"),
        ("pymatgen.core.lattice", "Lattice"),
        ("pymatgen.core.sites", "PeriodicSite"),
        ("pymatgen.core.sites", "Site"),
        ("pymatgen.core.periodic_table", "Element"),
        ("pymatgen.core.periodic_table", "Species"),
        ("pymatgen.core.periodic_table", "DummySpecies"),
        ("pymatgen.core.composition", "Composition"),
        ("numpy", "array"),
    }
)
#: file endings pymatgen's ``Structure.from_file`` reads as JSON or YAML (compressed or not)
JSON_SUFFIXES = (".json", ".mson")
YAML_SUFFIXES = (".yaml", ".yml")


class RefusedMarker(ValueError):
    """A document that names a Python object matgnn does not read."""


#: the most values a YAML structure file may hold (a structure has a few per site): YAML's
#: aliases can make a small file a huge, or cyclic, document
YAML_MAX_VALUES = 1_000_000


def _where(holder: tuple | None) -> str:
    """The JSON path of a place from its chain of ``(parent, key)`` links."""
    keys = []
    while holder is not None:
        holder, key = holder
        keys.append(str(key))
    return "/" + "/".join(reversed(keys)) if keys else "the document"


def check_markers(value: Any, source: str, max_values: int | None = None) -> None:
    """Refuse ``value`` (a parsed JSON/YAML document) if any dict in it names a Python object
    other than :data:`ALLOWED_MARKERS`: an ``@module`` with another ``@class``, or any
    ``@callable``. ``source`` names the file or entry in the error; ``max_values`` bounds the
    containers and values visited (for YAML, whose aliases can repeat or nest a part without
    end), None: no bound.

    Raises:
        RefusedMarker: ``"<source>: <where> names the Python object <module>.<name> ..."``, or
            a document past ``max_values``.
    """
    if not isinstance(value, dict | list):
        return  # a number or a string names nothing
    # containers only, each with a (parent link, key) chain: the path is built on refusal
    stack: list[tuple[Any, tuple | None]] = [(value, None)]
    visited = 0
    while stack:
        item, holder = stack.pop()
        if max_values is not None:
            visited += len(item) + 1
            if visited > max_values:
                raise RefusedMarker(
                    f"{source}: more than {max_values:,} values (repeated or nested aliases?)"
                )
        if isinstance(item, dict):
            if "@callable" in item or "@module" in item:
                marker = (item.get("@module"), item.get("@class"))
                plain = all(isinstance(m, str) for m in marker)  # (a list is no hashable name)
                if "@callable" in item or not plain or marker not in ALLOWED_MARKERS:
                    name = item.get("@callable", item.get("@class"))
                    raise RefusedMarker(
                        f"{source}: {_where(holder)} names the Python object "
                        f"{item.get('@module')}.{name}; structure files are read as data, and "
                        "only pymatgen's structure, lattice, site, species and composition "
                        "markers are accepted"
                    )
            children = item.items()
        else:
            children = enumerate(item)
        stack.extend((v, (holder, k)) for k, v in children if isinstance(v, dict | list))


def structure_from_dict(value: Any, source: str, max_values: int | None = None) -> Structure:
    """The ``Structure`` of a pymatgen structure dict, after :func:`check_markers`.

    Raises:
        ValueError: naming ``source``, for a refused marker or a dict that is not a structure.
    """
    if not isinstance(value, dict):
        raise ValueError(f"{source}: not a pymatgen structure dict (a {type(value).__name__})")
    check_markers(value, source, max_values)
    try:
        return Structure.from_dict(value)
    except Exception as exc:
        raise ValueError(f"{source}: not a pymatgen structure dict ({exc!r})") from None


def read_json_document(path: Path | str) -> Any:
    """The parsed JSON of ``path`` (plain or compressed: ``.gz``, ``.bz2``, ...), checked by
    :func:`check_markers` and not decoded."""
    try:
        with zopen(path, "rt", encoding="utf-8") as handle:
            document = json.load(handle)
    except (OSError, EOFError, UnicodeDecodeError, ValueError) as exc:  # truncated, not JSON
        raise ValueError(f"{path}: not readable as JSON ({exc})") from None
    check_markers(document, str(path))
    return document


def read_structure_file(path: Path, source: str | None = None) -> Structure | None:
    """The structure of a JSON or YAML structure file (the files ``Structure.from_file`` reads
    as a structure dict, decoding parts through ``MontyDecoder``), checked first; None for any
    other kind of file. ``source`` names it in errors (default: the path)."""
    source = source or str(path)
    name = path.name.lower()
    if any(s in name for s in JSON_SUFFIXES):
        with zopen(path, "rt", encoding="utf-8") as handle:
            document = json.load(handle)
        return structure_from_dict(document, source)
    if any(s in name for s in YAML_SUFFIXES):
        from ruamel.yaml import YAML

        with zopen(path, "rt", encoding="utf-8") as handle:
            document = YAML(typ="safe").load(handle)
        return structure_from_dict(document, source, YAML_MAX_VALUES)
    return None


def decode_document(document: Any) -> Any:
    """``document`` with its pymatgen markers decoded into objects, as matminer's
    ``load_dataframe_from_json`` decodes them; call it on a document that
    :func:`read_json_document` has checked (monty then imports pymatgen and numpy only)."""
    from monty.json import MontyDecoder

    return MontyDecoder().process_decoded(document)
