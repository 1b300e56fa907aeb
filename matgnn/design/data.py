"""The V-O data set as images for iMatGen's autoencoders, made on the fly.

Memory: the paper's 10,981 structures as float32 images (2 basis images of 64^3 and one cell
image of 32^3 each) are about 23 GB; here an image is made when a batch asks for it
(:func:`matgnn.design.images.encode`, a few milliseconds per structure), so a run holds only
the structures and one batch of images.

Splits are by the MP binary a structure comes from (:func:`split_by_source`): both V/O
assignments of a binary fall on the same side, so a test structure's mirror image is never
trained on. The known MP V-O structures can be held out of every split (the rediscovery test).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from matgnn.design.images import ImageSpec, basis_image, cell_image, standard_lattice
from matgnn.design.vo_dataset import VODataset

#: the stages an image set serves: the cell autoencoder or the basis autoencoder
KINDS = ("cell", "basis")


def _unit_interval(key: str, seed: int) -> float:
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


@dataclass(frozen=True)
class Split:
    """Row indices of a :class:`~matgnn.design.vo_dataset.VODataset`."""

    train: list[int]
    val: list[int]
    test: list[int]
    held_out: list[int]


def split_by_source(
    data: VODataset,
    val: float = 0.1,
    test: float = 0.1,
    seed: int = 0,
    hold_out_known: bool = False,
) -> Split:
    """Train / validation / test rows, grouped by MP source (a hash of ``seed`` and the MP id
    decides, so the split does not depend on the rows' order or on the other rows);
    ``hold_out_known``: the known V-O structures go to ``held_out`` only."""
    if not (0 <= val and 0 <= test and val + test < 1):
        raise ValueError(f"split fractions must be >= 0 and sum below 1, got {val} and {test}")
    parts: dict[str, list[int]] = {"train": [], "val": [], "test": [], "held_out": []}
    for row, (source, known) in enumerate(zip(data.sources, data.known, strict=True)):
        if hold_out_known and known:
            parts["held_out"].append(row)
            continue
        u = _unit_interval(source, seed)
        parts["test" if u < test else "val" if u < test + val else "train"].append(row)
    return Split(**parts)


class ImageSet(Dataset):
    """One autoencoder's images of some rows of a V-O data set.

    ``kind="cell"``: one cell image per structure (kept in memory once made);
    ``kind="basis"``: one image per (structure,
    element channel), every channel of ``spec.elements`` (a V-O structure has both).

    Args:
        data: the structures.
        rows: which of them.
        kind: ``"cell"`` or ``"basis"``.
        spec: the image geometry.

    Shapes:
        item -> ``[1, m, m, m]`` (cell) or ``[1, n, n, n]`` (basis), float32.
    """

    def __init__(
        self,
        data: VODataset,
        rows: Sequence[int],
        kind: str,
        spec: ImageSpec = ImageSpec(),
    ) -> None:
        if kind not in KINDS:
            raise ValueError(f"image set kind must be one of {KINDS}, got {kind!r}")
        self.data, self.rows, self.kind, self.spec = data, list(rows), kind, spec
        channels = len(spec.elements) if kind == "basis" else 1
        self.items = [(row, channel) for row in self.rows for channel in range(channels)]
        # cell images are kept once made (128 KB each at m = 32: about 1 GB for the V-O
        # training set), as making one costs about as much as a training step on it; basis
        # images (1 MB each) are remade every time. Each loader worker keeps its own copy,
        # for as long as it lives (with num_workers > 0 and no persistent workers, one epoch)
        self._cells: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> torch.Tensor:
        row, channel = self.items[index]
        structure, name = self.data.structures[row], self.data.ids[row]
        if self.kind == "cell":
            if row not in self._cells:
                self._cells[row] = cell_image(standard_lattice(structure.lattice), self.spec)
            image = self._cells[row]
        else:
            image = basis_image(structure, channel, self.spec, name)
        return torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))[None]
