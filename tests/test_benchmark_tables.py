"""README tables written by the benchmark scripts from their committed results are current: a
README number always comes from a stored result, never from a hand edit."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def script(path: str):
    spec = importlib.util.spec_from_file_location(Path(path).stem, REPO / path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def arise_table() -> str:
    evaluate = script("benchmarks/arise/evaluate.py")
    return evaluate.markdown_table(
        evaluate.read_levels(REPO / "benchmarks" / "arise" / "results" / "levels.csv")
    )


BLOCKS = {
    "finetune-curve": lambda: script("benchmarks/finetune/table.py").table(),
    "uncertainty-phonons": lambda: script("benchmarks/uncertainty/table.py").table(),
    "arise": arise_table,
    "ehull": lambda: script("benchmarks/stability/ehull.py").table(),
    "ye2018": lambda: script("benchmarks/stability/ye2018_table.py").table(),
    "ye2018-published": lambda: script("benchmarks/stability/ye2018_published_model.py").table(),
    "chen2021": lambda: script("benchmarks/phonons/chen2021_table.py").table(),
    "tensors": lambda: script("benchmarks/tensors/table.py").table(),
    "fidelity-cgcnn": lambda: script("benchmarks/fidelity/cgcnn_xie2018.py").table(),
    "fidelity-alignn": lambda: script("benchmarks/fidelity/alignn_upstream.py").table(),
    "fidelity-equal-budget": lambda: script("benchmarks/fidelity/equal_budget.py").table(),
}


@pytest.mark.parametrize("name", sorted(BLOCKS))
def test_readme_block_is_the_scripts_table_of_the_committed_results(name):
    from benchmarks.catalog import replace_block

    readme = REPO / "README.md"
    text = readme.read_text()
    assert replace_block(text, name, BLOCKS[name](), readme) == text, (
        f"README block {name!r} is stale: rerun its benchmark script with --update README.md"
    )


def test_stored_ye_network_reproduces_its_stored_test_predictions():
    """The committed Ye et al. network of the results table (split seed 0, all perovskites),
    loaded from its checkpoint, predicts the committed test predictions again from the
    structures of the shipped table: checkpoint, descriptors and table agree."""
    import numpy as np
    import pandas as pd

    from matgnn import load_model
    from matgnn.data.sources.ye2018 import ye2018_perovskite_sample

    results = REPO / "benchmarks" / "stability" / "results" / "ye2018"
    model = load_model(results / "checkpoints" / "all_ye2018_net_s0.ckpt")
    stored = pd.read_csv(results / "predictions" / "all_ye2018_net_s0.csv")
    records = ye2018_perovskite_sample()
    by_id = dict(zip(records.ids, records.structures, strict=True))
    predicted = model.predict([by_id[i] for i in stored["id"]], list(stored["id"]))
    assert not predicted.rejected
    np.testing.assert_allclose(
        predicted["ef_vs_binary_oxides"], stored["predicted_ef_vs_binary_oxides"], atol=1e-6
    )


@pytest.mark.parametrize("subset", ["garnet_unmixed", "unmixed"])
def test_stored_published_network_predictions_are_the_packaged_models(subset):
    """The "published network" rows of the Ye table were predicted by the packaged
    ye2018_*_unmixed models: each seed's stored predictions are theirs, on the crystals the
    models of that seed were tested on."""
    import numpy as np
    import pandas as pd

    from matgnn.checkpoints.pretrained import load_pretrained
    from matgnn.data.sources.ye2018 import ye2018_garnet, ye2018_perovskite_sample

    results = REPO / "benchmarks" / "stability" / "results" / "ye2018" / "predictions"
    garnet = subset.startswith("garnet")
    records = (ye2018_garnet if garnet else ye2018_perovskite_sample)(mixed=False)
    by_id = dict(zip(records.ids, records.structures, strict=True))
    model = load_pretrained("ye2018_garnet_unmixed" if garnet else "ye2018_perovskite_unmixed")
    files = sorted(results.glob(f"{subset}_published_s*.csv"))
    assert len(files) == 5
    for file in files:
        stored = pd.read_csv(file)
        again = model.predict([by_id[i] for i in stored["id"]], list(stored["id"]))
        assert not again.rejected
        np.testing.assert_allclose(
            again["ef_vs_binary_oxides"], stored["predicted_ef_vs_binary_oxides"], atol=1e-6
        )
