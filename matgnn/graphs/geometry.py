"""Differentiable geometry of a (batched) ``CrystalGraph``.

Models call these so that distances and angles are functions of ``pos``/``frac_coords`` and
``lattice``: forces and stress by autograd stay possible.
"""

from __future__ import annotations

import torch
from torch import Tensor


def edge_crystal(edge_index: Tensor, batch: Tensor | None) -> Tensor:
    """Index of the crystal each edge belongs to."""
    if batch is None:
        return torch.zeros(edge_index.size(1), dtype=torch.long, device=edge_index.device)
    return batch.index_select(0, edge_index[1])


def cartesian_positions(frac_coords: Tensor, lattice: Tensor, batch: Tensor | None) -> Tensor:
    """``frac_coords @ lattice`` per crystal. Shapes: [N, 3], [B, 3, 3], [N] -> [N, 3]."""
    cells = (
        lattice.index_select(0, batch)
        if batch is not None
        else lattice[0].expand(frac_coords.size(0), 3, 3)
    )
    return torch.einsum("ni,nij->nj", frac_coords, cells)


def edge_vectors(
    pos: Tensor, lattice: Tensor, edge_index: Tensor, cell_offset: Tensor, batch: Tensor | None
) -> Tensor:
    """``r_e = pos[src] + cell_offset_e @ lattice - pos[dst]`` (from receiver to sender image).

    Shapes: pos [N, 3], lattice [B, 3, 3], edge_index [2, E], cell_offset [E, 3] -> [E, 3].
    """
    src, dst = edge_index
    cells = lattice.index_select(0, edge_crystal(edge_index, batch))
    shift = torch.einsum("ei,eij->ej", cell_offset.to(pos.dtype), cells)
    return pos.index_select(0, src) + shift - pos.index_select(0, dst)


def bond_cosines(edge_vec: Tensor, lg_edge_index: Tensor, eps: float = 1e-12) -> Tensor:
    """Cosine of the angle u-v-w for each line-graph edge ``(a=(u->v), b=(v->w))``.

    With ``r_e`` pointing from ``dst`` to ``src``, ``r_a`` points v -> u and ``-r_b`` points
    v -> w. Shapes: edge_vec [E, 3], lg_edge_index [2, T] -> [T].
    """
    r_a = edge_vec.index_select(0, lg_edge_index[0])
    r_b = -edge_vec.index_select(0, lg_edge_index[1])
    cos = (r_a * r_b).sum(-1) / (r_a.norm(dim=-1) * r_b.norm(dim=-1)).clamp_min(eps)
    return cos.clamp(-1.0, 1.0)
