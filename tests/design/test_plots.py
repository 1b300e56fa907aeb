"""The latent-space PCA of the design plots, against data with known components."""

from __future__ import annotations

import numpy as np
import pytest

from matgnn.design.plots import latent_pca_plot, principal_components


def _plane_in_5d(n: int = 200) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    basis, _ = np.linalg.qr(rng.normal(size=(5, 2)))  # two orthonormal directions in 5D
    coords = rng.normal(size=(n, 2)) * np.array([3.0, 1.0])
    coords -= coords.mean(axis=0)
    return coords @ basis.T + np.array([1.0, -2.0, 0.5, 4.0, 0.0]), coords


def test_principal_components_recover_the_plane_and_its_variance_shares():
    x, coords = _plane_in_5d()
    points, explained = principal_components(x)
    # the same plane: the projection keeps every distance between points
    assert np.allclose(np.linalg.norm(points, axis=1), np.linalg.norm(coords, axis=1))
    variances = points.var(axis=0)
    assert variances[0] > variances[1]
    assert np.allclose(explained, variances / variances.sum())
    assert explained.sum() == pytest.approx(1.0)


def test_principal_components_refuse_a_single_row():
    with pytest.raises(ValueError, match="N >= 2"):
        principal_components(np.ones((1, 4)))


def test_latent_pca_plot_writes_a_png_of_the_projected_points(tmp_path):
    x, _ = _plane_in_5d(50)
    values = np.linspace(0, 1, 50)
    values[:5] = np.nan  # unlabelled, drawn grey
    path = tmp_path / "pca.png"
    points = latent_pca_plot(x, values, path, "label")
    assert np.allclose(points, principal_components(x)[0])
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match=r"\[N, 2\]"):
        latent_pca_plot(x, values, path, "label", project=False)
