"""``assert_invariant``, ``assert_equivariant`` and ``assert_crystal_symmetric``: the symmetry
contract of every model."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import torch
from pymatgen.core import Structure
from torch import Tensor
from torch_geometric.data import Batch

from matgnn.graphs import build_graph
from matgnn.heads import AtomTensorHead, TensorHead
from matgnn.testing.transforms import (
    other_cell,
    permutation,
    permuted,
    random_rotation,
    rotated,
    supercell,
    translated,
)

SHIFT = (0.37, -1.21, 2.93)
_LETTERS = "abcdefgh"


def rotate_tensors(tensors: Tensor, rotation: Tensor) -> Tensor:
    """Rotate a batch of Cartesian tensors ``[M, 3, ..., 3]`` of any rank:
    ``T'_ij.. = R_ia R_jb .. T_ab..`` (``R T R^T`` for rank 2)."""
    rank = tensors.dim() - 1
    old, new = _LETTERS[:rank], _LETTERS[rank : 2 * rank].upper()
    factors = ",".join(f"{n}{o}" for n, o in zip(new, old, strict=True))
    rotation = rotation.to(tensors.dtype)
    return torch.einsum(f"{factors},z{old}->z{new}", *([rotation] * rank), tensors)


@contextlib.contextmanager
def _default_dtype(dtype: torch.dtype) -> Iterator[None]:
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


def _evaluate(model, structure: Structure, float64: bool) -> dict[str, Tensor]:
    dtype = torch.float64 if float64 else torch.get_default_dtype()
    with _default_dtype(dtype), torch.no_grad():
        graph = build_graph(structure, model.graph_config())
        return {k: v.to(torch.float64) for k, v in model(Batch.from_data_list([graph])).items()}


@contextlib.contextmanager
def _prepared(model, float64: bool) -> Iterator[None]:
    """Eval mode, and float64 parameters if asked, for the duration of a check; the model is
    restored afterwards (converted in place: e3nn's CartesianTensor does not survive a
    deepcopy). float32 -> float64 -> float32 is exact."""
    training = model.training
    dtype = next((p.dtype for p in model.parameters() if p.is_floating_point()), None)
    model.eval()
    if float64:
        model.double()
    try:
        yield
    finally:
        if float64 and dtype is not None:
            model.to(dtype)
        model.train(training)


def _kind(model, name: str) -> str:
    head = model.heads[name]
    if isinstance(head, AtomTensorHead):
        return "atom tensor"
    if isinstance(head, TensorHead):
        return "tensor"
    return "extensive" if getattr(head, "readout", "mean") == "sum" else "invariant"


def _compare(failures: list[str], label: str, got: Tensor, want: Tensor, rtol, atol) -> float:
    """Record a failure when ``got`` differs from ``want`` beyond ``atol + rtol |want|``;
    returns the largest relative change (inf for a shape mismatch)."""
    if got.shape != want.shape:
        failures.append(f"{label}: shape {tuple(got.shape)} instead of {tuple(want.shape)}")
        return float("inf")
    change = float(((got - want).abs() / want.abs().clamp_min(atol)).max())
    if bool(((got - want).abs() > atol + rtol * want.abs()).any()):
        failures.append(f"{label}: relative change {change:.3g} (rtol {rtol:g}, atol {atol:g})")
    return change


def _raise(failures: list[str], model, structure: Structure) -> None:
    if failures:
        name = type(model.backbone).__name__
        raise AssertionError(
            f"{name} on {structure.composition.reduced_formula} ({len(structure)} atoms):\n  "
            + "\n  ".join(failures)
        )


