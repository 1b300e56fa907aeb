"""The Ye et al. 2018 network (SiteDescriptorNetwork, matgnn/configs/model/ye2018_net.yaml) on the
shipped Ye perovskite table: architecture, standardisation, invariance, learning."""

from __future__ import annotations

import pytest
import torch

from matgnn.data.sources.ye2018 import ye2018_perovskite_sample
from matgnn.graphs import GraphConfig
from matgnn.heads import RegressionHead
from matgnn.models import CrystalModel, SiteDescriptorNetwork
from matgnn.testing import other_cell, permuted, random_rotation, rotated, translated
from tests.models.helpers import batch_of, make_model

UNMIXED = ["++model.graph.species_per_site=1", "model.backbone.num_descriptors=4",
           "model.backbone.hidden=[12]"]  # fmt: skip


@pytest.fixture(scope="module")
def records():
    return ye2018_perovskite_sample(limit=80)


def model_of(overrides=(), fitted_on=None) -> CrystalModel:
    model = make_model("ye2018_net", overrides)
    if fitted_on is not None:
        graphs = batch_of(fitted_on, model.graph_config()).to_data_list()
        model.backbone.fit_to_training_data(graphs)
    return model


def test_parameter_counts_match_the_published_keras_models():
    # garnetdnn models/perovskite: model_unmix Dense(12) on 4 inputs + Dense(1): 73 weights;
    # model_a / model_b Dense(24) on 10 inputs (6 descriptors + 4 ordering bits) + Dense(1).
    unmixed = model_of(UNMIXED)
    assert sum(p.numel() for p in unmixed.parameters()) == 4 * 12 + 12 + 12 + 1
    mixed = model_of()
    assert sum(p.numel() for p in mixed.parameters()) == 8 * 24 + 24 + 24 + 1


def test_descriptor_length_must_match_the_graph():
    with pytest.raises(ValueError, match="site descriptors of length 4"):
        CrystalModel(
            GraphConfig.preset("ye2018_perovskite"),
            SiteDescriptorNetwork(num_descriptors=4),
            {"y": RegressionHead},
        )
    with pytest.raises(ValueError, match="site descriptors of length 8"):
        CrystalModel(GraphConfig.preset("cgcnn"), SiteDescriptorNetwork(8), {"y": RegressionHead})


def test_inputs_are_standardised_on_the_training_crystals_once(records):
    model = model_of(fitted_on=records.structures[:40])
    batch = batch_of(records.structures[:40], model.graph_config())
    scaled = (batch.site_descriptor - model.backbone.input_mean) / model.backbone.input_std
    torch.testing.assert_close(scaled.mean(0), torch.zeros(8), atol=1e-5, rtol=0)
    varying = batch.site_descriptor.std(0) > 0
    torch.testing.assert_close(
        scaled.std(0, unbiased=False)[varying], torch.ones(int(varying.sum())), atol=1e-4, rtol=0
    )
    mean = model.backbone.input_mean.clone()
    other = batch_of(records.structures[40:], model.graph_config()).to_data_list()
    model.backbone.fit_to_training_data(other)  # fitted: kept (fine-tuning keeps them)
    torch.testing.assert_close(model.backbone.input_mean, mean)


def test_prediction_is_invariant_for_the_same_crystal(records):
    model = model_of(fitted_on=records.structures)
    structure = records.structures[3]
    assert len(structure.composition) == 4  # a mixed site
    variants = [
        rotated(structure, random_rotation(2)),
        translated(structure, [0.7, 0.2, -0.4]),
        permuted(structure, 5),
        other_cell(structure),
        structure * (2, 1, 1),
    ]
    graph = model.graph_config()
    with torch.no_grad():
        ref = model(batch_of([structure], graph))["y"]
        got = model(batch_of(variants, graph))["y"]
    torch.testing.assert_close(got, ref.expand(len(variants)), atol=1e-6, rtol=0)


def test_learns_the_formation_energy_better_than_the_mean(records):
    """A few hundred Adam steps (garnetdnn's recipe) on 64 crystals: the training MAE falls
    well below that of predicting the mean."""
    model = model_of(fitted_on=records.structures[:64]).train()
    batch = batch_of(records.structures[:64], model.graph_config())
    target = torch.as_tensor(records.targets["ef_vs_binary_oxides"][:64], dtype=torch.float32)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(300):
        optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(model(batch)["y"], target)
        loss.backward()
        optimizer.step()
    mae = (model.eval()(batch)["y"] - target).abs().mean()
    baseline = (target - target.mean()).abs().mean()
    assert mae < 0.5 * baseline
