"""The peak threshold of decoded basis images: chosen on a sweep's counts, stored as data, read
back with refusals, and what a decoded image with a lowered atom peak gives at each threshold."""

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
    choose_peak_threshold,
    decoding_spec,
    read_peak_threshold,
    write_decoding,
)
from matgnn.design.evaluate import reconstruct, sweep_peak_thresholds
from matgnn.design.generate import shortest_distance
from matgnn.design.images import ImageSpec
from matgnn.design.vo_dataset import vo_sample


def _sweep(counts: dict[float, tuple[int, int]]) -> pd.DataFrame:
    """A sweep frame whose thresholds have the given (fully reconstructed, matched) counts over
    four structures."""
    rows = []
    for threshold, (full, matched) in counts.items():
        for k in range(4):
            rows.append({"id": f"s{k}", "threshold": threshold, "same_composition": k < matched,
                         "fully_reconstructed": k < full, "matches": k < matched})  # fmt: skip
    return pd.DataFrame(rows)


def test_the_choice_ranks_full_reconstructions_then_matches_then_the_higher_threshold():
    assert choose_peak_threshold(_sweep({0.02: (2, 4), 0.1: (3, 3), 0.3: (2, 2)})) == 0.1
    assert choose_peak_threshold(_sweep({0.02: (2, 4), 0.1: (2, 3), 0.3: (2, 2)})) == 0.02
    assert choose_peak_threshold(_sweep({0.02: (2, 3), 0.1: (2, 3), 0.3: (1, 3)})) == 0.1
    with pytest.raises(ValueError, match="no structures"):
        choose_peak_threshold(_sweep({}))


def test_a_chosen_threshold_is_stored_as_data_and_read_back_with_refusals(tmp_path):
    assert read_peak_threshold(tmp_path) is None
    assert decoding_spec(ImageSpec(), tmp_path) == ImageSpec()
    checkpoints = {"basis_sha256": "b" * 64, "cell_run": "cell", "cell_sha256": "c" * 64}
    sweep = _sweep({0.02: (2, 4), 0.3: (2, 2)})
    chosen = write_decoding(tmp_path, sweep, "4 structures", checkpoints)
    record = json.loads((tmp_path / DECODING).read_text())
    assert chosen == record["peak_threshold"] == 0.02 and record["structures"] == 4
    assert record["basis_sha256"] == "b" * 64 and record["cell_sha256"] == "c" * 64
    assert read_peak_threshold(tmp_path, "b" * 64) == 0.02
    # chosen through another basis checkpoint (retrained since): refused, not applied
    with pytest.raises(ValueError, match="chosen for another basis checkpoint"):
        decoding_spec(ImageSpec(), tmp_path, "a" * 64)
    (tmp_path / DECODING).write_text('{"peak_threshold": 0.02}')  # no checkpoint recorded
    assert read_peak_threshold(tmp_path) == 0.02
    with pytest.raises(ValueError, match="records no basis checkpoint"):
        read_peak_threshold(tmp_path, "b" * 64)
    assert record["counts"]["0.3"] == {"same_composition": 2, "fully_reconstructed": 2,
                                       "matches": 2}  # fmt: skip
    assert decoding_spec(ImageSpec(), tmp_path) == replace(ImageSpec(), peak_threshold=0.02)
    for bad, message in (
        ('{"peak_threshold": "__import__"}', "is not a number"),
        ('{"peak_threshold": true}', "is not a number"),
        ('{"peak_threshold": 1.5}', r"is not in \(0, 1\)"),
        ('{"peak_threshold": NaN}', r"is not in \(0, 1\)"),
        ("{}", "no peak_threshold"),
        ("not json", "no peak_threshold"),
    ):
        (tmp_path / DECODING).write_text(bad)
        with pytest.raises(ValueError, match=message):
            read_peak_threshold(tmp_path)


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
    decodes each structure at every threshold, and the choice takes the lower one."""
    sample = vo_sample()
    rows = list(range(4))
    spec = ImageSpec()
    frame = sweep_peak_thresholds(sample, rows, None, _Dimmed(0.1), spec, (0.05, 0.3))
    assert len(frame) == 2 * len(rows) and set(frame["threshold"]) == {0.05, 0.3}
    low, high = (frame[frame["threshold"] == t] for t in (0.05, 0.3))
    assert low["fully_reconstructed"].all() and low["matches"].all()
    assert not high["decoded"].any() and high["reason"].str.contains("no atom").all()
    assert choose_peak_threshold(frame) == 0.05
    # the same rows as reconstruct gives at that threshold
    direct = reconstruct(sample, rows, None, _Dimmed(0.1), replace(spec, peak_threshold=0.05))
    assert low.drop(columns="threshold").reset_index(drop=True).equals(direct)
    assert np.isclose(low["position_rmse"].max(), direct["position_rmse"].max())


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
