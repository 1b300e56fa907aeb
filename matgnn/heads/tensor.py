"""Equivariant Cartesian tensor head (dielectric tensor, elastic tensor) on an e3nn backbone."""

from __future__ import annotations

import torch
from e3nn import io, o3
from torch import Tensor

from matgnn.checkpoints.registry import register
from matgnn.models.interfaces import FeatureSpec, Head, NodeFeatures
from matgnn.nn.gated_linear import GatedLinear
from matgnn.nn.pooling import pool


@register("tensor_head")
class TensorHead(Head):
    """Mean-pool the equivariant features, map them linearly to the irreps of a Cartesian
    tensor, and return the tensor in the structure's Cartesian frame.

    The tensor's symmetries are an e3nn ``CartesianTensor`` index formula, which fixes its
    irreps: ``"ij=ji"`` a symmetric rank-2 tensor (``0e + 2e``: dielectric, polarisability),
    ``"ij"`` a general one (``0e + 1e + 2e``), ``"ijkl=jikl=klij"`` a rank-4 tensor with the
    minor and major symmetries of the elastic tensor (``2x0e + 2x2e + 4e``, 21 components).
    ``e3nn.o3.Linear`` only mixes equal irreps and pooling is linear, so a rotation R of the
    structure rotates the output (``R T R^T``; ``T'_ijkl = R_ia R_jb R_kc R_ld T_abcd``), and
    the output has the formula's symmetries exactly.

    Update rule::

        T = Q(scale * Linear(mean_i g_i) + m)                    g_i = h_i (the published)
        g_i = GatedLinear([s_i, h_i])                            (hidden irreps given)
        g_i -> [g_i, TensorSquare(g_i)]                          (square irreps given)

    with ``Q`` the change of basis from irreps to Cartesian components (computed once, in
    float64), ``m`` the mean ``0e`` (isotropic) irreps of the training tensors, whose Cartesian
    form :attr:`isotropic_mean` is ``eps I`` for a dielectric and ``lambda d_ij d_kl + mu (d_ik
    d_jl + d_il d_jk)`` for an elastic tensor, and ``scale`` the RMS of the training tensors'
    components around it. De-normalising in irreps space keeps equivariance exact: a Cartesian
    isotropic tensor rounded to float32 component by component is not quite isotropic.

    Args:
        features: what the backbone emits; must carry irreps (an equivariant backbone) with
            every irrep of the formula (else a clear error: add them to
            ``model.backbone.irreps_out``).
        formula: e3nn ``CartesianTensor`` index formula.
        hidden: irreps of one gated equivariant layer (:class:`~matgnn.nn.gated_linear.
            GatedLinear`) on each atom's invariant features ``s_i`` and irreps ``h_i`` before
            the linear map, e.g. ``"128x0e + 32x2e"`` (a frozen backbone's features then meet
            a nonlinearity); ``None`` (default): the linear map of the pooled irreps alone.
        square: irreps made from each atom's irreps ``g_i`` by a weighted tensor square
            (e3nn ``o3.TensorSquare``: every symmetric product ``g_i ⊗ g_i`` that reaches them,
            mixed by learned weights) and appended to ``g_i``, e.g. ``"16x4e"``: the way
            features that stop at l = 2 (SevenNet-0's) reach an elastic tensor's ``4e``
            (``2e ⊗ 2e ⊃ 4e``). Equivariant (a tensor product of equivariant features) and,
            unlike the linear map, second order in them; ``None`` (default): none.

    Shapes:
        NodeFeatures -> ``[B, 3, 3]`` (rank 2) or ``[B, 3, 3, 3, 3]`` (rank 4).
    """

    def __init__(
        self,
        features: FeatureSpec,
        formula: str = "ij=ji",
        hidden: str | None = None,
        square: str | None = None,
    ) -> None:
        super().__init__()
        if features.irreps is None:
            raise ValueError(
                f"{type(self).__name__} needs an equivariant backbone (features with irreps), "
                "such as model=e3nn, or model=sevennet with model.backbone.equivariant_blocks; "
                "invariant backbones only give scalars"
            )
        self.formula = formula
        self.cartesian = io.CartesianTensor(formula)
        irreps_in = o3.Irreps(features.irreps)
        self.hidden: GatedLinear | None = None
        if hidden is not None:
            scalars = o3.Irreps(f"{features.scalar_features}x0e")
            self.hidden = GatedLinear(scalars + irreps_in, hidden)
            irreps_in = self.hidden.irreps_out
        self.square: o3.TensorSquare | None = None
        if square is not None:
            self.square = squared(irreps_in, square, type(self).__name__)
            irreps_in = irreps_in + self.square.irreps_out
        missing = o3.Irreps([(1, ir) for ir in missing_irreps(irreps_in, str(self.cartesian))])
        if missing:
            raise ValueError(
                f"{type(self).__name__}: a tensor of formula {formula!r} has irreps "
                f"{self.cartesian}, but "
                + _without(irreps_in, missing, features.irreps, hidden is not None, square)
            )
        self.linear = o3.Linear(irreps_in, self.cartesian)
        # the change of basis, computed once in float64 (float32 is off by 2e-8, enough to
        # break rotation exactness at 1e-7); a cache per device and dtype, not state
        previous = torch.get_default_dtype()
        torch.set_default_dtype(torch.float64)
        try:
            self._basis64 = self.cartesian.reduced_tensor_products().change_of_basis
        finally:
            torch.set_default_dtype(previous)
        self._bases: dict[tuple[torch.device, torch.dtype], Tensor] = {}
        self.register_buffer("scale", torch.ones(()))
        self.register_buffer("mean_irreps", torch.zeros(self._basis64.shape[0]))

    @property
    def isotropic_mean(self) -> Tensor:
        """The Cartesian tensor added to every prediction (the mean isotropic part of the
        training tensors)."""
        return self.to_cartesian(self.mean_irreps)

    @property
    def rank(self) -> int:
        return self._basis64.dim() - 1

    def change_of_basis(self, like: Tensor) -> Tensor:
        """``Q`` ``[irreps dim, 3, ..., 3]`` on the device and in the dtype of ``like``."""
        key = (like.device, like.dtype)
        if key not in self._bases:
            self._bases[key] = self._basis64.to(device=like.device, dtype=like.dtype)
        return self._bases[key]

    def to_cartesian(self, irreps: Tensor) -> Tensor:
        """``[M, irreps dim]`` -> ``[M, 3, ..., 3]`` (the formula's symmetries exact)."""
        basis = self.change_of_basis(irreps)
        flat = irreps @ basis.flatten(1)
        return flat.view(*irreps.shape[:-1], *basis.shape[1:])

    def from_cartesian(self, tensors: Tensor) -> Tensor:
        """``[M, 3, ..., 3]`` -> ``[M, irreps dim]`` (the projection onto the formula's
        symmetric subspace; ``change_of_basis`` is orthonormal)."""
        basis = self.change_of_basis(tensors)
        return tensors.flatten(-self.rank) @ basis.flatten(1).T

    def _scalar_mask(self, like: Tensor) -> Tensor:
        mask = torch.zeros(self._basis64.shape[0], dtype=like.dtype, device=like.device)
        for (_, ir), part in zip(self.cartesian, self.cartesian.slices(), strict=True):
            if ir.l == 0:
                mask[part] = 1.0
        return mask

    def isotropic_part(self, tensors: Tensor) -> Tensor:
        """The ``0e`` (rotation-invariant) part of ``[M, 3, ..., 3]`` tensors: ``trace/3 I`` for
        rank 2, the Voigt-average isotropic tensor ``K_V, G_V`` for an elastic tensor."""
        coefficients = self.from_cartesian(tensors)
        return self.to_cartesian(coefficients * self._scalar_mask(coefficients))

    def atom_irreps(self, features: NodeFeatures) -> Tensor:
        """Each atom's irreps that the linear map reads: the backbone's, or the hidden layer's
        output on its scalars and irreps; followed by their tensor square where ``square``
        was given."""
        if features.irreps is None:
            raise ValueError(f"{type(self).__name__} got no equivariant features")
        irreps = features.irreps
        if self.hidden is not None:
            scalars = features.scalars.to(irreps.dtype)
            irreps = self.hidden(torch.cat([scalars, irreps], dim=-1))
        if self.square is None:
            return irreps
        return torch.cat([irreps, self.square(irreps)], dim=-1)

    def forward(self, features: NodeFeatures) -> Tensor:
        irreps = self.atom_irreps(features)
        pooled = pool(irreps, features.batch, features.num_crystals, "mean")
        return self.to_cartesian(self.scale * self.linear(pooled) + self.mean_irreps)

    @torch.no_grad()
    def fit(self, targets: Tensor) -> None:
        """Set ``mean_irreps`` to the mean ``0e`` irreps of the training tensors (their mean
        isotropic part) and ``scale`` to the RMS of their components around it.

        Args:
            targets: ``[M, 3, ..., 3]`` training tensors.
        """
        targets = targets.to(torch.float64)
        coefficients = self.from_cartesian(targets).mean(dim=0)
        mean = coefficients * self._scalar_mask(coefficients)
        rms = (targets - self.to_cartesian(mean)).pow(2).mean().sqrt()
        self.mean_irreps.copy_(mean)
        self.scale.copy_(rms if rms > 0 else torch.ones_like(rms))


