"""Plots of inverse design, as PNG: the generator's latent space by PCA coloured by a property
(the paper's Figure 5) and a slice through a basis image beside its reconstruction."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def principal_components(x: np.ndarray, k: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """The rows of ``x`` on their first ``k`` principal components, and the share of the
    variance each component explains.

    Shapes:
        ``x [N, D]`` -> points ``[N, k]``, explained ``[k]``.
    """
    if x.ndim != 2 or len(x) < 2:
        raise ValueError(f"principal components need an [N >= 2, D] array, got {list(x.shape)}")
    centred = x - x.mean(axis=0)
    _, singular, vt = np.linalg.svd(centred, full_matrices=False)
    return centred @ vt[:k].T, singular[:k] ** 2 / np.sum(singular**2)


def latent_pca_plot(
    mu: np.ndarray,
    values: np.ndarray,
    path: str | Path,
    label: str,
    title: str = "",
    project: bool = True,
) -> np.ndarray:
    """The latent vectors' first two principal components, coloured by ``values`` (NaN: grey);
    returns the projected ``[N, 2]`` points. ``project=False``: ``mu`` are those points already.

    Shapes:
        ``mu [N, latent]`` (``[N, 2]`` without ``project``), ``values [N]``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if project:
        points, _ = principal_components(mu)
    elif mu.ndim != 2 or mu.shape[1] != 2:
        raise ValueError(f"projected points must be [N, 2], got {list(mu.shape)}")
    else:
        points = mu
    known = np.isfinite(values)
    fig, ax = plt.subplots(figsize=(6.4, 4.8))
    ax.scatter(*points[~known].T, s=6, c="lightgrey", label="no label")
    shown = ax.scatter(*points[known].T, s=6, c=values[known], cmap="viridis")
    fig.colorbar(shown, ax=ax, label=label)
    ax.set_xlabel("PC 1")
    ax.set_ylabel("PC 2")
    ax.set_title(title or "generator latent space (mu), PCA", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return points


def image_slice_plot(original: np.ndarray, decoded: np.ndarray, path: str | Path) -> None:
    """The slice through the brightest voxel of a basis image, original beside decoded."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    k = int(np.unravel_index(np.argmax(original), original.shape)[2])
    fig, axes = plt.subplots(1, 2, figsize=(6, 3))
    for ax, image, name in zip(axes, (original, decoded), ("original", "decoded"), strict=True):
        ax.imshow(image[:, :, k].T, origin="lower", vmin=0, vmax=1, cmap="magma")
        ax.set_title(f"{name}, z = {k}")
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
