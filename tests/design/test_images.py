"""iMatGen's image representation (matgnn.design.images): the cell image gives the lattice back
exactly, the basis images give every atom back, bad input is refused by name, and the
reconstruction error is what a brute-force reference says."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from matgnn.data.samples import mp_sample_structures
from matgnn.design.images import (
    ImageSpec,
    RepresentationError,
    basis_image,
    basis_images,
    box_positions,
    cell_image,
    compare,
    encode,
    lattice_errors,
    lattice_from_cell_image,
    lattice_within,
    positions_from_basis_image,
    round_trip,
    standard_lattice,
    structure_from_images,
)
from matgnn.design.vo_dataset import vo_sample


@pytest.fixture(scope="module")
def vo():
    return vo_sample()


@pytest.fixture(scope="module")
def binaries():
    """Real MP binaries within the paper's filters, with their own two channels."""
    ids, structures = mp_sample_structures(300)
    spec = ImageSpec()
    kept = [
        (i, s)
        for i, s in zip(ids, structures, strict=True)
        if len(s.composition) == 2 and len(s) <= spec.max_sites and max(s.lattice.abc) <= 10
    ]
    assert len(kept) >= 10
    return kept


def test_the_cell_image_gives_the_lattice_back_exactly(binaries):
    """Lengths and angles from the image (paper Eq. 2) for real cells of every crystal system
    and for a strongly skewed triclinic one."""
    _, structures = mp_sample_structures(300)
    lattices = [s.lattice for s in structures if max(s.lattice.abc) <= 10][:60]
    lattices.append(Lattice.from_parameters(3.1, 7.9, 9.6, 61.0, 118.0, 97.5))
    for lattice in lattices:
        back = lattice_from_cell_image(cell_image(standard_lattice(lattice)))
        np.testing.assert_allclose(back.abc, lattice.abc, rtol=0, atol=1e-5)
        np.testing.assert_allclose(back.angles, lattice.angles, rtol=0, atol=1e-3)


def test_the_cell_image_is_the_gaussian_of_eq_1():
    """Brute force: each voxel is exp(-d^2 / 2 sigma^2) of the distance from its grid point to
    the nearest image of the cell's centre (cut at 0.02)."""
    spec = ImageSpec()
    lattice = Lattice.from_parameters(4.2, 5.0, 6.3, 80.0, 95.0, 110.0)
    image = cell_image(lattice, spec)
    rng = np.random.default_rng(0)
    for i, j, k in [*rng.integers(0, spec.cell_grid, size=(200, 3)).tolist(), [16, 16, 16]]:
        frac = np.array([i, j, k]) / spec.cell_grid - 0.5
        d = min(
            np.linalg.norm((frac + np.array(t)) @ lattice.matrix)
            for t in np.ndindex(3, 3, 3)
            for t in [np.array(t) - 1]
        )
        value = math.exp(-(d**2) / (2 * spec.sigma**2))
        assert image[i, j, k] == pytest.approx(value if value >= 0.02 else 0.0, abs=1e-6)
    assert image[16, 16, 16] == 1.0


def test_the_basis_images_give_every_atom_back(vo, binaries):
    """Known and substituted V-O structures and real binaries with their own elements: every
    atom back, positions within 1e-4 Å (the peaks are refined within the voxel)."""
    for structure, name in zip(vo.structures, vo.ids, strict=True):
        (result,) = round_trip([structure], names=[name])
        assert result.same_composition and result.position_rmse < 1e-4, name
        assert max(abs(e) for e in result.lattice_errors) < 1e-3, name
    for name, structure in binaries:
        spec = ImageSpec(elements=tuple(e.symbol for e in structure.composition))
        (result,) = round_trip([structure], spec, [name])
        assert result.fully_reconstructed() and result.position_rmse < 1e-4, name


def test_voxel_positions_give_the_papers_intrinsic_error(vo):
    """Without the refinement, the peak voxel's corner is the position, as in the paper: an
    error of at most half a voxel per axis (0.117 Å), RMSE near the paper's 0.11 Å or below."""
    spec = ImageSpec(refine_peaks=False)
    results = round_trip(vo.structures, spec, vo.ids)
    rmse = np.array([r.position_rmse for r in results])
    assert all(r.same_composition for r in results)
    assert 0.01 < rmse.mean() <= 0.11
    assert rmse.max() <= math.sqrt(3) * spec.voxel


def test_close_atoms_of_one_element_are_two_peaks():
    """Two O atoms 1.2 Å apart (shorter than any O-O bond in the data) stay two atoms."""
    structure = Structure(
        Lattice.cubic(6.0), ["V", "O", "O"], [[0, 0, 0], [0.5, 0.5, 0.5], [0.7, 0.5, 0.5]]
    )
    (result,) = round_trip([structure])
    assert result.same_composition and result.position_rmse < 1e-4


