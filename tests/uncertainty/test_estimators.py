"""Estimators, summaries, calibration and metrics against cases with known answers."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from torch_geometric.data import Batch

from matgnn.checkpoints.safe_config import build
from matgnn.data.samples import mp_sample_structures
from matgnn.graphs import build_graph
from matgnn.models import CrystalModel
from matgnn.outputs import ClassOutput, GaussianOutput, ScalarOutput
from matgnn.uncertainty import Ensemble, MCDropout, MeanVariance, UncertainModel, summarize
from matgnn.uncertainty.calibration import fit_std_scale, fit_temperature, temper
from matgnn.uncertainty.evaluation import classification_metrics, regression_metrics
from tests.models.helpers import MODEL_NAMES, SMALL, compose_model_config, make_model


@pytest.fixture(scope="module")
def structures():
    return mp_sample_structures(12)[1]


def graphs_for(model, structures):
    return [build_graph(s, model.graph_config(), name=str(k)) for k, s in enumerate(structures)]


def with_head(model: CrystalModel, output, **head) -> CrystalModel:
    """``model`` with its head ``y`` replaced by ``output``'s default head."""
    template = {"@class": "regression_head", "@partial": True, "hidden": [16]}
    config = output.head_config(template)
    factory = build({**config, **head})
    return CrystalModel(model.graph, model.backbone, {output.name: factory}, [output]).eval()


# --- summaries -------------------------------------------------------------------------
def test_gaussian_summary_follows_the_law_of_total_variance():
    # two draws: means 1 and 3, stds 1 and 1 -> mean 2, epistemic 1, aleatoric 1, total sqrt 2
    draws = np.array([[[1.0, 1.0]], [[3.0, 1.0]]])
    s = summarize(GaussianOutput("y"), draws)
    np.testing.assert_allclose(
        [s["mean"][0], s["epistemic_std"][0], s["aleatoric_std"][0], s["std"][0]],
        [2.0, 1.0, 1.0, np.sqrt(2.0)],
    )


def test_class_summary_mutual_information_is_the_disagreement():
    output = ClassOutput("c", num_classes=2)
    disagree = summarize(output, np.array([[[1.0, 0.0]], [[0.0, 1.0]]]))
    np.testing.assert_allclose(disagree["probability"], [[0.5, 0.5]])
    np.testing.assert_allclose(disagree["entropy"], [np.log(2)])
    np.testing.assert_allclose(disagree["mutual_information"], [np.log(2)])
    agree = summarize(output, np.array([[[0.5, 0.5]], [[0.5, 0.5]]]))
    np.testing.assert_allclose(agree["entropy"], [np.log(2)])
    np.testing.assert_allclose(agree["mutual_information"], [0.0], atol=1e-15)


def test_an_ensemble_of_identical_models_has_zero_epistemic_uncertainty(structures):
    model = make_model("cgcnn", SMALL["cgcnn"])
    ensemble = UncertainModel(Ensemble([model, copy.deepcopy(model), copy.deepcopy(model)]))
    result = ensemble.predict_graphs(graphs_for(model, structures))
    summary = result["y"]
    assert np.all(summary["epistemic_std"] == 0.0) and np.all(summary["std"] == 0.0)
    single = model(Batch.from_data_list(graphs_for(model, structures)))["y"]
    np.testing.assert_allclose(summary["mean"], single.detach().double().numpy(), rtol=1e-6)
    # different weights disagree
    other = make_model("cgcnn", SMALL["cgcnn"], seed=1)
    spread = UncertainModel(Ensemble([model, other])).predict_graphs(graphs_for(model, structures))
    assert np.all(spread["y"]["epistemic_std"] > 0)