def assert_invariant(
    model,
    structure: Structure,
    *,
    rtol: float = 1e-7,
    atol: float = 1e-7,
    float64: bool = True,
    seed: int = 0,
    supercells: tuple[tuple[int, int, int], ...] = ((2, 1, 1), (1, 2, 2)),
) -> dict[str, float]:
    """Assert that ``model``'s scalar, class and vector outputs do not change when
    ``structure`` is rotated, translated, its atoms permuted, replaced by a supercell or
    described in another unit cell; sum-readout (extensive) outputs must scale with the
    supercell. Tensor heads are skipped here (see :func:`assert_equivariant`).

    The model runs in eval mode and float64 (``float64=True``, restored afterwards) so that
    ``rtol`` can be tight.
    Raises ``AssertionError`` listing every transform and output that failed; returns the
    largest relative change per transform.
    """
    with _prepared(model, float64):
        reference = _evaluate(model, structure, float64)
        names = [n for n in reference if _kind(model, n) in ("invariant", "extensive")]
        if not names:
            raise ValueError("assert_invariant: the model has no invariant output to check")
        variants: dict[str, tuple[Structure, int]] = {
            "rotation": (rotated(structure, random_rotation(seed)), 1),
            "translation": (translated(structure, SHIFT), 1),
            "permutation": (permuted(structure, seed), 1),
            "other unit cell": (other_cell(structure), 1),
        }
        for scaling in supercells:
            label = "supercell " + "x".join(map(str, scaling))
            variants[label] = (supercell(structure, scaling), int(np.prod(scaling)))
        failures: list[str] = []
        changes: dict[str, float] = {}
        for label, (variant, cells) in variants.items():
            out = _evaluate(model, variant, float64)
            changes[label] = 0.0
            for name in names:
                want = reference[name] * (cells if _kind(model, name) == "extensive" else 1)
                change = _compare(
                    failures, f"{label}, output {name!r}", out[name], want, rtol, atol
                )
                changes[label] = max(changes[label], change)
        _raise(failures, model, structure)
        return changes


def assert_equivariant(
    model,
    structure: Structure,
    *,
    rtol: float = 1e-7,
    atol: float = 1e-7,
    float64: bool = True,
    seeds: tuple[int, ...] = (0, 1, 2),
) -> None:
    """Assert that every tensor head of ``model`` is equivariant on ``structure``: a rotation R
    turns each predicted tensor T into ``R T R^T`` (rank 2; ``R_ia R_jb R_kc R_ld T_abcd`` for
    rank 4), per crystal or per atom;
    translation leaves it unchanged; a permutation of the atoms permutes per-atom tensors.
    Raises ``AssertionError`` listing what failed."""
    with _prepared(model, float64):
        reference = _evaluate(model, structure, float64)
        names = [n for n in reference if _kind(model, n) in ("tensor", "atom tensor")]
        if not names:
            raise ValueError("assert_equivariant: the model has no tensor head")
        failures: list[str] = []
        for seed in seeds:
            rotation = torch.as_tensor(random_rotation(seed), dtype=torch.float64)
            out = _evaluate(model, translated(rotated(structure, rotation.numpy()), SHIFT), float64)
            for name in names:
                want = rotate_tensors(reference[name], rotation)
                _compare(failures, f"rotation {seed}, head {name!r}", out[name], want, rtol, atol)
            order = torch.as_tensor(permutation(len(structure), seed))
            out = _evaluate(model, permuted(structure, seed), float64)
            for name in names:
                want = (
                    reference[name][order]
                    if _kind(model, name) == "atom tensor"
                    else reference[name]
                )
                _compare(
                    failures, f"permutation {seed}, head {name!r}", out[name], want, rtol, atol
                )
        _raise(failures, model, structure)


def _site_images(structure: Structure, rotation: np.ndarray, translation: np.ndarray) -> np.ndarray:
    """``image[k]``: the site that the operation ``x -> R x + t`` moves site ``k`` onto."""
    moved = structure.cart_coords @ rotation.T + translation
    frac = structure.lattice.get_fractional_coords(moved)
    delta = frac[:, None, :] - structure.frac_coords[None, :, :]
    delta -= np.round(delta)
    distance = np.linalg.norm(delta @ structure.lattice.matrix, axis=-1)
    image = distance.argmin(axis=1)
    if len(set(image.tolist())) != len(structure):
        raise ValueError("a symmetry operation does not map the sites one to one")
    return image


