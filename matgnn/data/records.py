"""``Records``: what every data source returns."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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
        split: the source's own split, ``{"train": ids, "test": ids}`` with an optional
            ``"val"`` (official benchmark folds, published split files); ``None`` if the
            source defines none.
    """

    ids: Sequence[str]
    structures: Sequence[StructureLike]
    targets: np.ndarray
    name: str
    split: Mapping[str, Sequence[str]] | None = None

    def __post_init__(self) -> None:
        if not (len(self.ids) == len(self.structures) == len(self.targets)):
            raise ValueError(
                f"{self.name}: {len(self.ids)} ids, {len(self.structures)} structures and "
                f"{len(self.targets)} targets"
            )
        if len(set(self.ids)) != len(self.ids):
            raise ValueError(f"{self.name}: ids are not unique")
        if self.split is not None:
            known = set(self.ids)
            for subset, members in self.split.items():
                missing = [sid for sid in members if sid not in known]
                if missing:
                    raise ValueError(
                        f"{self.name}: split {subset!r} names {len(missing)} ids that are not "
                        f"in the records, e.g. {missing[0]!r}"
                    )
