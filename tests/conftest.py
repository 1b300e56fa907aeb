"""Shared fixtures: real MP structures (shipped sample), random triclinic cells, and float64 for
the symmetry tests (so that invariance can be checked to 1e-8)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pymatgen.core import Lattice, Structure

from matgnn.data.samples import mp_sample_structures


def random_structure(
    seed: int, num_atoms: int, lattice: Lattice | None = None, min_dist: float = 1.0
) -> Structure:
    """Random atoms (kept >= min_dist apart, periodic images included) in a triclinic cell."""
    rng = np.random.default_rng(seed)
    if lattice is None:
        a, b, c = rng.uniform(3.0, 7.0, size=3)
        alpha, beta, gamma = rng.uniform(60.0, 120.0, size=3)
        lattice = Lattice.from_parameters(a, b, c, alpha, beta, gamma)
    species: list[str] = []
    coords: list[np.ndarray] = []
    elements = ["Li", "O", "Si", "Fe", "Cs"]
    while len(coords) < num_atoms:
        trial = rng.random(3)
        candidate = Structure(lattice, [*species, "H"], [*coords, trial])
        if len(coords) == 0 or candidate.distance_matrix[-1, :-1].min() >= min_dist:
            species.append(elements[len(coords) % len(elements)])
            coords.append(trial)
    return Structure(lattice, species, coords)


@pytest.fixture(scope="session")
def mp_structures() -> list[Structure]:
    return mp_sample_structures(40)[1]


@pytest.fixture(scope="session")
def skewed_structure() -> Structure:
    """A very skewed (but valid) triclinic cell: b and c lean far over a (angles ~15-25 deg)."""
    lattice = Lattice([[3.1, 0.0, 0.0], [8.6, 2.1, 0.0], [-6.2, 1.4, 2.3]])
    return random_structure(11, 5, lattice, min_dist=0.9)


@pytest.fixture(scope="session")
def large_structure() -> Structure:
    """A 200+ atom cell: a real MP structure repeated to more than 200 atoms."""
    _, structures = mp_sample_structures(60)
    base = next(s for s in structures if 6 <= len(s) <= 12)
    repeats = int(np.ceil((201 / len(base)) ** (1 / 3)))
    supercell = base * (repeats, repeats, repeats)
    assert len(supercell) >= 200
    return supercell


@pytest.fixture(scope="session")
def shared_data_dir():
    """``$MATGNN_DATA_DIR`` or ``../shared/data`` next to the checkout; tests that read the full
    real sets skip (with this reason) on a fresh clone without it."""
    import os
    from pathlib import Path

    path = Path(
        os.environ.get("MATGNN_DATA_DIR", Path(__file__).resolve().parents[2] / "shared" / "data")
    )
    if not path.is_dir():
        pytest.skip(f"needs the shared data folder {path}")
    return path


@pytest.fixture(scope="session")
def mini_data_dir():
    """``tests/data/mini``: small real subsets of ``../shared/data`` in its layout
    (``scripts/make_test_data.py``; provenance in its ``PROVENANCE.md``), so that every
    local-copy loader runs on a fresh clone too."""
    from pathlib import Path

    path = Path(__file__).resolve().parent / "data" / "mini"
    assert (path / "PROVENANCE.md").is_file(), f"{path}: run scripts/make_test_data.py"
    return path


@pytest.fixture
def float64():
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


@pytest.fixture(scope="session")
def small_structures(mp_structures):
    """Three real MP structures of 2-8 atoms and two random triclinic cells (no symmetry, so a
    rotation cannot hide behind a symmetric output); small enough for 4 M-parameter models."""
    picked = [s for s in mp_structures if 2 <= len(s) <= 8][:3]
    assert len(picked) == 3
    return [*picked, random_structure(3, 5), random_structure(4, 4)]


@pytest.fixture(scope="session")
def device() -> torch.device:
    """The device of the device-sensitive tests (tests/models: fused kernels, autocast,
    gradients): ``$MATGNN_TEST_DEVICE`` (``benchmarks/gpu_check.sh`` sets ``cuda:0``), the CPU
    by default."""
    import os

    chosen = torch.device(os.environ.get("MATGNN_TEST_DEVICE", "cpu"))
    if chosen.type == "cuda" and not torch.cuda.is_available():
        pytest.fail(f"MATGNN_TEST_DEVICE={chosen}, but torch sees no CUDA device")
    return chosen


@pytest.fixture
def probe(tmp_path, monkeypatch):
    """The flag file of :mod:`tests.marker_probe`'s module, planted on the path: it must never
    exist after a refusal."""
    from tests.marker_probe import plant

    return plant(tmp_path, monkeypatch)