def squared(irreps_in: o3.Irreps, square: str, owner: str) -> o3.TensorSquare:
    """A weighted e3nn ``TensorSquare`` from ``irreps_in`` to ``square``. Every irrep of
    ``square`` must get a path (else a clear error naming the ones that do not): a symmetric
    square has fewer than all products of two irreps (a single ``1x2e`` squared gives ``0e +
    2e + 4e``, not the antisymmetric ``1e + 3e``), and e3nn would fill an output without a path
    with zeros, silently."""
    product = o3.TensorSquare(irreps_in, o3.Irreps(square))
    fed = {instruction.i_out for instruction in product.instructions}
    empty = sorted(
        {str(ir) for i, (mul, ir) in enumerate(product.irreps_out) if mul and i not in fed}
    )
    if empty:
        raise ValueError(
            f"{owner}: square={square!r} asks for {', '.join(empty)}, which the symmetric "
            f"square of the irreps {irreps_in} does not reach"
        )
    return product


def with_irreps(irreps: str, needed: list[str]) -> str:
    """``irreps`` plus each irrep of ``needed`` that it lacks, with the multiplicity of its
    widest ``l > 0`` channel (16 if none): ``"64x0e + 16x2e"`` + ``["2x0e + 2x2e + 4e"]`` ->
    ``"64x0e + 16x2e + 16x4e"``."""
    have = o3.Irreps(irreps)
    mul = max((m for m, ir in have if ir.l > 0), default=16)
    added: list[o3.Irrep] = []
    for text in needed:
        added += [ir for ir in missing_irreps(have, text) if ir not in added]
    if not added:
        return irreps
    return str((have + o3.Irreps([(mul, ir) for ir in added])).sort().irreps.simplify())


