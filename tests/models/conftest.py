"""Model tests run in float64 so that invariance can be checked to 1e-8."""

from __future__ import annotations

import pytest
import torch

from tests.conftest import random_structure


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
