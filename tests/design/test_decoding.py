"""How decoded basis images are decoded (peak threshold, merge saddle, overlap cut): chosen on a
sweep's counts, stored as data, read back with refusals; what a decoded image with a lowered
atom peak gives at each threshold; shoulders merged, real atoms never."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch
from pymatgen.core import Lattice, Structure

from matgnn.design.decoding import (
    DECODING,
    SADDLES,
    Decoding,
    choose_decoding,
    read_decoding,
    write_decoding,
)
from matgnn.design.evaluate import reconstruct, sweep_decodings
from matgnn.design.generate import shortest_distance
from matgnn.design.images import ImageSpec, positions_from_basis_image
from matgnn.design.vo_dataset import vo_sample


def _sweep(counts: dict[tuple[float, float | None], tuple[int, int]]) -> pd.DataFrame:
    """A sweep frame whose (threshold, merge saddle) settings have the given (fully
    reconstructed, matched) counts over four structures; the matched ones' shortest distances
    1.0, 1.3, 1.4, 1.5 Å."""
    rows = []
    for (threshold, saddle), (full, matched) in counts.items():
        for k in range(4):
            rows.append({"id": f"s{k}", "threshold": threshold,
                         "merge_saddle": np.nan if saddle is None else saddle,
                         "same_composition": k < matched, "fully_reconstructed": k < full,
                         "matches": k < matched,
                         "min_distance": (1.0, 1.3, 1.4, 1.5)[k]})  # fmt: skip
    return pd.DataFrame(rows)


def test_the_choice_ranks_full_reconstructions_matches_the_higher_threshold_less_merging():
    def chosen(counts):
        return choose_decoding(_sweep(counts))

    first = {(0.02, None): (2, 4), (0.1, None): (3, 3), (0.3, None): (2, 2)}
    assert chosen(first) == Decoding(0.1)
    assert chosen({**first, (0.1, None): (2, 3)}) == Decoding(0.02)
    assert chosen({(0.02, None): (2, 3), (0.1, None): (2, 3), (0.3, None): (1, 3)}) == Decoding(0.1)
    # ties between merge saddles go to no merging, then to the higher saddle (less merging)
    assert chosen({(0.1, None): (2, 3), (0.1, 0.9): (2, 3), (0.1, 0.5): (2, 3)}) == Decoding(0.1)
    assert chosen({(0.1, 0.9): (2, 3), (0.1, 0.5): (2, 3)}) == Decoding(0.1, 0.9)
    assert chosen({(0.1, None): (2, 3), (0.1, 0.5): (3, 3)}) == Decoding(0.1, 0.5)
    with pytest.raises(ValueError, match="no structures"):
        choose_decoding(_sweep({}))


def test_a_chosen_decoding_is_stored_as_data_and_read_back_with_refusals(tmp_path):
    assert read_decoding(tmp_path) is None
    checkpoints = {"basis_sha256": "b" * 64, "cell_run": "cell", "cell_sha256": "c" * 64}
    sweep = _sweep({(0.02, 0.75): (2, 4), (0.3, None): (2, 2)})
    record = write_decoding(tmp_path, sweep, "4 structures", checkpoints)
    assert record == json.loads((tmp_path / DECODING).read_text())
    assert record["peak_threshold"] == 0.02 and record["merge_saddle"] == 0.75
    assert record["structures"] == 4
    assert record["basis_sha256"] == "b" * 64 and record["cell_sha256"] == "c" * 64
    # the 1% quantile of the matched crystals' shortest distances (1.0 .. 1.5), floored
    assert record["overlap_cut"] == 1.0 and record["overlap"]["matched_crystals"] == 4
    assert read_decoding(tmp_path, "b" * 64, "c" * 64) == Decoding(0.02, 0.75, 1.0)
    # chosen through another basis or cell checkpoint (retrained since): refused, not applied
    with pytest.raises(ValueError, match="through another basis checkpoint"):
        read_decoding(tmp_path, "a" * 64)
    with pytest.raises(ValueError, match="through another cell checkpoint"):
        read_decoding(tmp_path, "b" * 64, "a" * 64)
    assert record["counts"]["0.3/none"] == {"same_composition": 2, "fully_reconstructed": 2,
                                            "matches": 2}  # fmt: skip
    assert read_decoding(tmp_path).applied(ImageSpec()) == replace(
        ImageSpec(), peak_threshold=0.02, merge_saddle=0.75
    )
    # chosen without merging (the cut read from the rows without a saddle); nothing matched
    unmerged = write_decoding(tmp_path, _sweep({(0.1, None): (3, 3), (0.1, 0.7): (2, 4)}), "", {})
    assert unmerged["merge_saddle"] is None and unmerged["overlap"]["matched_crystals"] == 3
    assert unmerged["overlap_cut"] == 1.0
    nothing = write_decoding(tmp_path, _sweep({(0.1, None): (0, 0)}), "", {})
    assert nothing["overlap_cut"] is None and read_decoding(tmp_path) == Decoding(0.1)
    (tmp_path / DECODING).write_text('{"peak_threshold": 0.02}')  # no checkpoint recorded
    assert read_decoding(tmp_path) == Decoding(0.02)
    for kind, given in (("basis", ("b" * 64, None)), ("cell", (None, "c" * 64))):
        with pytest.raises(ValueError, match=f"records no {kind} checkpoint"):
            read_decoding(tmp_path, *given)
    for bad, message in (
        ('{"peak_threshold": "__import__"}', "is not a number"),
        ('{"peak_threshold": true}', "is not a number"),
        ('{"peak_threshold": 1.5}', r"is not in \(0, 1\)"),
        ('{"peak_threshold": NaN}', r"is not in \(0, 1\)"),
        ('{"peak_threshold": 0.1, "merge_saddle": 0}', r"merge_saddle 0 is not in \(0, 1\]"),
        ('{"peak_threshold": 0.1, "merge_saddle": "os"}', "merge_saddle 'os' is not a number"),
        ('{"peak_threshold": 0.1, "overlap_cut": -1}', r"overlap_cut -1 is not in \(0, 5\)"),
        ("{}", "no peak_threshold"),
        ("not json", "no peak_threshold"),
    ):
        (tmp_path / DECODING).write_text(bad)
        with pytest.raises(ValueError, match=message):
            read_decoding(tmp_path)


class _Dimmed(torch.nn.Module):
    """A basis 'autoencoder' that returns its images with every value scaled by ``factor``:
    a reconstruction whose atom peaks came out low."""

    def __init__(self, factor: float) -> None:
        super().__init__()
        self.factor = factor

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return images * self.factor


def test_a_sweep_finds_the_atoms_whose_peaks_a_network_lowered():
    """Peaks scaled to a tenth (0.074 and up) are lost at 0.3 and all found at 0.05: the sweep
    decodes each structure at every setting, and the choice takes the lower threshold; merging
    changes nothing in these images (real atoms, no shoulders), so no merging is chosen."""
    sample = vo_sample()
    rows = list(range(4))
    spec = ImageSpec()
    settings = [(0.05, None), (0.05, 0.6), (0.3, None)]
    frame = sweep_decodings(sample, rows, None, _Dimmed(0.1), spec, settings)
    assert len(frame) == 3 * len(rows) and set(frame["threshold"]) == {0.05, 0.3}
    low, merged, high = (
        frame[(frame["threshold"] == t) & (frame["merge_saddle"].fillna(0) == (m or 0))]
        for t, m in settings
    )
    assert low["fully_reconstructed"].all() and low["matches"].all()
    assert not high["decoded"].any() and high["reason"].str.contains("no atom").all()
    assert choose_decoding(frame) == Decoding(0.05)
    columns = ["position_rmse", "min_distance", "fully_reconstructed"]
    assert np.array_equal(merged[columns].to_numpy(), low[columns].to_numpy())
    # the same rows as reconstruct gives at that threshold
    direct = reconstruct(sample, rows, None, _Dimmed(0.1), replace(spec, peak_threshold=0.05))
    kept = low.drop(columns=["threshold", "merge_saddle"]).reset_index(drop=True)
    assert kept.equals(direct)
    originals = [shortest_distance(sample.structures[row]) for row in rows]
    assert np.allclose(direct["min_distance"], originals, atol=1e-3)


def test_merging_keeps_real_atoms_one_angstrom_apart_and_drops_a_shoulder():
    """Two exact atoms of one channel 1.0-1.5 Å apart (closer than any same-element pair in
    the oxides), placed at random sub-voxel offsets along random directions (the sampled path's
    lowest value relative to the lower peak depends on both, up to about 0.48 at 1 Å), decode
    as two atoms at every merge saddle compared and at 0.5; a bump on the flank of a Gaussian
    with a maximum of its own (a split peak, as an autoencoder makes) is one atom with merging
    at the lowest saddle compared and two without."""
    spec = ImageSpec()
    grid = np.indices((64, 64, 64)).reshape(3, -1).T * spec.voxel
    rng = np.random.default_rng(0)

    def gaussian(at: np.ndarray) -> np.ndarray:
        squared = ((grid - at) ** 2).sum(-1)
        return np.exp(-squared / (2 * spec.sigma**2)).reshape(64, 64, 64)

    saddles = [*SADDLES, 0.5]
    for _ in range(8):
        centre = spec.box / 2 + rng.uniform(0, spec.voxel, 3)
        along = rng.normal(size=3)
        along /= np.linalg.norm(along)
        for distance in (1.0, 1.2, 1.5):
            image = gaussian(centre) + gaussian(centre + distance * along)
            image[image < spec.threshold] = 0
            for saddle in saddles:
                found = positions_from_basis_image(image, replace(spec, merge_saddle=saddle))
                assert len(found) == 2, (centre, along, distance, saddle)
    # a shoulder: the voxel 0.45 Å from the peak raised just above its 26 neighbours
    image = gaussian(centre)
    voxel = tuple(np.round((centre + 0.45 * along) / spec.voxel).astype(int))
    bump = np.zeros_like(image)
    around = image[tuple(slice(v - 1, v + 2) for v in voxel)]
    bump[voxel] = around.max() - image[voxel] + 0.01
    shouldered = image + bump
    assert len(positions_from_basis_image(shouldered, replace(spec, peak_threshold=0.02))) == 2
    lowest = min(s for s in SADDLES if s is not None)
    merged = positions_from_basis_image(
        shouldered, replace(spec, peak_threshold=0.02, merge_saddle=lowest)
    )
    assert len(merged) == 1
    assert np.linalg.norm(merged[0] - centre) < 0.05


def test_shortest_distance_sees_periodic_images_and_a_skewed_cell():
    """Two atoms close across the cell boundary; one atom in a cell whose shortest lattice
    vector is a - b, not a, b or c (the Niggli-reduced lattice finds it)."""
    pair = Structure(Lattice.cubic(5.0), ["V", "O"], [[0.02, 0, 0], [0.98, 0, 0]])
    assert shortest_distance(pair) == pytest.approx(0.2)
    skewed = Structure(Lattice.from_parameters(4, 4, 6, 90, 90, 20), ["V"], [[0, 0, 0]])
    a_minus_b = 2 * 4 * np.sin(np.radians(10))
    assert shortest_distance(skewed) == pytest.approx(a_minus_b) and a_minus_b < 4
    rock_salt = Structure.from_spacegroup("Fm-3m", Lattice.cubic(4.1), ["V", "O"],
                                          [[0, 0, 0], [0.5, 0.5, 0.5]])  # fmt: skip
    assert shortest_distance(rock_salt) == pytest.approx(2.05)
