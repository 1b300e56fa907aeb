"""Sampling new crystals from a trained materials generator (Noh et al. 2019, "Generation").

Four ways to choose latent vectors (:func:`latents`):

* ``gaussian``: around a known structure, ``z = mu(structure) + sigma * eps`` (the paper's
  rediscovery and local search);
* ``random``: ``z ~ N(0, I)``, the VAE's prior;
* ``fitted``: ``z ~ N(m, C)``, the Gaussian with the mean and covariance of the given (training)
  structures' latent means: where the data lie when the learned latents do not fill the prior
  (a generator trained with a small KL weight);
* ``slerp``: spherical linear interpolation between two structures' latent vectors.

:func:`generate` decodes each latent to codes, the codes to images through the two
autoencoders and the images to a crystal (:func:`~matgnn.design.codes.decode_codes`), and
tabulates each: the composition, V's oxidation state if O is -2 (the paper's validity check:
+2 to +5), the generator's property prediction (its own head's, named as such: the value of a
scalar, the probability of the last class of a classifier), or why nothing came back.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from pymatgen.core import Structure

from matgnn.design.codes import decode_codes
from matgnn.design.images import ImageSpec
from matgnn.design.networks import ImageAutoencoder, MaterialsGenerator

MODES = ("gaussian", "random", "fitted", "slerp")
#: V's oxidation states the paper counts as valid (O at -2)
VALID_V_STATES = (2.0, 5.0)


def slerp(z0: torch.Tensor, z1: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical linear interpolation from ``z0`` (t = 0) to ``z1`` (t = 1); linear when the
    two are (anti)parallel.

    Shapes:
        ``[D]``, ``[D]``, ``[T]`` -> ``[T, D]``.
    """
    cos = torch.dot(z0, z1) / (z0.norm() * z1.norm()).clamp_min(1e-12)
    omega = torch.arccos(cos.clamp(-1.0, 1.0))
    t = t[:, None]
    if omega.abs() < 1e-6 or (math.pi - omega).abs() < 1e-6:
        return (1 - t) * z0 + t * z1
    return (torch.sin((1 - t) * omega) * z0 + torch.sin(t * omega) * z1) / torch.sin(omega)


@torch.no_grad()
def latents(
    generator: MaterialsGenerator,
    mode: str,
    count: int,
    codes: torch.Tensor | None = None,
    sigma: float = 0.1,
    seed: int = 0,
) -> torch.Tensor:
    """``count`` latent vectors (per structure for ``gaussian``).

    Args:
        generator: the trained generator (eval mode).
        mode: one of :data:`MODES`.
        count: vectors per structure (``gaussian``), in all (``random``, ``fitted``), or
            points on the path including both ends (``slerp``).
        codes: the structures' codes ``[S, channels, length]``: any number for ``gaussian``,
            two for ``slerp``, at least two for ``fitted`` (the structures whose latent means
            the Gaussian is fitted to), none for ``random``.
        sigma: the spread of ``gaussian`` around each structure's ``mu``.
        seed: the random generator's seed.

    Shapes:
        -> ``[S * count, latent]`` (gaussian) or ``[count, latent]``.
    """
    if mode not in MODES:
        raise ValueError(f"sampling mode must be one of {MODES}, got {mode!r}")
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    generator.eval()
    rng = torch.Generator().manual_seed(seed)
    if mode == "random":
        return torch.randn(count, generator.latent, generator=rng)
    if codes is None or not len(codes):
        raise ValueError(f"sampling mode {mode!r} needs the codes of known structures")
    mu, _ = generator.encode(codes)
    if mode == "fitted":
        return _fitted_gaussian(mu, count, rng)
    if mode == "slerp":
        if len(mu) != 2:
            raise ValueError(f"slerp interpolates between two structures, got {len(mu)}")
        return slerp(mu[0], mu[1], torch.linspace(0.0, 1.0, count))
    noise = torch.randn(len(mu), count, generator.latent, generator=rng)
    return (mu[:, None, :] + sigma * noise).reshape(-1, generator.latent)


def _fitted_gaussian(mu: torch.Tensor, count: int, rng: torch.Generator) -> torch.Tensor:
    """``count`` draws from the Gaussian with the mean and covariance of the rows of ``mu``
    (a tiny jitter on the diagonal keeps fewer rows than dimensions factorisable)."""
    if len(mu) < 2:
        raise ValueError(
            f"fitted sampling needs the codes of at least two structures, got {len(mu)}"
        )
    data = mu.double()
    mean = data.mean(0)
    centred = data - mean
    covariance = centred.T @ centred / (len(data) - 1)
    jitter = 1e-9 * float(covariance.diagonal().mean()) + 1e-12
    factor = torch.linalg.cholesky(covariance + jitter * torch.eye(len(mean), dtype=data.dtype))
    noise = torch.randn(count, len(mean), generator=rng, dtype=data.dtype)
    return (mean + noise @ factor.T).to(mu.dtype)