def test_identical_classifiers_have_zero_mutual_information(structures):
    model = make_model("cgcnn", SMALL["cgcnn"])
    classifier = with_head(model, ClassOutput("c", num_classes=3))
    ensemble = UncertainModel(Ensemble([classifier, copy.deepcopy(classifier)]))
    summary = ensemble.predict_graphs(graphs_for(model, structures))["c"]
    np.testing.assert_allclose(summary["mutual_information"], 0.0, atol=1e-12)
    assert np.all(summary["entropy"] > 0)
    np.testing.assert_allclose(summary["probability"].sum(-1), 1.0)


# --- MC dropout ------------------------------------------------------------------------
@pytest.mark.parametrize("name", MODEL_NAMES)
def test_mc_dropout_samples_only_dropout_and_is_reproducible(name, structures):
    overrides = [*SMALL.get(name, []), "+model.backbone.dropout=0.2", "+model.heads.y.dropout=0.2"]
    torch.manual_seed(0)
    model = instantiate(compose_model_config(name, overrides)).eval()
    graphs = graphs_for(model, structures[:4])
    buffers = {k: v.clone() for k, v in model.state_dict().items()}
    estimator = MCDropout(model, passes=5, seed=3)
    draws = estimator.draws(Batch.from_data_list(graphs))["y"]
    assert draws.shape == (5, 4)
    assert draws.std(0).min() > 0  # the passes differ
    again = MCDropout(model, passes=5, seed=3).draws(Batch.from_data_list(graphs))["y"]
    torch.testing.assert_close(draws, again)  # same seed, same masks
    # batch-norm running statistics untouched, and the model is back in eval mode
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, buffers[key], msg=key)
    assert not any(m.training for m in model.modules())


def test_mc_dropout_on_a_model_without_dropout_is_refused():
    with pytest.raises(ValueError, match="every dropout probability of this CGCNN model is 0"):
        MCDropout(make_model("cgcnn", SMALL["cgcnn"]), passes=10)


# --- ensembles of mismatched models -------------------------------------------------------
def test_an_ensemble_of_models_for_other_graphs_or_tasks_is_refused():
    model = make_model("cgcnn", SMALL["cgcnn"])
    other_graph = make_model("cgcnn", [*SMALL["cgcnn"], "model.graph.max_neighbors=8"])
    with pytest.raises(ValueError, match=r"another graph config .*max_neighbors"):
        Ensemble([model, other_graph])
    other_task = with_head(model, ScalarOutput("band_gap"))
    with pytest.raises(ValueError, match=r"other outputs .*an ensemble needs one task"):
        Ensemble([model, other_task])
    with pytest.raises(ValueError, match="at least 2 models"):
        Ensemble([model])


# --- mean-variance head --------------------------------------------------------------------
def test_mean_variance_head_predicts_a_positive_std_in_target_units(structures):
    model = with_head(make_model("cgcnn", SMALL["cgcnn"]), GaussianOutput("y"))
    head = model.heads["y"]
    head.normalizer.std.fill_(3.0)
    batch = Batch.from_data_list(graphs_for(model, structures))
    raw = model(batch)["y"]
    assert raw.shape == (len(structures), 2) and (raw[:, 1] > 0).all()
    presented = model.outputs[0].present(raw)
    torch.testing.assert_close(presented[:, 1] ** 2, raw[:, 1])
    # the variance scales with the square of the target std
    head.normalizer.std.fill_(6.0)
    torch.testing.assert_close(model(batch)["y"][:, 1], 4 * raw[:, 1])
    summary = UncertainModel(MeanVariance(model)).predict_graphs(graphs_for(model, structures))
    assert np.all(summary["y"]["epistemic_std"] == 0) and np.all(summary["y"]["std"] > 0)
    loss = model.outputs[0].compute_loss(raw, torch.zeros(len(structures)), head)
    assert torch.isfinite(loss)


def test_mean_variance_needs_a_variance_head():
    with pytest.raises(ValueError, match="variance head"):
        MeanVariance(make_model("cgcnn", SMALL["cgcnn"]))


# --- calibration and metrics on known distributions ------------------------------------------
def gaussian_sample(n: int = 40_000, sigma: float = 2.0, seed: int = 0):
    rng = np.random.default_rng(seed)
    mean = rng.normal(size=n)
    std = sigma * rng.uniform(0.5, 1.5, size=n)
    return mean, std, mean + std * rng.normal(size=n)


