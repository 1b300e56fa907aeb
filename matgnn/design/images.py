"""iMatGen's invertible image representation of a crystal (Noh et al., Matter 1, 1370 (2019)).

A crystal is two kinds of 3D images:

* **Cell image** (:func:`cell_image`, ``m^3``, m = 32): one Gaussian ``exp(-d^2 / 2 sigma^2)``
  (sigma = 0.26 Å, values below 0.02 set to 0) around a point at the cell's centre, sampled at
  the fractional grid points ``(i, j, k) / m`` of the cell; ``d`` is the Cartesian distance to
  the centre (nearest image), so the lattice distorts the Gaussian (paper Eq. 1). The inverse
  (:func:`lattice_from_cell_image`, Eq. 2) reads the Gaussian along the lines through the
  centre: along ``a`` the voxel ``n`` steps away holds ``exp(-(n |a| / m)^2 / 2 sigma^2)``, so
  ``|a|^2 = -2 sigma^2 m^2 sum(n^2 ln p_n) / sum(n^4)`` (least squares over the line, exact for
  an exact image), the same along ``a +- b``, ``b +- c``, ``c +- a`` gives the dot products
  (``a.b = (|a+b|^2 - |a-b|^2) / 4``) and so the angles.
* **Basis images** (:func:`basis_images`, one ``n^3`` image per element, n = 64): the atoms of
  the cell, their Cartesian positions in pymatgen's standard orientation of the lattice
  parameters (a left-handed cell taken as its right-handed equivalent), each taken as the image
  nearest the cell's centre and the whole set shifted so that the middle of its extent sits at
  the centre of a periodic cubic box of l = 15 Å (0.234 Å per voxel; the paper centred the
  centroid);
  one Gaussian (sigma 0.26 Å, cut at 0.02) per atom in its element's channel (Eq. 3). Positions
  come back (:func:`positions_from_basis_image`) as the local maxima of the image (scipy.ndimage
  maximum filter, periodic) above ``peak_threshold``, refined within the voxel by the parabola
  through the logarithms of the peak and its two neighbours along each axis (exact for an
  isolated sampled Gaussian; the paper took the voxel itself, an intrinsic error of up to half
  a voxel per axis). An autoencoder's reconstruction may split one atom's Gaussian into a peak
  and a shoulder with a maximum of its own; with ``merge_saddle`` set, a maximum joined to a
  higher one of its channel by a straight path that never falls below ``merge_saddle`` times
  its own height is that peak's shoulder, not an atom (along the sampled path two exact atoms
  1 Å apart dip below 0.5 of the lower peak voxel, about 0.48 at worst over placements and
  directions, and atoms of one element sit further apart).

Refused, in words naming the structure: more than ``max_sites`` sites (20), a lattice vector
longer than ``max_length`` (10 Å), an element without a channel, atoms spread wider than the box
allows, a cell image without signal.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from pymatgen.core import Lattice, Structure
from scipy import ndimage
from scipy.optimize import linear_sum_assignment

from matgnn.graphs.structures import cell_problem, structure_name

#: the lattice translations to a cell and its 26 neighbours, ``[27, 3]``
_NEIGHBOUR_CELLS = np.array([(i, j, k) for i in (-1, 0, 1) for j in (-1, 0, 1) for k in (-1, 0, 1)])


class RepresentationError(ValueError):
    """A structure (or image) that the image representation cannot hold, named."""


@dataclass(frozen=True)
class ImageSpec:
    """The images' geometry (the paper's values by default).

    Args:
        elements: one basis channel per element, in this order (the V-O set: ``("V", "O")``).
        cell_grid: ``m``, voxels per edge of the cell image.
        basis_grid: ``n``, voxels per edge of a basis image.
        box: edge of the cubic basis box, Å.
        sigma: Gaussian width, Å.
        threshold: values below it are set to 0.
        max_sites: most sites a structure may have.
        max_length: longest lattice vector allowed, Å.
        peak_threshold: a basis-image maximum below this is not an atom (an isolated atom's
            peak voxel holds at least 0.74 on the default grid).
        refine_peaks: refine each peak within its voxel (default); ``False``: the voxel's
            corner is the position, as the paper's post-processing took it.
        merge_saddle: a basis-image maximum joined to a higher maximum of its channel (within
            twice :attr:`reach`) by a straight path whose lowest value is at least this
            fraction of its own height is a shoulder of that peak, not an atom; ``None``
            (default): every maximum above ``peak_threshold`` is an atom. Exact images of
            same-element atoms 1 Å apart or more decode alike at 0.5 and above (see the module
            docstring).
    """

    elements: tuple[str, ...] = ("V", "O")
    cell_grid: int = 32
    basis_grid: int = 64
    box: float = 15.0
    sigma: float = 0.26
    threshold: float = 0.02
    max_sites: int = 20
    max_length: float = 10.0
    peak_threshold: float = 0.3
    refine_peaks: bool = True
    merge_saddle: float | None = None

    @property
    def voxel(self) -> float:
        """Basis voxel edge, Å."""
        return self.box / self.basis_grid

    @property
    def reach(self) -> float:
        """Distance at which a Gaussian falls below the threshold, Å."""
        return self.sigma * math.sqrt(-2.0 * math.log(self.threshold))


def _gaussian(squared: np.ndarray, spec: ImageSpec) -> np.ndarray:
    values = np.exp(-squared / (2.0 * spec.sigma**2))
    values[values < spec.threshold] = 0.0
    return values


def right_handed_frac_coords(structure: Structure) -> np.ndarray:
    """The fractional coordinates in the right-handed cell of the same crystal: a left-handed
    lattice ``L`` (negative determinant) is ``-L`` with coordinates ``-f`` (the same Cartesian
    positions), and ``-L`` has ``L``'s lengths and angles. Lattice parameters cannot tell the
    two hands apart: without this a chiral crystal in a left-handed cell would come back as its
    mirror image."""
    frac = np.asarray(structure.frac_coords, dtype=np.float64)
    return -frac if np.linalg.det(structure.lattice.matrix) < 0 else frac


def standard_lattice(lattice: Lattice) -> Lattice:
    """The lattice of the same parameters in pymatgen's standard orientation
    (``Lattice.from_parameters``): the frame in which the cell is decoded."""
    return Lattice.from_parameters(*lattice.abc, *lattice.angles)


def cell_image(lattice: Lattice, spec: ImageSpec = ImageSpec()) -> np.ndarray:
    """The cell image of ``lattice``.

    Shapes:
        -> ``[m, m, m]`` float32, axis 0 along ``a``, 1 along ``b``, 2 along ``c``.
    """
    m = spec.cell_grid
    steps = np.arange(m) / m - 0.5  # fractional offsets from the centre, [-0.5, 0.5)
    frac = np.stack(np.meshgrid(steps, steps, steps, indexing="ij"), axis=-1)
    cart = frac.reshape(-1, 3) @ lattice.matrix
    # the nearest image of the centre, among the 27 neighbouring cells: |x + t|^2 expanded,
    # one matrix product instead of 27 translated copies of the grid
    shifts = _NEIGHBOUR_CELLS @ lattice.matrix
    squared = (
        np.einsum("pi,pi->p", cart, cart)[:, None]
        + 2.0 * cart @ shifts.T
        + np.einsum("ti,ti->t", shifts, shifts)[None]
    ).min(axis=1)
    return _gaussian(np.maximum(squared, 0.0), spec).reshape(m, m, m).astype(np.float32)


def _squared_length(
    values: np.ndarray, steps: np.ndarray, m: int, sigma: float, threshold: float
) -> float:
    """``|v|^2`` from the values ``p_n = exp(-(n |v| / m)^2 / 2 sigma^2)`` at ``n = steps``
    (least squares over the values at or above the image's threshold: a decoded image is
    nowhere exactly zero, and its far, tiny values would weigh most)."""
    keep = values >= threshold
    if not keep.any():
        return math.nan
    n = steps[keep].astype(np.float64)
    logs = np.log(values[keep].astype(np.float64))
    return float(-2.0 * sigma**2 * m**2 * np.sum(n**2 * logs) / np.sum(n**4))


def lattice_from_cell_image(
    image: np.ndarray, spec: ImageSpec = ImageSpec(), name: str = "cell image"
) -> Lattice:
    """The lattice (standard orientation) whose :func:`cell_image` is ``image`` (exact for an
    exact image; a decoded image gives the least-squares lattice of its Gaussian)."""
    m = spec.cell_grid
    if image.shape != (m, m, m):
        raise RepresentationError(f"{name}: shape {image.shape}, expected {(m, m, m)}")
    c = m // 2
    steps = np.arange(1, c)
    image = np.asarray(image, dtype=np.float64)

    def line(direction: tuple[int, int, int]) -> float:
        index = [c + s * steps for s in direction]
        forward = image[tuple(index)]
        index = [c - s * steps for s in direction]
        backward = image[tuple(index)]
        values = np.concatenate([forward, backward])
        return _squared_length(
            values, np.concatenate([steps, steps]), m, spec.sigma, spec.threshold
        )

    a2, b2, c2 = line((1, 0, 0)), line((0, 1, 0)), line((0, 0, 1))
    ab = (line((1, 1, 0)) - line((1, -1, 0))) / 4.0
    bc = (line((0, 1, 1)) - line((0, 1, -1))) / 4.0
    ca = (line((1, 0, 1)) - line((-1, 0, 1))) / 4.0
    if not all(math.isfinite(v) and v > 0 for v in (a2, b2, c2)) or not all(
        math.isfinite(v) for v in (ab, bc, ca)
    ):
        raise RepresentationError(
            f"{name}: no Gaussian along the lines through the centre voxel {(c, c, c)}: "
            "not a cell image (or a lattice vector beyond what the grid resolves)"
        )
    a, b, cc = math.sqrt(a2), math.sqrt(b2), math.sqrt(c2)
    cosines = (bc / (b * cc), ca / (cc * a), ab / (a * b))
    if any(abs(x) >= 1 for x in cosines):
        raise RepresentationError(f"{name}: its Gaussian gives no valid angles {cosines}")
    alpha, beta, gamma = (math.degrees(math.acos(x)) for x in cosines)
    # three angles each possible may still close no cell (e.g. all three 127 degrees): the
    # metric must be positive definite, (V / abc)^2 = 1 - sum cos^2 + 2 prod cos > 0
    volume_factor = 1.0 - sum(x * x for x in cosines) + 2.0 * math.prod(cosines)
    if volume_factor <= 1e-6:
        raise RepresentationError(
            f"{name}: its Gaussian gives angles ({alpha:.1f}, {beta:.1f}, {gamma:.1f}) degrees "
            f"that close no cell ((V / abc)^2 = {volume_factor:.3g})"
        )
    return Lattice.from_parameters(a, b, cc, alpha, beta, gamma)


def check_structure(structure: Structure, spec: ImageSpec = ImageSpec(), name: str = "") -> None:
    """Refuse, in words naming ``name``, a structure the images cannot hold, or no crystal at
    all (no sites, NaN or inf in the lattice or coordinates, a cell of zero volume; a
    left-handed basis is a crystal, and the cell image holds its lengths and angles)."""
    name = name or structure_name(structure)
    if len(structure) == 0:
        raise RepresentationError(f"{name}: empty structure (no sites)")
    if not structure.is_ordered:
        raise RepresentationError(f"{name}: partial occupancies have no image")
    matrix = np.asarray(structure.lattice.matrix, dtype=np.float64)
    frac = np.asarray(structure.frac_coords, dtype=np.float64)
    problem = cell_problem(matrix, frac, right_handed=False)  # the graph builder's check
    if problem:
        raise RepresentationError(f"{name}: {problem}")
    if len(structure) > spec.max_sites:
        raise RepresentationError(f"{name}: {len(structure)} sites, at most {spec.max_sites}")
    longest = max(structure.lattice.abc)
    if longest > spec.max_length:
        raise RepresentationError(
            f"{name}: a lattice vector of {longest:.3f} Å, at most {spec.max_length} Å"
        )
    unknown = sorted({s.specie.symbol for s in structure} - set(spec.elements))
    if unknown:
        raise RepresentationError(
            f"{name}: elements {unknown} have no channel (channels: {list(spec.elements)})"
        )


def box_positions(
    structure: Structure, spec: ImageSpec = ImageSpec(), name: str = ""
) -> np.ndarray:
    """Cartesian positions of the atoms in the basis box (Å): standard orientation, each atom
    the image nearest the cell's centre, the middle of their extent at the box's centre.

    Shapes:
        -> ``[sites, 3]``.
    """
    name = name or structure.composition.reduced_formula
    lattice = standard_lattice(structure.lattice)
    frac = np.mod(right_handed_frac_coords(structure), 1.0)
    centre = np.full(3, 0.5)
    candidates = (
        frac[:, None, :] + _NEIGHBOUR_CELLS[None] - centre
    ) @ lattice.matrix  # from the centre
    nearest = np.argmin(np.einsum("aij,aij->ai", candidates, candidates), axis=1)
    cart = candidates[np.arange(len(frac)), nearest]
    # the middle of the atoms' extent at the box's centre (the paper took the centroid, which
    # lets an atom of an uneven cell fall outside the box and wrap to the other side)
    cart = cart - (cart.max(axis=0) + cart.min(axis=0)) / 2.0 + spec.box / 2.0
    spread = cart.max(axis=0) - cart.min(axis=0)
    allowed = spec.box - 2.0 * spec.reach
    if np.any(spread > allowed):
        raise RepresentationError(
            f"{name}: its atoms spread over {np.round(spread, 2).tolist()} Å, more than the "
            f"{allowed:.2f} Å that a {spec.box} Å periodic box holds without overlap"
        )
    return cart


def basis_images(structure: Structure, spec: ImageSpec = ImageSpec(), name: str = "") -> np.ndarray:
    """One image per element of ``spec.elements``.

    Shapes:
        -> ``[len(spec.elements), n, n, n]`` float32, axes along the box's x, y, z.
    """
    return _basis(structure, spec, name, range(len(spec.elements)))


def basis_image(
    structure: Structure, channel: int, spec: ImageSpec = ImageSpec(), name: str = ""
) -> np.ndarray:
    """The image of one element, ``spec.elements[channel]``: ``basis_images(...)[channel]``
    without making the others.

    Shapes:
        -> ``[n, n, n]`` float32.
    """
    if not 0 <= channel < len(spec.elements):
        raise ValueError(f"{name or 'structure'}: no basis channel {channel} in {spec.elements}")
    return _basis(structure, spec, name, [channel])[0]


def _basis(structure: Structure, spec: ImageSpec, name: str, channels: Sequence[int]) -> np.ndarray:
    check_structure(structure, spec, name)
    cart = box_positions(structure, spec, name)
    n, voxel = spec.basis_grid, spec.voxel
    images = np.zeros((len(channels), n, n, n), dtype=np.float64)
    width = math.ceil(spec.reach / voxel) + 1
    offsets = np.arange(-width, width + 1)
    for site, position in zip(structure, cart, strict=True):
        element = spec.elements.index(site.specie.symbol)
        if element not in channels:
            continue
        nearest = np.rint(position / voxel).astype(int)
        axes = [(nearest[k] + offsets) for k in range(3)]
        # the box is periodic: distances to the nearest image of each grid point
        deltas = [
            ((axes[k] * voxel - position[k] + spec.box / 2) % spec.box) - spec.box / 2
            for k in range(3)
        ]
        squared = (
            deltas[0][:, None, None] ** 2
            + deltas[1][None, :, None] ** 2
            + deltas[2][None, None, :] ** 2
        )
        index = np.ix_(*(axis % n for axis in axes))
        images[list(channels).index(element)][index] += _gaussian(squared, spec)
    return images.astype(np.float32)


def local_maxima(image: np.ndarray, floor: float) -> np.ndarray:
    """Voxel indices of the periodic local maxima of a basis image at least ``floor`` high, in
    the order of the image's voxels (computed once, they serve every threshold at or above
    ``floor``: :func:`positions_from_basis_image`'s ``maxima``).

    Shapes:
        ``[n, n, n]`` -> ``[maxima, 3]``.
    """
    image = np.asarray(image, dtype=np.float64)
    maxima = ndimage.maximum_filter(image, size=3, mode="wrap") == image
    return np.argwhere(maxima & (image >= floor))


def _shoulders(image: np.ndarray, peaks: np.ndarray, spec: ImageSpec) -> np.ndarray:
    """Which of ``peaks`` (voxel indices) are shoulders of a higher kept peak of the image
    (``spec.merge_saddle``): visited from the highest down, each compared with the kept ones
    within twice the Gaussian's reach along the straight periodic path between them, sampled
    at half a voxel by trilinear interpolation."""
    n = spec.basis_grid
    heights = image[tuple(peaks.T)]
    reach = 2.0 * spec.reach / spec.voxel
    shoulder = np.zeros(len(peaks), dtype=bool)
    kept: list[int] = []
    for i in np.argsort(-heights, kind="stable"):
        for j in kept:
            delta = (peaks[j] - peaks[i] + n / 2) % n - n / 2
            distance = float(np.linalg.norm(delta))
            if distance > reach:
                continue
            path = peaks[i][:, None] + delta[:, None] * np.linspace(0, 1, int(2 * distance) + 2)
            lowest = ndimage.map_coordinates(image, path, order=1, mode="grid-wrap").min()
            if lowest >= spec.merge_saddle * heights[i]:
                shoulder[i] = True
                break
        if not shoulder[i]:
            kept.append(int(i))
    return shoulder


def positions_from_basis_image(
    image: np.ndarray, spec: ImageSpec = ImageSpec(), maxima: np.ndarray | None = None
) -> np.ndarray:
    """Cartesian positions in the box (Å) of the atoms of one basis image: its periodic local
    maxima above ``spec.peak_threshold`` (of ``maxima``, :func:`local_maxima` at a lower or
    equal floor, where given), shoulders dropped (``spec.merge_saddle``), refined within the
    voxel (see the module docstring).

    Shapes:
        ``[n, n, n]`` -> ``[atoms, 3]``.
    """
    image = np.asarray(image, dtype=np.float64)
    if maxima is None:
        maxima = local_maxima(image, spec.peak_threshold)
    peaks = maxima[image[tuple(maxima.T)] >= spec.peak_threshold] if len(maxima) else maxima
    if spec.merge_saddle is not None and len(peaks) > 1:
        peaks = peaks[~_shoulders(image, peaks, spec)]
    n = spec.basis_grid
    positions = []
    for peak in peaks:
        offset = np.zeros(3)
        for axis in range(3 if spec.refine_peaks else 0):
            before, after = peak.copy(), peak.copy()
            before[axis], after[axis] = (peak[axis] - 1) % n, (peak[axis] + 1) % n
            values = image[tuple(before)], image[tuple(peak)], image[tuple(after)]
            if min(values) <= 0:
                continue
            lm, l0, lp = (math.log(v) for v in values)
            curvature = lm - 2 * l0 + lp
            if curvature < 0:
                offset[axis] = float(np.clip(0.5 * (lm - lp) / curvature, -0.5, 0.5))
        positions.append((peak + offset) * spec.voxel % spec.box)
    return _merged(np.array(positions).reshape(-1, 3), spec.voxel, spec.box)


def _merged(positions: np.ndarray, within: float, period: float | None = None) -> np.ndarray:
    """Positions closer than ``within`` (a plateau's equal maxima) averaged into one."""
    kept: list[list[np.ndarray]] = []
    for p in positions:
        for group in kept:
            delta = p - group[0]
            if period is not None:
                delta = (delta + period / 2) % period - period / 2
            if np.linalg.norm(delta) < within:
                group.append(group[0] + delta)
                break
        else:
            kept.append([p])
    merged = [np.mean(group, axis=0) for group in kept]
    return np.array(merged).reshape(-1, 3) % (period if period else np.inf)


def structure_from_images(
    cell: np.ndarray,
    basis: np.ndarray,
    spec: ImageSpec = ImageSpec(),
    name: str = "images",
    maxima: Sequence[np.ndarray] | None = None,
) -> Structure:
    """The crystal of a cell image and its basis images: the decoded lattice, the atoms of each
    channel moved so that the box's centre is the cell's centre, in fractional coordinates.
    An image without atoms is refused. ``maxima``: each basis image's :func:`local_maxima`,
    computed once for decoding one image at several settings."""
    lattice = lattice_from_cell_image(cell, spec, name)
    if basis.shape[0] != len(spec.elements):
        raise RepresentationError(
            f"{name}: {basis.shape[0]} basis images for {len(spec.elements)} elements"
        )
    centre = np.full(3, 0.5) @ lattice.matrix
    species, coords = [], []
    found = maxima if maxima is not None else [None] * len(basis)
    for element, image, peaks in zip(spec.elements, basis, found, strict=True):
        for position in positions_from_basis_image(image, spec, peaks):
            species.append(element)
            coords.append(position - spec.box / 2.0 + centre)
    if not species:
        raise RepresentationError(f"{name}: no atom in its basis images")
    return Structure(lattice, species, np.array(coords), coords_are_cartesian=True)


def encode(
    structure: Structure, spec: ImageSpec = ImageSpec(), name: str = ""
) -> tuple[np.ndarray, np.ndarray]:
    """``(cell image, basis images)`` of a structure (:func:`cell_image`, :func:`basis_images`)."""
    basis = basis_images(structure, spec, name)
    return cell_image(standard_lattice(structure.lattice), spec), basis


@dataclass(frozen=True)
class Reconstruction:
    """How far a decoded structure is from the original.

    Attributes:
        lattice_errors: decoded minus original ``(a, b, c, alpha, beta, gamma)`` (Å, degrees).
        position_rmse: RMSE of the atom positions, Å, over the best global translation: for
            each translation taking an atom of the rarest element onto a decoded one, the atoms
            of each element matched (Hungarian on periodic distances in the original's cell)
            and the mean remaining displacement removed; ``nan`` when the compositions differ.
        same_composition: same number of atoms of each element.
    """

    lattice_errors: tuple[float, ...]
    position_rmse: float
    same_composition: bool

    def fully_reconstructed(self, position_tol: float = 0.1, angle_tol: float = 2.0) -> bool:
        """Every atom back (same composition), positions within ``position_tol`` Å (RMSE),
        lengths within ``position_tol`` Å and angles within ``angle_tol`` degrees."""
        return (
            self.same_composition
            and self.position_rmse <= position_tol
            and lattice_within(self.lattice_errors, position_tol, angle_tol)
        )


def lattice_errors(original: Lattice, decoded: Lattice) -> tuple[float, ...]:
    """Decoded minus original ``(a, b, c, alpha, beta, gamma)``, Å and degrees."""
    return tuple(
        float(d - o)
        for d, o in zip(
            (*decoded.abc, *decoded.angles), (*original.abc, *original.angles), strict=True
        )
    )


def lattice_within(
    errors: Sequence[float], length_tol: float = 0.1, angle_tol: float = 2.0
) -> bool:
    """Every length error within ``length_tol`` Å and every angle error within ``angle_tol``
    degrees (the paper's tolerance for a lattice: 0.1 Å and 2°); a NaN error is not within."""
    return all(abs(x) <= length_tol for x in errors[:3]) and all(
        abs(x) <= angle_tol for x in errors[3:]
    )


def compare(original: Structure, decoded: Structure) -> Reconstruction:
    """:class:`Reconstruction` of ``decoded`` against ``original``."""
    errors = lattice_errors(original.lattice, decoded.lattice)
    same = original.composition == decoded.composition and len(original) == len(decoded)
    if not same:
        return Reconstruction(errors, math.nan, False)
    lattice = standard_lattice(original.lattice)
    elements = sorted({s.specie.symbol for s in original})
    coords_a, coords_b = right_handed_frac_coords(original), right_handed_frac_coords(decoded)
    frac_a = {e: coords_a[[s.specie.symbol == e for s in original]] for e in elements}
    frac_b = {e: coords_b[[s.specie.symbol == e for s in decoded]] for e in elements}
    # a crystal has no absolute origin: try the translation that takes one atom of the rarest
    # element onto each decoded atom of that element, match the atoms of every element under
    # it (Hungarian, periodic distances), remove the remaining mean displacement; keep the best
    rarest = min(elements, key=lambda e: len(frac_a[e]))
    best = math.inf
    for target in frac_b[rarest]:
        shift = target - frac_a[rarest][0]
        displacements = []
        for e in elements:
            moved = frac_a[e] + shift
            rows, cols = linear_sum_assignment(_periodic_distances(moved, frac_b[e], lattice))
            delta = frac_b[e][cols] - moved[rows]
            displacements.append((delta - np.rint(delta)) @ lattice.matrix)
        residual = np.concatenate(displacements)
        residual = residual - residual.mean(axis=0)
        best = min(best, float(np.sqrt(np.mean(np.sum(residual**2, axis=1)))))
    return Reconstruction(errors, best, True)


def _periodic_distances(a: np.ndarray, b: np.ndarray, lattice: Lattice) -> np.ndarray:
    delta = b[None, :, :] - a[:, None, :]
    delta -= np.rint(delta)
    cart = delta @ lattice.matrix
    return np.linalg.norm(cart, axis=-1)


def round_trip(
    structures: Sequence[Structure],
    spec: ImageSpec = ImageSpec(),
    names: Sequence[str] | None = None,
) -> list[Reconstruction]:
    """Encode and decode each structure (no model in between): the representation's own error."""
    names = names or [s.composition.reduced_formula for s in structures]
    out = []
    for structure, name in zip(structures, names, strict=True):
        cell, basis = encode(structure, spec, name)
        out.append(compare(structure, structure_from_images(cell, basis, spec, name)))
    return out
