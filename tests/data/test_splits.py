"""Splits: seeded random, the source's own (with a carved validation set), and split files."""

from __future__ import annotations

import json

import numpy as np
import pytest

from matgnn.data import CrystalDataModule, Records
from matgnn.data.samples import mp_sample_structures
from matgnn.data.splits import (
    carve_validation,
    check_split,
    holdout_split,
    limit_train,
    random_split,
    read_split_file,
)
from matgnn.graphs import GraphConfig
from matgnn.graphs.elements import elements_of
from matgnn.outputs import ScalarOutput

IDS = [f"x{i}" for i in range(100)]


def test_random_split_is_seeded_disjoint_and_complete():
    a, b = random_split(IDS, 0.8, 0.1, seed=3), random_split(IDS, 0.8, 0.1, seed=3)
    assert a == b and random_split(IDS, 0.8, 0.1, seed=4) != a
    assert [len(a[k]) for k in ("train", "val", "test")] == [80, 10, 10]
    assert sorted(a["train"] + a["val"] + a["test"]) == sorted(IDS)


def test_validation_is_carved_from_train_only_when_missing():
    split = carve_validation({"train": IDS[:90], "test": IDS[90:]}, 0.1, seed=0)
    assert len(split["val"]) == 9 and len(split["train"]) == 81 and split["test"] == IDS[90:]
    assert not set(split["val"]) & set(split["train"])
    given = {"train": IDS[:80], "val": IDS[80:90], "test": IDS[90:]}
    assert carve_validation(given, 0.1, seed=0) == given


def test_overlapping_or_incomplete_splits_are_rejected():
    with pytest.raises(ValueError, match="x5"):
        check_split({"train": IDS[:10], "test": IDS[5:20]}, "demo")
    with pytest.raises(ValueError, match="train and test"):
        check_split({"train": IDS[:10]}, "demo")


def test_split_files_json_leaderboard_and_csv(tmp_path):
    (tmp_path / "lists.json").write_text(json.dumps({"train": ["a", "b"], "test": ["c"]}))
    board = {"train": {"a": 1.0, "b": 2.0}, "val": {"d": 0.5}, "test": {"c": 3.0}}
    (tmp_path / "board.json").write_text(json.dumps(board))
    (tmp_path / "split.csv").write_text("id,split\na,train\nc,test\nb,train\n")
    assert read_split_file(tmp_path / "lists.json") == {"train": ["a", "b"], "test": ["c"]}
    assert read_split_file(tmp_path / "board.json")["val"] == ["d"]
    assert read_split_file(tmp_path / "split.csv") == {"train": ["a", "b"], "test": ["c"]}


@pytest.fixture(scope="module")
def records():
    ids, structures = mp_sample_structures(30)
    split = {"train": ids[:20], "test": ids[20:]}
    return Records(
        ids, structures, {"y": np.linspace(0.0, 1.0, 30)}, name="split_demo", split=split
    )


def test_records_reject_a_split_with_unknown_ids(records):
    with pytest.raises(ValueError, match="not in the records"):
        Records(
            records.ids, records.structures, records.targets, "bad", {"train": ["nope"], "test": []}
        )


def test_source_split_is_kept_and_saved_split_is_reused(records, tmp_path):
    graph = GraphConfig.preset("cgcnn")
    data = CrystalDataModule(
        lambda: records, graph, [ScalarOutput("y")], split={"kind": "source", "val": 0.2, "seed": 1}
    )
    data.setup()
    subset_ids = {k: [g.sample_id for g in v] for k, v in data.subsets.items()}
    assert subset_ids["test"] == records.ids[20:]
    assert len(subset_ids["val"]) == 4 and set(subset_ids["train"] + subset_ids["val"]) == set(
        records.ids[:20]
    )
    data.save_split(tmp_path / "split.json")
    again = CrystalDataModule(
        lambda: records,
        graph,
        [ScalarOutput("y")],
        split={"kind": "file", "path": tmp_path / "split.json"},
    )
    again.setup()
    assert {k: [g.sample_id for g in v] for k, v in again.subsets.items()} == subset_ids


def test_source_split_without_a_source_split_is_an_error(records):
    plain = Records(records.ids, records.structures, records.targets, name="no_split")
    data = CrystalDataModule(
        lambda: plain,
        GraphConfig.preset("cgcnn"),
        outputs=[ScalarOutput("y")],
        split={"kind": "source"},
    )
    with pytest.raises(ValueError, match="defines no split"):
        data.setup()


def test_limit_train_is_nested_seeded_and_leaves_val_and_test():
    split = random_split(IDS, 0.8, 0.1, seed=0)
    small, large = limit_train(split, 20, seed=1), limit_train(split, 50, seed=1)
    assert len(small["train"]) == 20 and set(small["train"]) <= set(large["train"])
    assert small["val"] == split["val"] and small["test"] == split["test"]
    assert limit_train(split, 20, seed=2)["train"] != small["train"]
    with pytest.raises(ValueError, match=r"train_size=81.*80 crystals"):
        limit_train(split, 81, seed=0)


