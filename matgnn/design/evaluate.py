"""How well iMatGen's autoencoders reconstruct crystals (the paper's Table 1).

:func:`reconstruct` passes each structure's cell image through the cell autoencoder and each
basis image through the basis autoencoder, decodes the crystal from the reconstructed images
(:func:`~matgnn.design.images.structure_from_images`) and compares it with the original
(:func:`~matgnn.design.images.compare`). :func:`summarise` gives Table 1's numbers: the RMSE of
each lattice parameter, the position RMSE and the fraction fully reconstructed (within 0.1 Å
and 2 degrees, every atom back). A structure that cannot be decoded (no atom found, no cell
signal) is a row with its reason: it counts as not reconstructed and is never dropped.
:func:`reconstruct_codes` does the same from stored autoencoder codes, optionally passed
through the materials generator first: what the generator loses of what the autoencoders keep.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import pandas as pd
import torch
from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.core import Structure

from matgnn.design.codes import decode_codes
from matgnn.design.generate import shortest_distance
from matgnn.design.images import (
    ImageSpec,
    RepresentationError,
    basis_images,
    cell_image,
    compare,
    local_maxima,
    standard_lattice,
    structure_from_images,
)
from matgnn.design.networks import ImageAutoencoder, MaterialsGenerator
from matgnn.design.vo_dataset import VODataset

#: the lattice parameters of Table 1, in :class:`~matgnn.design.images.Reconstruction` order
PARAMETERS = ("a", "b", "c", "alpha", "beta", "gamma")


@torch.no_grad()
def _through(network: ImageAutoencoder | None, images: np.ndarray) -> np.ndarray:
    """``[N, g, g, g]`` images -> their reconstructions, float32 (``None``: the images as they
    are, the representation alone)."""
    if network is None:
        return np.asarray(images, dtype=np.float32)
    batch = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32))[:, None]
    return network(batch)[:, 0].numpy()


def reconstruct(
    data: VODataset,
    rows: Sequence[int],
    cell_network: ImageAutoencoder | None,
    basis_network: ImageAutoencoder | None,
    spec: ImageSpec = ImageSpec(),
) -> pd.DataFrame:
    """One row per structure: ``id``, ``decoded`` (whether a crystal came back), ``reason``
    (why not), the six lattice errors (``error_a`` ... ``error_gamma``), ``position_rmse``,
    ``same_composition``, ``fully_reconstructed``, ``matches`` (pymatgen's
    ``StructureMatcher`` with its default tolerances takes the decoded crystal for the
    original: the rediscovery test's criterion, looser than "fully reconstructed") and
    ``min_distance`` (the decoded crystal's shortest interatomic distance, Å). A network
    given as ``None`` leaves its images exact, so each autoencoder's own share of the failures
    can be measured."""
    setting = (spec.peak_threshold, spec.merge_saddle)
    frame = sweep_decodings(data, rows, cell_network, basis_network, spec, (setting,))
    return frame.drop(columns=["threshold", "merge_saddle"], errors="ignore")


def sweep_decodings(
    data: VODataset,
    rows: Sequence[int],
    cell_network: ImageAutoencoder | None,
    basis_network: ImageAutoencoder | None,
    spec: ImageSpec,
    settings: Sequence[tuple[float, float | None]],
) -> pd.DataFrame:
    """:func:`reconstruct`'s rows at each decoding setting of the basis images (``(peak
    threshold, merge saddle)``, :class:`~matgnn.design.images.ImageSpec`; two more columns,
    ``threshold`` and ``merge_saddle``, NaN for none): each structure's images pass the
    networks once, their maxima are found once, and a crystal decoded alike at two settings is
    compared once (:mod:`matgnn.design.decoding` chooses the setting on validation
    structures)."""
    if not settings:
        raise ValueError("no decoding settings to sweep")
    floor = min(threshold for threshold, _ in settings)
    matcher = StructureMatcher()
    for network in (cell_network, basis_network):
        if network is not None:
            network.eval()
    out = []
    for row in rows:
        structure, name = data.structures[row], data.ids[row]
        cell = _through(cell_network, cell_image(standard_lattice(structure.lattice), spec)[None])
        basis = _through(basis_network, basis_images(structure, spec, name))
        maxima = [local_maxima(image, floor) for image in basis]
        seen: dict[object, dict[str, object]] = {}
        for threshold, saddle in settings:
            setting = replace(spec, peak_threshold=float(threshold), merge_saddle=saddle)
            try:
                decoded: Structure | str = structure_from_images(
                    cell[0], basis, setting, name, maxima
                )
                key: object = (
                    tuple(str(s) for s in decoded.species),
                    np.round(decoded.frac_coords, 9).tobytes(),
                )
            except RepresentationError as exc:
                decoded = key = str(exc)
            if key not in seen:
                seen[key] = _record(structure, name, data.known[row], decoded, matcher)
            saddle_column = math.nan if saddle is None else float(saddle)
            out.append({**seen[key], "threshold": float(threshold), "merge_saddle": saddle_column})
    return pd.DataFrame(out)


@torch.no_grad()
def reconstruct_codes(
    data: VODataset,
    rows: Sequence[int],
    codes: torch.Tensor,
    cell_network: ImageAutoencoder,
    basis_network: ImageAutoencoder,
    generator: MaterialsGenerator | None = None,
    spec: ImageSpec = ImageSpec(),
) -> pd.DataFrame:
    """:func:`reconstruct`'s rows from the structures' autoencoder codes (``codes``,
    ``[len(rows), channels + 1, length]``, as :func:`~matgnn.design.codes.encode_structures`
    makes them), decoded by the autoencoders; with a ``generator``, first through its encoder
    to the latent mean and back through its decoder: the whole chain the rediscovery test
    relies on. A generator that keeps what the autoencoders encode gives the same numbers as
    without; what it loses shows here. One more column, ``code_error``: the squared error the
    generator leaves in each structure's code, summed over it (0 without a generator)."""
    if len(codes) != len(rows):
        raise ValueError(f"{len(codes)} codes for {len(rows)} structures")
    error = torch.zeros(len(codes))
    if generator is not None:
        generator.eval()
        mu, _ = generator.encode(codes)
        through = generator.decode(mu)
        error = ((through - codes) ** 2).sum((1, 2))
        codes = through
    names = [data.ids[row] for row in rows]
    decoded = decode_codes(codes, cell_network, basis_network, spec, names)
    matcher = StructureMatcher()
    frame = pd.DataFrame(
        [
            _record(data.structures[row], data.ids[row], data.known[row], made, matcher)
            for row, made in zip(rows, decoded, strict=True)
        ]
    )
    frame["code_error"] = error.numpy().astype(float)
    return frame


