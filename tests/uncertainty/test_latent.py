"""Latent distance (matgnn.uncertainty.latent): brute-force nearest neighbours, distance 0 for
a training crystal, the distance std recovering a known law, ood scores in units of the
validation median, the ranking metrics on known answers, and the checkpoint's tensors checked
like the rest of a checkpoint."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch_geometric.data import Batch

from matgnn.checkpoints.files import check_checkpoint
from matgnn.checkpoints.safe_config import UnsafeConfigError
from matgnn.data.samples import mp_sample_structures
from matgnn.graphs import build_graph
from matgnn.uncertainty.estimators import LatentDistanceEstimator
from matgnn.uncertainty.evaluation import auroc, ranking_metrics
from matgnn.uncertainty.latent import (
    LatentDistance,
    distance_std,
    fit_distance_std,
    nearest_mean_distance,
)
from matgnn.uncertainty.model import UncertainModel
from tests.models.helpers import SMALL, make_model


def test_nearest_mean_distance_matches_brute_force():
    rng = np.random.default_rng(0)
    references, queries = rng.normal(size=(50, 6)), rng.normal(size=(9, 6))
    got = nearest_mean_distance(torch.tensor(queries), torch.tensor(references), k=3).numpy()
    for q, value in zip(queries, got, strict=True):
        d = sorted(np.sqrt(((references - q) ** 2).sum(axis=1)))
        assert value == pytest.approx(np.mean(d[:3]), rel=1e-12)
    # more neighbours than references: the mean over all of them
    few = nearest_mean_distance(torch.tensor(queries), torch.tensor(references[:2]), k=5)
    brute = np.sqrt(((queries[:, None] - references[None, :2]) ** 2).sum(-1)).mean(1)
    np.testing.assert_allclose(few.numpy(), brute, rtol=1e-12)


@pytest.fixture(scope="module")
def trained_like():
    """A small CGCNN (random weights) and graphs of 24 real MP crystals."""
    model = make_model("cgcnn", SMALL["cgcnn"])
    structures = mp_sample_structures(24)[1]
    graphs = [build_graph(s, model.graph_config(), name=str(k)) for k, s in enumerate(structures)]
    return model, graphs


def test_a_training_crystal_is_at_distance_zero(trained_like):
    model, graphs = trained_like
    train, other = graphs[:16], graphs[16:]
    latent = LatentDistance.fit([model], train, neighbours=1)
    on_train = latent.distances([model], Batch.from_data_list(train)).numpy()
    np.testing.assert_allclose(on_train, 0.0, atol=1e-5)  # float32 references
    off = latent.distances([model], Batch.from_data_list(other)).numpy()
    assert (off > 1e-3).all()
    # k = 3: the crystal itself (0) and its two nearest others, in standardised features
    latent3 = LatentDistance.fit([model], train, neighbours=3)
    vectors = (model.embed(Batch.from_data_list(train)) - latent3.center[0]) / latent3.scale[0]
    brute = torch.cdist(vectors, vectors).sort(dim=1).values[:, :3].mean(dim=1)
    np.testing.assert_allclose(
        latent3.distances([model], Batch.from_data_list(train)).numpy(), brute, atol=1e-5
    )


def test_ood_scores_are_in_units_of_the_validation_median(trained_like):
    model, graphs = trained_like
    latent = LatentDistance.fit([model], graphs[:12], neighbours=2)
    validation = latent.distances([model], Batch.from_data_list(graphs[12:])).numpy()
    latent.fit_scale(validation)
    scores = latent.ood_scores(validation)
    assert np.median(scores) == pytest.approx(1.0)
    assert latent.threshold == pytest.approx(np.percentile(scores, 99))
    # the state round-trips through a checkpoint's check
    restored = LatentDistance.from_state(latent.state())
    np.testing.assert_allclose(restored.ood_scores(validation), scores)


def test_an_ensemble_distance_is_the_mean_of_its_members(trained_like):
    _, graphs = trained_like
    models = [make_model("cgcnn", SMALL["cgcnn"], seed=s) for s in (1, 2)]
    both = LatentDistance.fit(models, graphs[:12], neighbours=2)
    alone = [LatentDistance.fit([m], graphs[:12], neighbours=2) for m in models]
    batch = Batch.from_data_list(graphs[12:])
    expected = (alone[0].distances(models[:1], batch) + alone[1].distances(models[1:], batch)) / 2
    np.testing.assert_allclose(both.distances(models, batch).numpy(), expected.numpy(), rtol=1e-6)
    with pytest.raises(ValueError, match="fitted for 2 models, got 1"):
        both.distances(models[:1], batch)


def test_the_distance_std_recovers_a_known_law():
    rng = np.random.default_rng(1)
    distance = rng.uniform(0.2, 3.0, size=20_000)
    law = {"std": 0.0, "constant": 0.1, "distance": 0.5}
    residual = rng.normal(size=distance.size) * distance_std(distance, law)
    fitted = fit_distance_std(distance, residual)
    assert fitted["std"] == 0.0  # one deterministic model: no std of its own
    assert fitted["constant"] == pytest.approx(0.1, rel=0.1)
    assert fitted["distance"] == pytest.approx(0.5, rel=0.03)
    # with the estimator's own std (an ensemble's spread, half the true one) as a third term
    own = rng.uniform(0.05, 0.4, size=distance.size)
    law = {"std": 2.0, "constant": 0.05, "distance": 0.2}
    residual = rng.normal(size=distance.size) * distance_std(distance, law, own)
    fitted = fit_distance_std(distance, residual, own)
    assert fitted["std"] == pytest.approx(2.0, rel=0.05)
    assert fitted["distance"] == pytest.approx(0.2, rel=0.1)


def test_latent_distance_is_refused_for_outputs_it_cannot_serve():
    from matgnn.outputs import GaussianOutput
    from tests.uncertainty.test_estimators import with_head

    plain = make_model("cgcnn", SMALL["cgcnn"])
    LatentDistanceEstimator(plain)
    gaussian = with_head(plain, GaussianOutput("y"))
    with pytest.raises(ValueError, match="carry their own variance"):
        LatentDistanceEstimator(gaussian)
    with pytest.raises(ValueError, match="fit_latent on the training split first"):
        UncertainModel(LatentDistanceEstimator(plain)).calibrate([object()], draws={})


def test_ranking_metrics_on_known_answers():
    error = np.arange(100.0)
    same = ranking_metrics(error, error)
    assert same["spearman"] == pytest.approx(1.0) and same["auroc_worst_decile"] == 1.0
    reverse = ranking_metrics(error, -error)
    assert reverse["spearman"] == pytest.approx(-1.0) and reverse["auroc_worst_decile"] == 0.0
    assert np.isnan(ranking_metrics(error, np.ones(100))["spearman"])  # a constant score
    # ties count half; 2 positives, 2 negatives, all scores equal
    assert auroc([True, True, False, False], [1, 1, 1, 1]) == 0.5
    assert auroc([True, False, False], [0.9, 0.5, 0.95]) == 0.5
    assert np.isnan(auroc([False, False], [1, 2]))


def test_a_crafted_latent_distance_is_refused_on_load():
    from matgnn.checkpoints.migrations import migrate
    from tests.checkpoints.test_safe_loading import EFORM

    checkpoint = migrate(torch.load(EFORM, map_location="cpu", weights_only=True))
    good = {
        "references": [torch.zeros(2, 2)],
        "center": [torch.zeros(2)],
        "scale": [torch.ones(2)],
        "neighbours": 1,
        "median": 1.0,
        "threshold": 2.0,
    }
    check_checkpoint({**checkpoint, "latent_distance": good})
    bad = {**good, "references": ["os.system"]}
    with pytest.raises(UnsafeConfigError, match=r"latent_distance\.references"):
        check_checkpoint({**checkpoint, "latent_distance": bad})
    hydra = {**good, "neighbours": {"_target_": "os.system"}}
    with pytest.raises(UnsafeConfigError, match="_target_"):
        check_checkpoint({**checkpoint, "latent_distance": hydra})


def test_the_latent_state_survives_a_checkpoint_file(trained_like, tmp_path):
    from matgnn.checkpoints.files import read_checkpoint
    from matgnn.checkpoints.migrations import migrate
    from tests.checkpoints.test_safe_loading import EFORM

    model, graphs = trained_like
    latent = LatentDistance.fit([model], graphs[:12], neighbours=2)
    latent.fit_scale(latent.distances([model], Batch.from_data_list(graphs[12:])).numpy())
    checkpoint = migrate(torch.load(EFORM, map_location="cpu", weights_only=True))
    torch.save({**checkpoint, "latent_distance": latent.state()}, tmp_path / "c.ckpt")
    restored = LatentDistance.from_state(read_checkpoint(tmp_path / "c.ckpt")["latent_distance"])
    batch = Batch.from_data_list(graphs[12:])
    np.testing.assert_allclose(
        restored.distances([model], batch).numpy(), latent.distances([model], batch).numpy()
    )
    assert (restored.median, restored.threshold) == (latent.median, latent.threshold)
    # a reference of another width than its centre is refused on load
    bad = {**latent.state(), "center": [torch.zeros(3)]}
    torch.save({**checkpoint, "latent_distance": bad}, tmp_path / "bad.ckpt")
    with pytest.raises(ValueError, match="one \\[R, F\\] reference"):
        read_checkpoint(tmp_path / "bad.ckpt")


def test_a_distance_aware_std_follows_its_law_part_by_part():
    from matgnn.uncertainty.estimators import Ensemble
    from matgnn.uncertainty.latent import DISTANCE_KEY

    models = [make_model("cgcnn", SMALL["cgcnn"], seed=s) for s in (1, 2)]
    law = {"std": 2.0, "constant": 0.1, "distance": 0.3}
    uncertain = UncertainModel(Ensemble(models), distance_std={"y": [law]})
    draws = {
        "y": np.array([[1.0, 2.0, 3.0], [1.5, 2.0, 2.0]]),
        DISTANCE_KEY: np.array([[0.5, 1.0, 4.0]]),
    }
    summary = uncertain.summarize(draws, calibrated=False)["y"]
    own = np.array([0.25, 0.0, 0.5])  # the members' spread: std of (1, 1.5), (2, 2), (3, 2)
    d = draws[DISTANCE_KEY][0]
    expected = np.sqrt((2 * own) ** 2 + 0.1**2 + (0.3 * d) ** 2)
    expected[1] = 0.0  # members that agree exactly: a component fixed like a symmetry zero
    np.testing.assert_allclose(summary["std"], expected)
    np.testing.assert_allclose(summary["aleatoric_std"] ** 2 + summary["epistemic_std"] ** 2,
                               summary["std"] ** 2)  # fmt: skip
    np.testing.assert_allclose(summary["epistemic_std"][[0, 2]],
                               np.sqrt((2 * own) ** 2 + (0.3 * d) ** 2)[[0, 2]])  # fmt: skip
    # nothing drawn (every input rejected): empty summaries, no error
    empty = uncertain.summarize({"y": np.empty((2, 0))}, calibrated=False)["y"]
    assert empty["std"].shape == (0,)


def test_an_uncertain_model_without_a_latent_distance_predicts_as_before(trained_like):
    from matgnn.uncertainty.estimators import Ensemble

    _, graphs = trained_like
    models = [make_model("cgcnn", SMALL["cgcnn"], seed=s) for s in (1, 2)]
    old = UncertainModel(Ensemble(models))  # a checkpoint from before: no latent_distance
    predictions = old.predict_graphs(graphs[:4])
    assert predictions.ood_score is None and "std" in predictions["y"]