def test_datamodule_train_size_keeps_val_and_test_of_the_full_split(records):
    def module(**split):
        data = CrystalDataModule(
            lambda: records, GraphConfig.preset("cgcnn"), [ScalarOutput("y")], split=split
        )
        data.setup()
        return data.split_ids()

    full, limited = module(seed=0), module(seed=0, train_size=5, train_seed=3)
    assert len(limited["train"]) == 5 and set(limited["train"]) <= set(full["train"])
    assert limited["val"] == full["val"] and limited["test"] == full["test"]
    with pytest.raises(ValueError, match=r"split_demo: split\.train_size=500"):
        module(seed=0, train_size=500)


def test_a_rejected_crystal_leaves_the_random_split_of_the_others_unchanged(records):
    """The seeded split is drawn over every record: a model whose graphs reject a crystal (here
    a NaN target) gets the same split as one that rejects none, minus that crystal."""
    graph = GraphConfig.preset("cgcnn")
    plain = Records(records.ids, records.structures, records.targets, name="all_valid")
    targets = records.targets["y"].copy()
    targets[7] = np.nan
    holed = Records(records.ids, records.structures, {"y": targets}, name="one_rejected")
    subsets = []
    for source in (plain, holed):
        data = CrystalDataModule(lambda s=source: s, graph, [ScalarOutput("y")], split={"seed": 3})
        data.setup()
        subsets.append(data.split_ids())
    assert set(subsets[1]) == set(subsets[0])
    for name, ids in subsets[0].items():
        assert subsets[1][name] == [i for i in ids if i != records.ids[7]]
    assert any(records.ids[7] in ids for ids in subsets[0].values())


# --- out-of-distribution hold-out splits -------------------------------------------------------
def _elements(n: int = 400, seed: int = 0) -> dict[str, list[str]]:
    """Made-up crystals of 1-3 elements drawn from 12 (the split reads symbols only)."""
    rng = np.random.default_rng(seed)
    pool = ["O", "Fe", "Li", "Mn", "Si", "Al", "Na", "S", "Cu", "Ti", "Zn", "Mg"]
    weights = np.array([8, 3, 3, 2, 2, 2, 2, 2, 1, 1, 1, 1], dtype=float)
    return {
        f"c{i}": sorted(
            rng.choice(pool, size=rng.integers(1, 4), replace=False, p=weights / weights.sum())
        )
        for i in range(n)
    }


@pytest.mark.parametrize("by", ["chemsys", "element"])
def test_a_holdout_split_keeps_whole_groups_out_of_training(by):
    elements = _elements()
    split = holdout_split(elements, by, test=0.15, val=0.1, seed=2)
    assert sorted(i for ids in split.values() for i in ids) == sorted(elements)  # no overlap
    check_split(split, "holdout")
    assert len(split["test"]) >= 0.15 * len(elements)
    assert len(split["val"]) == 40
    seen = [i for s in ("train", "val") for i in split[s]]
    if by == "chemsys":
        system = {i: "-".join(sorted(e)) for i, e in elements.items()}
        assert not {system[i] for i in split["test"]} & {system[i] for i in seen}
    else:
        # the held-out elements: those of test crystals that no training/val crystal holds
        held = set().union(*(elements[i] for i in split["test"])) - set().union(
            *(elements[i] for i in seen)
        )
        assert held  # at least one element never seen in training
        assert all(set(elements[i]) & held for i in split["test"])  # each test crystal has one
        assert len(split["test"]) <= 2 * 0.15 * len(elements) + 1
    assert holdout_split(elements, by, test=0.15, val=0.1, seed=2) == split
    assert holdout_split(elements, by, test=0.15, val=0.1, seed=3) != split


def test_holdout_split_requests_are_checked():
    with pytest.raises(ValueError, match=r"split\.group must be one of"):
        holdout_split(_elements(), "spacegroup", test=0.1, val=0.1, seed=0)
    with pytest.raises(ValueError, match="0 < test < 1"):
        holdout_split(_elements(), "chemsys", test=0.95, val=0.1, seed=0)
    # one element everywhere: nothing can be held out without taking every crystal
    with pytest.raises(ValueError, match="only 0 of 3 crystals"):
        holdout_split({"a": ["O"], "b": ["O"], "c": ["O"]}, "element", 0.3, 0.0, seed=0)


def test_the_datamodule_draws_a_holdout_split_from_its_graphs(records):
    data = CrystalDataModule(
        lambda: records,
        GraphConfig.preset("cgcnn"),
        [ScalarOutput("y")],
        split={"kind": "holdout", "group": "chemsys", "test": 0.2, "val": 0.1, "seed": 0},
    )
    data.setup()
    ids = data.split_ids()
    system = {
        g.sample_id: "-".join(elements_of([g])) for subset in data.subsets.values() for g in subset
    }
    assert not {system[i] for i in ids["test"]} & {system[i] for i in ids["train"] + ids["val"]}
    assert len(ids["test"]) >= 0.2 * len(records.ids)