def test_compare_is_a_translation_free_rmse_over_matched_atoms():
    """Brute force: a rigid translation costs nothing; one atom of four moved by 0.2 Å gives
    sqrt(((0.15)^2 + 3 (0.05)^2) / 4) once the mean displacement is removed."""
    lattice = Lattice.cubic(4.0)
    original = Structure(
        lattice, ["V", "O", "O", "O"], [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]
    )
    shifted = original.copy()
    shifted.translate_sites(list(range(4)), [0.31, 0.12, 0.77])
    assert compare(original, shifted).position_rmse == pytest.approx(0.0, abs=1e-9)
    moved = shifted.copy()
    moved.translate_sites([2], [0.2, 0.0, 0.0], frac_coords=False)
    expected = math.sqrt((0.15**2 + 3 * 0.05**2) / 4)
    assert compare(original, moved).position_rmse == pytest.approx(expected, abs=1e-9)
    fewer = original.copy()
    fewer.remove_sites([3])
    result = compare(original, fewer)
    assert not result.same_composition and not result.fully_reconstructed()


def test_structures_the_images_cannot_hold_are_refused_by_name():
    rocksalt = Structure(Lattice.cubic(4.2), ["V", "O"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    with pytest.raises(RepresentationError, match="big-cell: 24 sites, at most 20"):
        basis_images(rocksalt * (2, 2, 3), name="big-cell")
    with pytest.raises(RepresentationError, match=r"long-cell: a lattice vector of 12\.600 Å"):
        basis_images(rocksalt * (1, 1, 3), name="long-cell")
    titanate = Structure(Lattice.cubic(4.2), ["Ti", "O"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    with pytest.raises(RepresentationError, match=r"TiO: elements \['Ti'\] have no channel"):
        encode(titanate)
    nan = Structure(Lattice.cubic(4.2), ["V", "O"], [[0, 0, 0], [np.nan, 0.5, 0.5]])
    with pytest.raises(
        RepresentationError, match=r"nan-site: NaN or inf coordinates at sites \[1\]"
    ):
        basis_images(nan, name="nan-site")
    with pytest.raises(RepresentationError, match="empty: empty structure"):
        basis_images(Structure(Lattice.cubic(4.2), [], []), name="empty")
    flat = Lattice([[4.0, 0, 0], [0, 4.0, 0], [4.0, 4.0, 0]])
    with pytest.raises(RepresentationError, match="flat: zero cell volume"):
        basis_images(Structure(flat, ["V"], [[0, 0, 0]]), name="flat")
    with pytest.raises(RepresentationError, match="no Gaussian along the lines"):
        lattice_from_cell_image(np.zeros((32, 32, 32)))
    with pytest.raises(RepresentationError, match="no atom in its basis images"):
        structure_from_images(cell_image(rocksalt.lattice), np.zeros((2, 64, 64, 64)))


def test_positions_come_back_across_the_periodic_box_edge(vo):
    """Peaks whose Gaussians wrap around the box's edge (the images rolled by half a box and a
    bit) are found and refined as well as anywhere else."""
    spec = ImageSpec(elements=("V", "O"))
    structure = vo.structures[0]
    images = basis_images(structure, spec)
    cart = box_positions(structure, spec)
    roll = spec.basis_grid // 2 + 3
    edges = []
    for channel, element in enumerate(spec.elements):
        rolled = np.roll(images[channel], roll, axis=(0, 1, 2))
        found = positions_from_basis_image(rolled, spec)
        expected = (
            cart[[s.specie.symbol == element for s in structure]] + roll * spec.voxel
        ) % spec.box
        assert len(found) == len(expected)
        delta = found[:, None, :] - expected[None, :, :]
        delta = (delta + spec.box / 2) % spec.box - spec.box / 2
        assert np.linalg.norm(delta, axis=-1).min(axis=1).max() < 1e-4
        edges.append(np.minimum(expected, spec.box - expected).min())
    assert min(edges) < spec.reach  # some Gaussian does wrap around the edge


def test_an_uneven_cell_stays_inside_the_box():
    """Four atoms at one face and one at the other (their centroid far from the middle of their
    extent): every atom stays in the box and comes back."""
    structure = Structure(
        Lattice.orthorhombic(10.0, 4.0, 4.0),
        ["V", "O", "O", "O", "O"],
        [[0.01, 0, 0], [0.01, 0.5, 0], [0.01, 0, 0.5], [0.01, 0.5, 0.5], [0.99, 0.25, 0.25]],
    )
    cart = box_positions(structure)
    assert (cart >= 0).all() and (cart < ImageSpec().box).all()
    (result,) = round_trip([structure])
    assert result.fully_reconstructed() and result.position_rmse < 1e-4


def test_a_chiral_crystal_in_a_left_handed_cell_keeps_its_hand():
    """Lattice parameters cannot tell the hands apart: a left-handed cell is taken as its
    right-handed equivalent, so a chiral crystal does not come back as its mirror image."""
    matrix = Lattice.from_parameters(5.1, 5.6, 6.2, 82.0, 97.0, 104.0).matrix
    species = ["V", "O", "O", "O"]
    frac = np.array([[0.0, 0.0, 0.0], [0.31, 0.08, 0.05], [0.12, 0.33, 0.21], [0.06, 0.17, 0.41]])
    left = Structure(Lattice(-matrix), species, frac)
    same = Structure(Lattice(matrix), species, -frac)  # the same Cartesian positions
    mirror = Structure(Lattice(matrix), species, frac)  # every position inverted
    assert compare(left, same).position_rmse < 1e-9
    assert compare(left, mirror).position_rmse > 0.1
    (result,) = round_trip([left])
    assert result.position_rmse < 1e-4


def test_a_noisy_cell_image_still_gives_its_lattice():
    """A decoded image is nowhere exactly zero: tiny values far from the centre (below the
    image's threshold) do not enter the fit."""
    lattice = Lattice.from_parameters(4.4, 5.2, 7.9, 85.0, 92.0, 117.0)
    image = cell_image(lattice)
    noisy = image + np.random.default_rng(0).uniform(0, 1e-4, image.shape).astype(np.float32)
    back = lattice_from_cell_image(noisy)
    np.testing.assert_allclose(back.abc, lattice.abc, atol=5e-3)
    np.testing.assert_allclose(back.angles, lattice.angles, atol=0.2)


def test_compare_matches_atoms_in_any_order(vo):
    """The decoded sites shuffled: the Hungarian matching pairs them again."""
    structure = vo.structures[-1]
    cell, basis = encode(structure)
    decoded = structure_from_images(cell, basis)
    order = np.random.default_rng(1).permutation(len(decoded))
    shuffled = Structure.from_sites([decoded[i] for i in order])
    assert compare(structure, shuffled).position_rmse < 1e-4


def test_lattice_errors_and_the_papers_tolerance_on_a_real_cell(vo):
    original = vo.structures[0].lattice
    a, b, c = original.abc
    alpha, beta, gamma = original.angles
    near = Lattice.from_parameters(a + 0.09, b - 0.05, c, alpha, beta + 1.9, gamma)
    errors = lattice_errors(original, near)
    assert np.allclose(errors, [0.09, -0.05, 0.0, 0.0, 1.9, 0.0], atol=1e-9)
    assert lattice_within(errors)
    assert not lattice_within(
        lattice_errors(original, Lattice.from_parameters(a, b, c + 0.11, alpha, beta, gamma))
    )
    assert not lattice_within(
        lattice_errors(original, Lattice.from_parameters(a, b, c, alpha, beta, gamma - 2.1))
    )
    assert lattice_within(lattice_errors(original, near), length_tol=0.095, angle_tol=1.95)
    assert not lattice_within(errors, length_tol=0.08)
    assert not lattice_within((0.0, float("nan"), 0.0, 0.0, 0.0, 0.0))
    assert not lattice_within((0.0, 0.0, 0.0, 0.0, 0.0, float("nan")))


def test_one_basis_channel_is_that_channel_of_all_of_them(vo):
    spec = ImageSpec()
    for structure, name in list(zip(vo.structures, vo.ids, strict=True))[:5]:
        both = basis_images(structure, spec, name)
        for channel in range(len(spec.elements)):
            assert np.array_equal(basis_image(structure, channel, spec, name), both[channel]), name
    with pytest.raises(ValueError, match="no basis channel 2"):
        basis_image(vo.structures[0], 2, spec, vo.ids[0])


def test_angles_that_close_no_cell_are_refused_not_a_singular_lattice():
    """A decoded cell image whose three angles are each possible but together close no cell
    (here all three 126.9 degrees, cos = -0.6) is refused in words, not made into a lattice
    of NaNs that fails deep in pymatgen."""
    spec = ImageSpec()
    m = spec.cell_grid
    cosine = -0.6
    metric = 25.0 * np.array([[1, cosine, cosine], [cosine, 1, cosine], [cosine, cosine, 1]])
    assert np.linalg.eigvalsh(metric).min() < 0  # no lattice has this metric
    steps = np.arange(m) / m - 0.5
    frac = np.stack(np.meshgrid(steps, steps, steps, indexing="ij"), axis=-1)
    squared = np.einsum("...i,ij,...j->...", frac, metric, frac)
    image = np.exp(-np.maximum(squared, 0.0) / (2 * spec.sigma**2)).astype(np.float32)
    with pytest.raises(RepresentationError, match=r"crafted: .* close no cell"):
        lattice_from_cell_image(image, spec, "crafted")
    # the same construction with a real lattice's metric gives that lattice back
    real = Lattice.from_parameters(5.0, 5.0, 5.0, 100.0, 100.0, 100.0)
    squared = np.einsum("...i,ij,...j->...", frac, real.metric_tensor, frac)
    image = np.exp(-squared / (2 * spec.sigma**2)).astype(np.float32)
    back = lattice_from_cell_image(image, spec, "real")
    np.testing.assert_allclose(back.abc, real.abc, rtol=1e-3)
    np.testing.assert_allclose(back.angles, real.angles, atol=0.05)