def rotation_residuals(
    model, structure: Structure, *, seeds: tuple[int, ...] = (0, 1, 2), float64: bool = True
) -> dict[str, float]:
    """For every tensor head of ``model``: the largest difference between its prediction on
    ``structure`` turned by a random rotation R (and shifted) and the rotated prediction
    (``R T R^T``, or the rank-4 rule), relative to the prediction's largest component."""
    with _prepared(model, float64):
        reference = _evaluate(model, structure, float64)
        names = [n for n in reference if _kind(model, n) in ("tensor", "atom tensor")]
        residuals = dict.fromkeys(names, 0.0)
        for seed in seeds:
            rotation = torch.as_tensor(random_rotation(seed), dtype=torch.float64)
            out = _evaluate(model, translated(rotated(structure, rotation.numpy()), SHIFT), float64)
            for name in names:
                want = rotate_tensors(reference[name], rotation)
                size = max(float(want.abs().max()), 1e-300)
                residuals[name] = max(residuals[name], float((out[name] - want).abs().max()) / size)
    return residuals


def crystal_symmetry_residuals(
    model, structure: Structure, *, symprec: float = 1e-3, float64: bool = True
) -> tuple[dict[str, float], int]:
    """For every tensor head of ``model``: the largest change of its prediction on
    ``structure`` under the crystal's own symmetry operations ``(R, t)`` (spglib, tolerance
    ``symprec`` Å), relative to the prediction's largest component; and the number of
    operations. A per-crystal tensor T is compared with ``R T R^T`` (rank 4 alike), the
    per-atom tensor of the image site of k with ``R Z_k R^T``."""
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    operations = SpacegroupAnalyzer(structure, symprec=symprec).get_symmetry_operations(
        cartesian=True
    )
    with _prepared(model, float64):
        reference = _evaluate(model, structure, float64)
    names = [n for n in reference if _kind(model, n) in ("tensor", "atom tensor")]
    if not names:
        raise ValueError("the model has no tensor head")
    residuals = dict.fromkeys(names, 0.0)
    for op in operations:
        rotation = torch.as_tensor(op.rotation_matrix, dtype=torch.float64)
        for name in names:
            rotated_tensors = rotate_tensors(reference[name], rotation)
            if _kind(model, name) == "atom tensor":
                image = torch.as_tensor(
                    _site_images(structure, op.rotation_matrix, op.translation_vector)
                )
                want = torch.empty_like(rotated_tensors)
                want[image] = rotated_tensors
            else:
                want = rotated_tensors
            size = float(reference[name].abs().max())
            change = float((reference[name] - want).abs().max()) / max(size, 1e-300)
            residuals[name] = max(residuals[name], change)
    return residuals, len(operations)


def assert_crystal_symmetric(
    model,
    structure: Structure,
    *,
    symprec: float = 1e-3,
    tolerance: float = 1e-4,
    float64: bool = True,
) -> int:
    """Assert Neumann's principle for every tensor head of ``model`` on ``structure``
    (:func:`crystal_symmetry_residuals` at most ``tolerance``): each symmetry operation of the
    crystal leaves a per-crystal tensor unchanged and maps the per-atom tensor of each site
    onto that of its image site. Follows from equivariance; this checks it on the crystal's
    own operations. Stored crystals are symmetric only to about 1e-6 (a = b to 1e-6 Å,
    120.000006 degrees), hence the tolerance. Returns the number of operations checked;
    raises ``AssertionError`` naming the heads that fail."""
    residuals, count = crystal_symmetry_residuals(
        model, structure, symprec=symprec, float64=float64
    )
    failures = [
        f"head {name!r}: a symmetry operation changes it by {change:.3g} of its largest "
        f"component (tolerance {tolerance:g}, {count} operations)"
        for name, change in residuals.items()
        if not change <= tolerance
    ]
    _raise(failures, model, structure)
    return count
