"""Atom input features: the CGCNN element-descriptor table or a learned embedding."""

from __future__ import annotations

import json
from importlib import resources

import torch
from torch import Tensor, nn

CGCNN_FEATURES = 92
MAX_Z = 118


def cgcnn_feature_table() -> Tensor:
    """[101, 92] table: row Z holds the CGCNN descriptor of element Z (row 0 is unused)."""
    text = resources.files("matgnn.resources").joinpath("cgcnn_atom_init.json").read_text()
    raw = json.loads(text)
    table = torch.zeros(max(int(z) for z in raw) + 1, CGCNN_FEATURES)
    for z, values in raw.items():
        table[int(z)] = torch.tensor(values, dtype=table.dtype)
    return table


class CGCNNAtomFeatures(nn.Module):
    """Fixed 92-dimensional CGCNN descriptors (Xie & Grossman 2018), Z = 1..100.

    Shapes:
        atomic_numbers ``[N]`` -> ``[N, 92]``.
    """

    out_features = CGCNN_FEATURES

    def __init__(self) -> None:
        super().__init__()
        table = cgcnn_feature_table()
        self.register_buffer("table", table)
        self.register_buffer("known", table.abs().sum(dim=1) > 0)

    def forward(self, atomic_numbers: Tensor) -> Tensor:
        z_max = self.table.size(0) - 1
        if atomic_numbers.numel() and (
            int(atomic_numbers.max()) > z_max or not bool(self.known[atomic_numbers].all())
        ):
            bad = sorted({int(z) for z in atomic_numbers if z > z_max or not self.known[z]})
            raise ValueError(
                f"the CGCNN atom-feature table covers Z = 1..{z_max}; got Z = {bad}. "
                "Use atom_features='learned' for these elements."
            )
        return self.table[atomic_numbers]


class LearnedAtomEmbedding(nn.Module):
    """A trainable vector per element (Z = 1..118).

    Shapes:
        atomic_numbers ``[N]`` -> ``[N, out_features]``.
    """

    def __init__(self, out_features: int) -> None:
        super().__init__()
        self.out_features = out_features
        self.embedding = nn.Embedding(MAX_Z + 1, out_features)

    def forward(self, atomic_numbers: Tensor) -> Tensor:
        return self.embedding(atomic_numbers)


def atom_input(kind: str, learned_features: int) -> CGCNNAtomFeatures | LearnedAtomEmbedding:
    """``"cgcnn"``: the fixed 92-dim table; ``"learned"``: ``nn.Embedding`` of the given width."""
    if kind == "cgcnn":
        return CGCNNAtomFeatures()
    if kind == "learned":
        return LearnedAtomEmbedding(learned_features)
    raise ValueError(f"atom_features must be 'cgcnn' or 'learned', got {kind!r}")