def _without(
    irreps_in: o3.Irreps, missing: o3.Irreps, backbone: str, hidden: bool, square: str | None
) -> str:
    """The rest of a head's refusal of a tensor whose irreps ``missing`` its features
    ``irreps_in`` lack: where they come from (the square, the hidden layer or the backbone
    ``backbone``) and where to add them."""
    if square is not None:
        return (
            f"with its square the head gives {irreps_in}, without {missing}: add them to "
            f"square (or hidden, if the backbone's {backbone} holds them)"
        )
    if hidden:
        return (
            f"its hidden layer gives {irreps_in}, without {missing}: add them to hidden (the "
            f"backbone's {backbone} must hold them too, or give square)"
        )
    return (
        f"the backbone emits {irreps_in}, without {missing} (whose part of the tensor would "
        f"stay zero); with model=e3nn add them to model.backbone.irreps_out (SevenNet-0's "
        f"features stop at l = 2), or give the head square="
        f"'{'+'.join(f'16x{ir}' for _, ir in missing)}' to make them from each atom's tensor "
        "square, where it reaches them"
    )


def missing_irreps(have: o3.Irreps, needed: str) -> list[o3.Irrep]:
    """The distinct irreps of ``needed`` that ``have`` lacks."""
    present = {ir for _, ir in have}
    out: list[o3.Irrep] = []
    for _, ir in o3.Irreps(needed):
        if ir not in present and ir not in out:
            out.append(ir)
    return out


__all__ = ["TensorHead", "missing_irreps", "with_irreps"]
