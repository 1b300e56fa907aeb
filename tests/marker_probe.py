"""A module that leaves a file behind when it is imported, and structure documents whose markers
name it: what a stranger's file could make monty import (tests of matgnn.graphs.structure_json;
the ``probe`` fixture of ``tests/conftest.py`` plants it)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from pymatgen.core import Lattice, Structure

PROBE = "matgnn_marker_probe"
PAYLOADS = {
    "class": {"@module": PROBE, "@class": "X"},
    "callable": {"@module": PROBE, "@callable": "X"},
    "nested in a list": [1, {"deeper": {"@module": PROBE, "@class": "X"}}],
}


def plant(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Put the probe module on the path; return the flag file it writes when imported."""
    folder = tmp_path / "planted"
    folder.mkdir()
    flag = tmp_path / "IMPORTED"
    (folder / f"{PROBE}.py").write_text(
        f"open({str(flag)!r}, 'w').write('imported')\n"
        "class X:\n"
        "    @classmethod\n"
        "    def from_dict(cls, d):\n"
        "        return cls()\n"
    )
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.delitem(sys.modules, PROBE, raising=False)
    return flag


def nacl() -> Structure:
    return Structure(Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])


def crafted(payload) -> dict:
    """NaCl's pymatgen dict with ``payload`` in its second site's properties."""
    document = nacl().as_dict()
    document["sites"][1]["properties"]["note"] = payload
    return document