def vanadium_oxidation_state(structure: Structure) -> float:
    """V's mean oxidation state with O at -2 (NaN without V)."""
    composition = structure.composition
    vanadium = composition["V"]
    return 2.0 * composition["O"] / vanadium if vanadium else math.nan


#: atoms closer than this (Å) overlap where the basis run's ``decoding.json`` has no cut
#: calibrated on its validation decodings (:mod:`matgnn.design.decoding`): no V-O bond is
#: shorter than about 1.6 Å, and O-O and V-V distances in the oxides are longer still. Strict
#: for decoded crystals, whose positions are off by about 0.1 Å: a real structure decoded with
#: a short bond falls under it too
OVERLAP = 1.5


def shortest_distance(structure: Structure) -> float:
    """The shortest distance between two atoms of a crystal, periodic images included (an
    atom and its own image: the shortest vector of the Niggli-reduced lattice), Å."""
    distances = structure.distance_matrix.copy()
    np.fill_diagonal(distances, np.inf)
    shortest_vector = float(min(structure.lattice.get_niggli_reduced_lattice().abc))
    return float(min(distances.min(initial=np.inf), shortest_vector))


@torch.no_grad()
def generate(
    generator: MaterialsGenerator,
    cell_network: ImageAutoencoder,
    basis_network: ImageAutoencoder,
    z: torch.Tensor,
    spec: ImageSpec = ImageSpec(),
    names: Sequence[str] | None = None,
) -> tuple[pd.DataFrame, list[Structure | None]]:
    """Decode latent vectors to crystals: the table (one row per vector: formula, sites, V's
    oxidation state, ``min_distance`` (:func:`shortest_distance`, a decoding's sanity: atoms
    closer than the overlap cut overlap), the generator's property) and the structures
    (``None`` where nothing came back)."""
    generator.eval()
    names = list(names or [f"gen-{k:05d}" for k in range(len(z))])
    codes = generator.decode(z)
    decoded = decode_codes(codes, cell_network, basis_network, spec, names)
    prediction = None
    if generator.head is not None:
        prediction = generator.output.present(generator.predict_property(z)).numpy()
    rows, structures = [], []
    for k, (name, made) in enumerate(zip(names, decoded, strict=True)):
        row: dict[str, object] = {"id": name}
        if isinstance(made, Structure):
            state = vanadium_oxidation_state(made)
            low, high = VALID_V_STATES
            row.update(
                decoded=True,
                reason="",
                formula=made.composition.reduced_formula,
                sites=len(made),
                v_oxidation_state=state,
                valid_oxidation_state=bool(low <= state <= high),
                min_distance=shortest_distance(made),
            )
            structures.append(made)
        else:
            row.update(
                decoded=False,
                reason=made,
                formula="",
                sites=0,
                v_oxidation_state=math.nan,
                valid_oxidation_state=False,
                min_distance=math.nan,
            )
            structures.append(None)
        if prediction is not None:
            value = prediction[k]
            if np.ndim(value):  # a classifier's probabilities: the last class's
                name = generator.output.classes[-1] if generator.output.classes else "1"
                column = f"probability_{name}__predicted_by__generator"
                row[column] = float(value[-1])
            else:
                row[f"{generator.output.name}__predicted_by__generator"] = float(value)
        rows.append(row)
    return pd.DataFrame(rows), structures


def mark_overlapping(frame: pd.DataFrame, cut: float) -> pd.DataFrame:
    """``frame`` (of :func:`generate`) with an ``overlapping`` column after ``min_distance``:
    whether a decoded crystal has two atoms closer than ``cut`` Å (no crystal a model can
    judge; False where nothing was decoded)."""
    flags = frame["decoded"].astype(bool) & (frame["min_distance"] < cut)
    marked = frame.drop(columns="overlapping", errors="ignore")
    marked.insert(marked.columns.get_loc("min_distance") + 1, "overlapping", flags)
    return marked


def write_generated(
    frame: pd.DataFrame, structures: Sequence[Structure | None], output_dir: str | Path
) -> Path:
    """``<output_dir>/generated.csv`` and one CIF per decoded crystal in ``cifs/``."""
    output_dir = Path(output_dir)
    (output_dir / "cifs").mkdir(parents=True, exist_ok=True)
    files = []
    for name, structure in zip(frame["id"], structures, strict=True):
        if structure is None:
            files.append("")
            continue
        path = output_dir / "cifs" / f"{name}.cif"
        structure.to(filename=str(path))
        files.append(str(path.relative_to(output_dir)))
    frame = frame.assign(cif=files)
    table = output_dir / "generated.csv"
    frame.to_csv(table, index=False)
    return table
