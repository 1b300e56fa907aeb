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
from matgnn.design.networks import ImageAutoencoder, pack_codes, unpack_codes


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
    parts = []
    for start in range(0, len(structures), batch_size):
        chunk = range(start, min(start + batch_size, len(structures)))
        cells = np.stack([cell_image(standard_lattice(structures[i].lattice), spec) for i in chunk])
        basis = np.stack([basis_images(structures[i], spec, names[i]) for i in chunk])
        n, channels = basis.shape[:2]
        flat = torch.from_numpy(basis.reshape(-1, 1, *basis.shape[2:]))
        basis_codes = basis_network.encode(flat).reshape(n, channels, basis_network.code)
        cell_codes = cell_network.encode(torch.from_numpy(cells)[:, None])
        parts.append(pack_codes(cell_codes, basis_codes))
    if not parts:
        return torch.zeros(0, len(spec.elements) + 1, basis_network.code)
    return torch.cat(parts)


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
    names = names or [f"code {k}" for k in range(n)]
    cell_codes, basis_codes = unpack_codes(codes, cell_network.code)
    cells = cell_network.decode(cell_codes)[:, 0].numpy()
    basis = basis_network.decode(basis_codes.reshape(-1, length))[:, 0].numpy()
    basis = basis.reshape(n, rows - 1, *basis.shape[1:])
    out: list[Structure | str] = []
    for k in range(n):
        try:
            out.append(structure_from_images(cells[k], basis[k], spec, names[k]))
        except RepresentationError as exc:
            out.append(str(exc))
    return out