def test_metrics_of_correct_gaussians_match_their_nominal_values():
    mean, std, target = gaussian_sample()
    metrics = regression_metrics(mean, std, target)
    assert metrics["coverage_95"] == pytest.approx(0.95, abs=0.005)
    assert metrics["miscalibration_area"] < 0.01
    expected_nll = np.mean(0.5 * np.log(2 * np.pi * std**2) + 0.5)
    assert metrics["nll"] == pytest.approx(expected_nll, abs=0.02)
    assert metrics["spearman_error_std"] > 0.1  # larger std, larger errors
    # stds half as large cover ~ P(|z| < 0.98) = 0.67 and are miscalibrated
    half = regression_metrics(mean, std / 2, target)
    assert half["coverage_95"] == pytest.approx(0.673, abs=0.01)
    assert half["miscalibration_area"] > 0.1


def test_std_scaling_recovers_the_true_scale():
    mean, std, target = gaussian_sample(seed=1)
    assert fit_std_scale(mean, std / 2, target) == pytest.approx(2.0, rel=0.02)
    assert fit_std_scale(mean, std * 3, target) == pytest.approx(1 / 3, rel=0.02)
    with pytest.raises(ValueError, match="stds are 0"):
        fit_std_scale(mean, np.zeros_like(std), target)
    # values with std 0 (fixed by symmetry) are left out of the fit and of the metrics
    with_fixed = np.concatenate([std / 2, np.zeros(100)])
    mean2, target2 = np.concatenate([mean, np.zeros(100)]), np.concatenate([target, np.ones(100)])
    assert fit_std_scale(mean2, with_fixed, target2) == pytest.approx(2.0, rel=0.02)
    metrics = regression_metrics(mean2, with_fixed * 2, target2)
    assert metrics["zero_std_fraction"] == pytest.approx(100 / len(mean2))
    assert metrics["coverage_95"] == pytest.approx(0.95, abs=0.006)


def test_temperature_scaling_undoes_overconfidence():
    rng = np.random.default_rng(0)
    logits = rng.normal(scale=1.5, size=(20_000, 4))
    true = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    labels = np.array([rng.choice(4, p=p) for p in true])
    overconfident = temper(true, 1 / 3)  # logits times 3
    assert fit_temperature(overconfident, labels) == pytest.approx(3.0, rel=0.05)
    entropy = -(true * np.log(true)).sum(-1)
    calibrated = classification_metrics(true, entropy, np.zeros(len(true)), labels)
    sharp = classification_metrics(overconfident, entropy, np.zeros(len(true)), labels)
    assert calibrated["ece"] < 0.02 < sharp["ece"]
    assert calibrated["nll"] < sharp["nll"]


def test_calibrating_a_classifier_keeps_its_predictions_and_mutual_information(structures):
    model = make_model("cgcnn", SMALL["cgcnn"])
    classifier = with_head(model, ClassOutput("c", num_classes=3))
    other = copy.deepcopy(classifier)
    torch.nn.init.normal_(other.heads["c"].mlp[-1].weight)
    uncertain = UncertainModel(Ensemble([classifier, other]), {"c": {"temperature": 0.3}})
    graphs = graphs_for(model, structures)
    draws = uncertain.raw_draws(graphs)
    raw = uncertain.summarize(draws, calibrated=False)["c"]
    calibrated = uncertain.summarize(draws, calibrated=True)["c"]
    np.testing.assert_array_equal(
        raw["probability"].argmax(-1), calibrated["probability"].argmax(-1)
    )
    assert (calibrated["probability"].max(-1) > raw["probability"].max(-1)).all()  # T < 1
    np.testing.assert_allclose(calibrated["mutual_information"], raw["mutual_information"])
    np.testing.assert_allclose(calibrated["probability"].sum(-1), 1.0)
