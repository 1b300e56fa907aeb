"""The ARISE-style prototype task: exclusions, the protocol's splits and the defects."""

from __future__ import annotations

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from pymatgen.analysis.structure_matcher import StructureMatcher

from matgnn.config_dir import CONFIG_DIR
from matgnn.data.sources.aflow_prototypes import (
    DEFAULT_DEFECTS,
    aflow_prototypes,
    all_prototypes,
    defect_supercell,
    defective,
    excluded_prototypes,
    nearest_neighbour_distance,
    prototype_labels,
    prototypes,
    scaled,
)


def test_every_excluded_label_matches_a_kept_one_of_the_same_composition():
    assert len(all_prototypes()) == 288
    excluded = excluded_prototypes()
    assert len(excluded) == 9
    by_name = {p.name: p for p in all_prototypes()}
    kept = {p.label for p in prototypes()}
    for label, reason in excluded.items():
        dropped, partner = (by_name[w] for w in reason.split() if w in by_name)
        assert partner.label in kept and label not in kept and dropped.label == label
        assert StructureMatcher().fit(dropped.structure, partner.structure)
        assert partner.space_group >= dropped.space_group


def test_the_task_config_declares_one_class_per_kept_label():
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(
            config_name="train", overrides=["task=arise_prototypes", "paths.output_dir=out"]
        )
    assert cfg.task.num_classes == len(prototype_labels()) == 264
    assert [tuple(d) for d in cfg.task.data.source.defects] == list(DEFAULT_DEFECTS)


def test_records_follow_the_protocol():
    records = aflow_prototypes(limit=3, draws=2, train_supercells=True)
    assert {k: len(v) for k, v in records.split.items()} == {
        "train": 3 * 6,
        "val": 3 * 2,
        "test": 3 * len(DEFAULT_DEFECTS) * 2,
    }
    labels = prototype_labels()
    by_id = dict(zip(records.ids, records.targets["prototype"], strict=True))
    for p in prototypes()[:3]:
        assert by_id[f"{p.name}|s1"] == labels.index(p.label)
    train = dict(zip(records.ids, records.structures, strict=True))
    first = prototypes()[0]
    assert train[f"{first.name}|s1.05"].volume == pytest.approx(1.05**3 * first.structure.volume)
    assert len(train[f"{first.name}|s1|super"]) >= 64
    # the same seed gives the same records
    again = aflow_prototypes(limit=3, draws=2, train_supercells=True)
    assert [s.cart_coords.tolist() for s in again.structures] == [
        s.cart_coords.tolist() for s in records.structures
    ]
    assert len(aflow_prototypes(limit=3).split["train"]) == 3 * 3  # unit cells only


@pytest.mark.parametrize("index", [0, 40, 120])
def test_defects_have_the_requested_size(index):
    structure = all_prototypes()[index].structure
    cell = defect_supercell(structure)
    assert defective(structure, 0.0, 0.0, seed=1) == cell
    thinned = defective(structure, 0.0, 0.2, seed=1)
    assert len(thinned) == len(cell) - round(0.2 * len(cell))
    shaken = defective(structure, 0.04, 0.0, seed=1)
    shift = shaken.cart_coords - cell.cart_coords
    sigma = 0.04 * nearest_neighbour_distance(structure)
    # per-component std of the displacements (3N samples) within 15% of the request
    assert np.std(shift) == pytest.approx(sigma, rel=0.15)
    assert defective(structure, 0.04, 0.2, seed=2) != defective(structure, 0.04, 0.2, seed=3)


def test_scaling_keeps_fractional_coordinates():
    structure = all_prototypes()[5].structure
    bigger = scaled(structure, 1.1)
    np.testing.assert_allclose(bigger.frac_coords, structure.frac_coords)
    assert bigger.lattice.abc == pytest.approx(tuple(1.1 * x for x in structure.lattice.abc))


def test_the_task_trains_with_mc_dropout_and_reports_mutual_information(tmp_path):
    from matgnn.train import run

    overrides = [
        "task=arise_prototypes",
        "uncertainty=mc_dropout",
        "uncertainty.passes=3",
        f"paths.output_dir={tmp_path}",
        f"paths.cache_dir={tmp_path / 'cache'}",
        "task.data.source.limit=4",
        "trainer.max_epochs=1",
        "+trainer.enable_progress_bar=false",
        "model.backbone.hidden_features=16",
    ]
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(config_name="train", overrides=overrides)
    metrics = run(cfg)
    assert 0 <= metrics["test_prototype_mean_mutual_information_calibrated"] <= np.log(264)
    assert (tmp_path / "test_calibration_prototype.png").is_file()
