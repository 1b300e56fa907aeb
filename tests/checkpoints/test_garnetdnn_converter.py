"""Ye et al.'s published unmixed networks (garnetdnn's Keras files), converted to
``ye2018_net`` models (``ye2018_garnet_unmixed``, ``ye2018_perovskite_unmixed``), predict what a
plain numpy forward pass of the published weights predicts, on real crystals."""

from __future__ import annotations

import pickletools
from pathlib import Path

import numpy as np
import pytest
import torch

from matgnn.checkpoints.converters.garnetdnn import (
    NETWORKS,
    PublishedFileError,
    convert,
    numpy_forward,
    read_published,
    read_scaler,
)
from matgnn.checkpoints.files import model_from_checkpoint
from matgnn.checkpoints.pretrained import PACKAGE_DIR, load_pretrained
from matgnn.data.sources.ye2018 import ye2018_garnet, ye2018_perovskite_sample
from matgnn.graphs.site_descriptors import site_descriptor
from matgnn.models.inference import predict

MODELS = Path(__file__).parent / "garnetdnn_models"


def crystals(name: str):
    if name == "ye2018_garnet_unmixed":
        return ye2018_garnet(mixed=False)
    return ye2018_perovskite_sample(mixed=False)


#: crystals the published networks cannot describe, by name: pymatgen tabulates Fe3+ at VI
#: twice (high and low spin), so there is no single radius; Sn2+ has no ionic radius at all
UNDESCRIBABLE = {"ye2018_garnet_unmixed": "Fe3+", "ye2018_perovskite_unmixed": "Sn2+"}


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_packaged_network_equals_numpy_forward_of_published_weights(name):
    network = NETWORKS[name]
    published = read_published(MODELS, network.structure_type, network.kind)
    records = crystals(name)
    descriptors, structures, ids, refused = [], [], [], {}
    for i, s in zip(records.ids, records.structures, strict=True):
        try:
            descriptors.append(site_descriptor(s, network.sites, 1, i))
        except ValueError as error:
            refused[i] = str(error)
            continue
        structures.append(s)
        ids.append(i)
    assert all(UNDESCRIBABLE[name] in reason for reason in refused.values())
    if name == "ye2018_garnet_unmixed":
        assert sorted(refused) == ["mp-19710", "mp-781609"]  # Tb3Fe5O12, Ho3Fe5O12
    expected = numpy_forward(published, np.array(descriptors))
    result = predict(load_pretrained(name), records.structures, records.ids)
    assert result.names == ids and set(result.rejected) == set(refused)  # named, not dropped
    got = np.asarray(result["ef_vs_binary_oxides"])
    np.testing.assert_allclose(got, expected, atol=2e-6, rtol=0)
    assert np.ptp(expected) > 0.05  # a real spread of energies, not a constant


def test_only_the_published_files_convert(tmp_path):
    import shutil

    shutil.copytree(MODELS, tmp_path / "models")
    scaler = tmp_path / "models" / "garnet" / "scaler_unmix.pkl"
    data = bytearray(scaler.read_bytes())
    position = next(  # the last byte of the first float64 buffer (mean_): a valid pickle still
        pos + 2 + len(arg) - 1
        for op, arg, pos in pickletools.genops(bytes(data))
        if isinstance(arg, bytes) and len(arg) == 48
    )
    data[position] ^= 1
    scaler.write_bytes(bytes(data))
    assert read_scaler(scaler)["n_samples_seen"] == 635  # still readable
    with pytest.raises(PublishedFileError, match="not the files published"):
        convert(tmp_path / "models", NETWORKS["ye2018_garnet_unmixed"])


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_packaged_checkpoint_is_the_conversion_of_the_published_files(name):
    converted = convert(MODELS, NETWORKS[name])
    shipped = torch.load(PACKAGE_DIR / name / "model.ckpt", weights_only=True)
    assert converted["hyper_parameters"] == shipped["hyper_parameters"]
    for key, value in converted["state_dict"].items():
        assert torch.equal(value, shipped["state_dict"][key]), key


