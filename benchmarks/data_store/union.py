"""Every structure source of ``../shared/data`` that holds MP-like crystals, as one data set of
about 136,000 rows, for the data-store measurement beyond any single copy (issue 29's 130k row).

The parts and their rows (the local copies of ``../shared/data``, see its README):

* ``matbench_mp_e_form``: the partial Matbench copy, 33,370 rows;
* ``matbench_mp_gap``: the partial Matbench copy, 31,326 rows;
* ``mp2018``: the MP 2018 set (``mp36k``), 36,737 rows;
* ``matbench_perovskites``: the partial Matbench copy (Castelli's cubic perovskites);
* ``perov_5``: every CDVAE perov_5 structure, 18,928 rows (Castelli's perovskites again, as
  CDVAE relaxed them).

The MP parts share most of their structures (one MP structure pool of 37,619 mp-ids lies
behind the three), and the two perovskite parts share their compositions, so a crystal can be
two or three rows: the set measures how memory and speed scale with rows, not a data set to
learn from. Each row keeps its part's id, prefixed
with the part (``mp2018:mp-1234``).

The target is computed from each structure: ``volume_per_atom`` (Å^3 per atom), the same
quantity for every part, so no part's DFT label is mixed with another's and nothing is
invented; it is a measurement's target, not a result.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from matgnn.data import Records
from matgnn.graphs.structures import to_structure

PARTS = ("matbench_mp_e_form", "matbench_mp_gap", "mp2018", "matbench_perovskites", "perov_5")


def part_records(part: str, data_dir: Path, limit: int | None) -> Records:
    """One part's rows (ids and structures; its own targets are not used)."""
    if part.startswith("matbench_"):
        from matgnn.data.sources.matbench import matbench

        return matbench(part, data_dir=data_dir, limit=limit)
    if part == "mp2018":
        from matgnn.data.sources.mp import mp2018

        return mp2018(data_dir, limit=limit)
    if part == "perov_5":
        from matgnn.data.sources.cdvae import perov5_structures

        return perov5_structures(data_dir, limit=limit)
    raise ValueError(f"unknown part {part!r}; the parts are {PARTS}")


def structure_union(
    data_dir: str | Path, parts: Sequence[str] = PARTS, limit: int | None = None
) -> Records:
    """The rows of every part in ``parts`` (the first ``limit`` of each, when given), with
    the target ``volume_per_atom`` computed from each structure."""
    ids: list[str] = []
    structures = []
    volumes = []
    for part in parts:
        records = part_records(part, Path(data_dir), limit)
        for sid, raw in zip(records.ids, records.structures, strict=True):
            structure, _ = to_structure(raw, name=f"{part}:{sid}")
            ids.append(f"{part}:{sid}")
            structures.append(structure)
            volumes.append(structure.volume / len(structure))
    name = "union-" + "+".join(parts) + (f"-first{limit}" if limit else "")
    return Records(ids, structures, {"volume_per_atom": np.array(volumes)}, name=name)
