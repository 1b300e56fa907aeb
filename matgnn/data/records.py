"""``Records``: what every data source returns."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from matgnn.graphs.structures import StructureLike


@dataclass
class Records:
    """Parallel lists of ids, structures (anything ``build_graph`` reads) and named targets.

    Args:
        ids: one unique id per row (used in error messages, caches and prediction files).
        structures: pymatgen ``Structure``, ASE ``Atoms``, CIF/POSCAR text or a path.
        targets: ``{column name: values}``, each with one entry per row: an ``[M]`` or
            ``[M, ...]`` array, or a list of per-row arrays (per-atom targets, ragged). A
            task's outputs name the column they are trained on (``Output.target``).
        name: dataset name (cache file name).
        split: the source's own split, ``{"train": ids, "test": ids}`` with an optional
            ``"val"`` (official benchmark folds, published split files); ``None`` if the
            source defines none.
        dropped: ``{id: reason}`` of the rows the source itself left out (a tensor not in its
            structure's frame); reported with the data module's own rejections.
    """

    ids: Sequence[str]
    structures: Sequence[StructureLike]
    targets: Mapping[str, np.ndarray | Sequence]
    name: str
    split: Mapping[str, Sequence[str]] | None = None
    dropped: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.targets, Mapping):
            raise TypeError(
                f"{self.name}: targets must be a mapping {{column name: values}}, got "
                f"{type(self.targets).__name__}"
            )
        if len(self.ids) != len(self.structures):
            raise ValueError(f"{self.name}: {len(self.ids)} ids, {len(self.structures)} structures")
        for column, values in self.targets.items():
            if len(values) != len(self.ids):
                raise ValueError(
                    f"{self.name}: target {column!r} has {len(values)} values for "
                    f"{len(self.ids)} rows"
                )
        if len(set(self.ids)) != len(self.ids):
            repeated = sorted(sid for sid, count in Counter(self.ids).items() if count > 1)
            raise ValueError(
                f"{self.name}: ids are not unique: {len(repeated)} repeated "
                f"({', '.join(map(str, repeated[:5]))}{', ...' if len(repeated) > 5 else ''})"
            )
        if self.split is not None:
            known = set(self.ids)
            for subset, members in self.split.items():
                missing = [sid for sid in members if sid not in known]
                if missing:
                    raise ValueError(
                        f"{self.name}: split {subset!r} names {len(missing)} ids that are not "
                        f"in the records, e.g. {missing[0]!r}"
                    )