def test_scaler_is_read_without_unpickling(monkeypatch):
    import pickle

    def refuse(*args, **kwargs):
        raise AssertionError("the scaler pickle was unpickled")

    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(pickle, "Unpickler", refuse)
    scaler = read_scaler(MODELS / "garnet" / "scaler_unmix.pkl")
    assert scaler["n_samples_seen"] == 635  # Ye et al.'s 635 unmixed garnets
    assert scaler["mean"].shape == (6,)
    np.testing.assert_allclose(scaler["scale"], np.sqrt(scaler["var"]))


def test_scaler_with_another_dtype_is_refused(tmp_path):
    data = (MODELS / "garnet" / "scaler_unmix.pkl").read_bytes()
    assert data.count(b"f8") == 1
    bad = tmp_path / "scaler_unmix.pkl"  # same length: only the dtype code changes
    bad.write_bytes(data.replace(b"f8", b"f4"))
    assert any(arg == "f4" for _, arg, _ in pickletools.genops(bad.read_bytes()))
    with pytest.raises(PublishedFileError, match="not all little-endian float64"):
        read_scaler(bad)


def test_mixed_site_network_is_read_but_not_converted():
    published = read_published(MODELS, "garnet", "c")
    shape = [(layer["units"], layer["activation"]) for layer in published["layers"]]
    assert shape == [(22, "relu"), (8, "linear"), (1, "linear")]
    assert published["layers"][0]["kernel"].shape[0] == 13  # 8 descriptors + 5 ordering bits
    mixed = NETWORKS["ye2018_garnet_unmixed"].__class__(
        "mixed", "garnet", "c", ("C:VIII", "A:VI", "D:IV"), "", ""
    )
    with pytest.raises(PublishedFileError, match="mixed-site models are not"):
        convert(MODELS, mixed)


def test_garnet_network_reads_the_garnet_descriptor_of_the_shipped_set():
    """Y3Al5O12 (mp-3050) through the packaged garnet network: inputs are Shannon radii at
    VIII/VI/IV, and the prediction is within Ye et al.'s error of the MP-derived target."""
    records = ye2018_garnet(mixed=False)
    index = list(records.ids).index("mp-3050")
    structure = records.structures[index]
    descriptor = site_descriptor(structure, ["C:VIII", "A:VI", "D:IV"], 1)
    np.testing.assert_allclose(descriptor[[0, 2, 4]], [1.019, 0.535, 0.39])  # Y3+ VIII, Al3+ VI, IV
    model = model_from_checkpoint(
        torch.load(PACKAGE_DIR / "ye2018_garnet_unmixed" / "model.ckpt", weights_only=True)
    )
    value = np.asarray(predict(model, [structure], ["mp-3050"])["ef_vs_binary_oxides"])[0]
    assert abs(value - records.targets["ef_vs_binary_oxides"][index]) < 0.03


def test_benchmark_json_of_the_perovskite_network_is_the_published_file():
    """benchmarks/stability/garnetdnn_perovskite_unmix_model.json (read earlier by hand) holds
    exactly what the converter reads from model_unmix.h5 and scaler_unmix.pkl."""
    import json

    stored = json.loads(
        (
            Path(__file__).parents[2]
            / "benchmarks"
            / "stability"
            / "garnetdnn_perovskite_unmix_model.json"
        ).read_text()
    )
    published = read_published(MODELS, "perovskite", "unmix")
    np.testing.assert_array_equal(stored["hidden_kernel"], published["layers"][0]["kernel"])
    np.testing.assert_array_equal(
        np.ravel(stored["output_kernel"]), published["layers"][1]["kernel"].ravel()
    )
    np.testing.assert_array_equal(stored["scaler_mean"], published["scaler"]["mean"])
    np.testing.assert_array_equal(stored["scaler_scale"], published["scaler"]["scale"])
    assert stored["scaler_n_samples_seen"] == published["scaler"]["n_samples_seen"] == 240
