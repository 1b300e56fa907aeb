"""Prediction keeps going past a structure the model fails on, and stops at a fault that is not
the structures' (every structure of a batch failing alike with the same non-refusal error)."""

from __future__ import annotations

import pytest
import torch

from matgnn.data.samples import mp_sample_structures
from matgnn.graphs import GraphConfig, build_graph
from matgnn.models.inference import draw_graphs
from matgnn.outputs import ScalarOutput


class Failing:
    """A predictor that raises ``error`` for the graphs named in ``bad`` (all: every graph)."""

    def __init__(self, error: Exception, bad: set[str] | None) -> None:
        self.error, self.bad = error, bad
        self.outputs = [ScalarOutput("y", target="y")]

    def graph_config(self) -> GraphConfig:
        return GraphConfig.preset("cgcnn")

    def draws(self, batch) -> dict[str, torch.Tensor]:
        names = set(batch.name)
        if self.bad is None or names & self.bad:
            raise self.error
        return {"y": torch.zeros(1, batch.num_graphs)}


@pytest.fixture(scope="module")
def named():
    ids, structures = mp_sample_structures(4)
    config = GraphConfig.preset("cgcnn")
    return [(i, build_graph(s, config, name=i)) for i, s in zip(ids, structures, strict=True)]


@pytest.mark.parametrize("error", [RuntimeError("out of memory"), IndexError("index 7")])
def test_one_structure_the_model_fails_on_is_rejected_and_the_rest_predicted(named, error):
    bad = named[2][0]
    accepted, draws, rejected = draw_graphs(Failing(error, {bad}), named, batch_size=4)
    assert [n for n, _ in accepted] == [n for n, _ in named if n != bad]
    assert draws["y"].shape == (1, 3)
    assert list(rejected) == [bad] and type(error).__name__ in rejected[bad]


def test_every_structure_failing_alike_stops_prediction_with_the_error(named):
    with pytest.raises(RuntimeError, match="Expected all tensors to be on the same device"):
        draw_graphs(
            Failing(RuntimeError("Expected all tensors to be on the same device"), None), named
        )
    # refusals in words are the structures' own: each is rejected, nothing raised
    _, _, rejected = draw_graphs(Failing(ValueError("no"), None), named)
    assert list(rejected) == [n for n, _ in named]
