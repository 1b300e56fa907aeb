"""Crystals to the generator's codes and back, through the two trained autoencoders.

A crystal's code is ``[channels + 1, length]``: one basis code per element channel (the basis
autoencoder's ``length``-long vector of that element's image) and the cell code (the cell
autoencoder's vector) zero-padded to ``length`` in the last row
(:meth:`~matgnn.design.networks.MaterialsGenerator.pack`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from pymatgen.core import Structure

from matgnn.design.images import (
    ImageSpec,
    RepresentationError,
    basis_images,
    cell_image,
    standard_lattice,
    structure_from_images,
)
from matgnn.design.networks import ImageAutoencoder


@torch.no_grad()
def encode_structures(
    structures: Sequence[Structure],
    names: Sequence[str],
    cell_network: ImageAutoencoder,
    basis_network: ImageAutoencoder,
    spec: ImageSpec = ImageSpec(),
    batch_size: int = 32,
) -> torch.Tensor:
    """``[N, channels + 1, basis code]`` codes of the structures (eval mode).

    Shapes:
        N structures -> ``[N, len(spec.elements) + 1, basis_network.code]``.
    """
    cell_network.eval()
    basis_network.eval()
    length, cell_code = basis_network.code, cell_network.code
    if cell_code > length:
        raise ValueError(f"cell code ({cell_code}) longer than the basis code ({length})")
    out = torch.zeros(len(structures), len(spec.elements) + 1, length)
    for start in range(0, len(structures), batch_size):
        chunk = range(start, min(start + batch_size, len(structures)))
        cells = np.stack([cell_image(standard_lattice(structures[i].lattice), spec) for i in chunk])
        basis = np.stack([basis_images(structures[i], spec, names[i]) for i in chunk])
        n, channels = basis.shape[:2]
        basis_codes = basis_network.encode(torch.from_numpy(basis.reshape(-1, 1, *basis.shape[2:])))
        out[start : start + n, :channels] = basis_codes.reshape(n, channels, length)
        out[start : start + n, -1, :cell_code] = cell_network.encode(
            torch.from_numpy(cells)[:, None]
        )
    return out


@torch.no_grad()
def decode_codes(
    codes: torch.Tensor,
    cell_network: ImageAutoencoder,
    basis_network: ImageAutoencoder,
    spec: ImageSpec = ImageSpec(),
    names: Sequence[str] | None = None,
) -> list[Structure | str]:
    """Each code's crystal, or the reason (a string) why its images hold none.

    Shapes:
        ``[N, channels + 1, length]`` -> N structures or reasons.
    """
    cell_network.eval()
    basis_network.eval()
    n, rows, length = codes.shape
    channels = rows - 1
    names = names or [f"code {k}" for k in range(n)]
    cells = cell_network.decode(codes[:, -1, : cell_network.code])[:, 0].numpy()
    basis = basis_network.decode(codes[:, :channels].reshape(-1, length))[:, 0].numpy()
    basis = basis.reshape(n, channels, *basis.shape[1:])
    out: list[Structure | str] = []
    for k in range(n):
        try:
            out.append(structure_from_images(cells[k], basis[k], spec, names[k]))
        except RepresentationError as exc:
            out.append(str(exc))
    return out
