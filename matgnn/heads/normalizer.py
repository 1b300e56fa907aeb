"""Target normalisation stored as buffers in the model (fitted on the training split only)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from matgnn.nn.embedding import MAX_Z
from matgnn.nn.pooling import pool


def composition_counts(graphs: Sequence) -> Tensor:
    """``[M, 119]`` atom counts per element of each graph: the input of
    :meth:`TargetNormalizer.fit`."""
    return torch.stack([torch.bincount(g.atomic_numbers, minlength=MAX_Z + 1) for g in graphs])


class TargetNormalizer(nn.Module):
    """``y = raw * std + mean + reference(composition)``, with every statistic a buffer.

    Intensive targets (mean readout) are normalised per crystal and the element reference
    enters as the composition-weighted mean of per-element values; extensive targets (sum
    readout) are normalised per atom and the reference enters as a sum, as in schnetpack's
    atomwise scaling. An untrained normaliser is the identity.

    Args:
        num_targets: number of target columns T.
        extensive: per-atom statistics (sum readout) instead of per-crystal ones.

    Shapes:
        buffers ``mean [T]``, ``std [T]``, ``element_reference [119, T]``.
    """

    def __init__(self, num_targets: int = 1, extensive: bool = False) -> None:
        super().__init__()
        self.extensive = extensive
        self.register_buffer("mean", torch.zeros(num_targets))
        self.register_buffer("std", torch.ones(num_targets))
        self.register_buffer("element_reference", torch.zeros(MAX_Z + 1, num_targets))

    def reference(self, atomic_numbers: Tensor, batch: Tensor, num_crystals: int) -> Tensor:
        """Per-crystal reference term [B, T]."""
        per_atom = self.element_reference[atomic_numbers]
        return pool(per_atom, batch, num_crystals, "sum" if self.extensive else "mean")

    def denormalize_crystals(
        self, raw: Tensor, atomic_numbers: Tensor, batch: Tensor, num_crystals: int
    ) -> Tensor:
        """Intensive: per-crystal raw output [B, T] -> physical units."""
        return raw * self.std + self.mean + self.reference(atomic_numbers, batch, num_crystals)

    def denormalize_atoms(self, raw: Tensor, atomic_numbers: Tensor) -> Tensor:
        """Extensive: per-atom raw output [N, T] -> per-atom contributions in physical units."""
        return raw * self.std + self.mean + self.element_reference[atomic_numbers]

    @torch.no_grad()
    def fit(self, targets: Tensor, compositions: Tensor, element_reference: bool = False) -> None:
        """Fit the buffers on training targets.

        Args:
            targets: ``[M, T]`` (or ``[M]``) training targets; must be finite.
            compositions: ``[M, 119]`` atom counts per element of each training crystal.
            element_reference: first fit per-element values by least squares on the
                composition (fractions for intensive, counts for extensive targets), then
                standardise the residual.
        """
        targets = targets.reshape(targets.size(0), -1).to(self.mean.dtype)
        counts = compositions.to(self.mean.dtype)
        if not torch.isfinite(targets).all():
            raise ValueError("TargetNormalizer.fit: targets contain NaN or inf")
        n_atoms = counts.sum(dim=1, keepdim=True)
        weights = counts if self.extensive else counts / n_atoms
        reference = torch.zeros_like(self.element_reference)
        if element_reference:
            present = counts.sum(dim=0) > 0
            solution = torch.linalg.lstsq(weights[:, present].double(), targets.double()).solution
            reference[present] = solution.to(reference.dtype)
        residual = targets - weights @ reference
        if self.extensive:
            residual = residual / n_atoms
        std = (
            residual.std(dim=0, unbiased=False)
            if residual.size(0) > 1
            else torch.ones_like(self.std)
        )
        self.element_reference.copy_(reference)
        self.mean.copy_(residual.mean(dim=0))
        self.std.copy_(torch.where(std > 0, std, torch.ones_like(std)))
