"""``Records``: what every data source returns."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from matgnn.graphs.structures import StructureLike


@dataclass
class Records:
    """Parallel lists of ids, structures (anything ``build_graph`` reads) and targets.

    Args:
        ids: one unique id per row (used in error messages, caches and prediction files).
        structures: pymatgen ``Structure``, ASE ``Atoms``, CIF/POSCAR text or a path.
        targets: ``[M]`` or ``[M, T]`` float (regression) or int (classification) array.
        name: dataset name (cache file name).
    """

    ids: Sequence[str]
    structures: Sequence[StructureLike]
    targets: np.ndarray
    name: str

    def __post_init__(self) -> None:
        if not (len(self.ids) == len(self.structures) == len(self.targets)):
            raise ValueError(
                f"{self.name}: {len(self.ids)} ids, {len(self.structures)} structures and "
                f"{len(self.targets)} targets"
            )
        if len(set(self.ids)) != len(self.ids):
            raise ValueError(f"{self.name}: ids are not unique")