def _record(
    structure: Structure,
    name: str,
    known: bool,
    decoded: Structure | str,
    matcher: StructureMatcher,
) -> dict[str, object]:
    """One :func:`reconstruct` row: the decoded crystal compared with the original, or the
    reason (a string) why none came back."""
    record: dict[str, object] = {"id": name, "known_vo": known}
    if isinstance(decoded, str):
        record.update(decoded=False, reason=decoded, same_composition=False)
        record.update({f"error_{p}": math.nan for p in PARAMETERS})
        record.update(position_rmse=math.nan, fully_reconstructed=False, matches=False)
        record.update(min_distance=math.nan)
        return record
    result = compare(structure, decoded)
    record.update(decoded=True, reason="", same_composition=result.same_composition)
    record.update({f"error_{p}": e for p, e in zip(PARAMETERS, result.lattice_errors, strict=True)})
    record.update(
        position_rmse=result.position_rmse,
        fully_reconstructed=result.fully_reconstructed(),
        matches=bool(matcher.fit(structure, decoded)),
        min_distance=shortest_distance(decoded),
    )
    return record


def summarise(frame: pd.DataFrame) -> dict[str, float]:
    """Table 1 of a :func:`reconstruct` frame: ``structures``, ``decoded``, ``rmse_<p>`` over
    the decoded structures, ``position_rmse`` (root mean square over those with every atom
    back, ``same_composition`` of them), ``fully_reconstructed`` (count) and its fraction of
    all structures, and ``matches`` (count; absent for rows without that column)."""
    decoded = frame[frame["decoded"]]
    matched = frame[frame["same_composition"]]
    summary: dict[str, float] = {"structures": len(frame), "decoded": len(decoded)}
    for p in PARAMETERS:
        errors = decoded[f"error_{p}"].to_numpy(dtype=float)
        summary[f"rmse_{p}"] = float(np.sqrt(np.mean(errors**2))) if len(errors) else math.nan
    rmse = matched["position_rmse"].to_numpy(dtype=float)
    summary["same_composition"] = len(matched)
    summary["position_rmse"] = float(np.sqrt(np.mean(rmse**2))) if len(rmse) else math.nan
    summary["fully_reconstructed"] = int(frame["fully_reconstructed"].sum())
    summary["fully_reconstructed_fraction"] = (
        summary["fully_reconstructed"] / len(frame) if len(frame) else math.nan
    )
    if "matches" in frame:  # rows written before the column have none
        summary["matches"] = int(frame["matches"].sum())
    return summary
