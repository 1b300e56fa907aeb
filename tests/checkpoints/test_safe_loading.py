"""Crafted checkpoints are refused before anything of them runs; real ones (every format) load.

Each payload would have a side effect if it were ever called: it writes, or opens for writing,
a marker file. Every test checks the refusal *and* that the marker does not exist afterwards,
through every way a checkpoint comes in (load_model, load_pretrained, matgnn-predict,
finetune.from, ensembles, uncertainty checkpoints, slim_checkpoint)."""

from __future__ import annotations

import copy
import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

import matgnn
from matgnn.checkpoints import registry, safe_config
from matgnn.checkpoints.files import (
    CheckpointError,
    check_checkpoint,
    load_model,
    read_checkpoint,
    slim_checkpoint,
)
from matgnn.checkpoints.migrations import FORMAT_KEY, FORMAT_VERSION, LEGACY_TARGETS, migrate
from matgnn.checkpoints.pretrained import PACKAGE_DIR, load_pretrained
from matgnn.data.samples import mp_sample_structures
from matgnn.graphs.cache import file_sha256
from matgnn.predict import main as predict_main
from matgnn.uncertainty.model import ensemble_from_checkpoints, load_uncertain_model

SHIPPED = sorted(p.parent.name for p in PACKAGE_DIR.glob("*/card.json"))
EFORM = PACKAGE_DIR / "cgcnn_mp2018_eform" / "model.ckpt"


class OpensMarker:
    """Unpickling this opens ``path`` for writing (creates the file): the code a pickle runs."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


@pytest.fixture
def marker(tmp_path) -> Path:
    path = tmp_path / "PWNED"
    yield path
    assert not path.exists(), "a crafted checkpoint ran code"


@pytest.fixture(scope="module")
def original() -> dict:
    """The shipped formation-energy checkpoint as stored (format 1, Hydra targets)."""
    return torch.load(EFORM, map_location="cpu", weights_only=True)


@pytest.fixture(scope="module")
def current(original) -> dict:
    """The same checkpoint in the current format."""
    return migrate(original)


def pickle_file(path: Path, marker: Path) -> Path:
    with open(path, "wb") as handle:
        pickle.dump({"weights": OpensMarker(marker)}, handle)
    return path


def npy_file(path: Path, marker: Path) -> Path:
    np.save(path, np.array([OpensMarker(marker)], dtype=object), allow_pickle=True)
    return path


def payloads(tmp_path: Path, marker: Path) -> dict[str, dict]:
    """The attacks of the issue, as Hydra nodes: each one runs code if instantiated."""
    return {
        "file_write": {
            "_target_": "pathlib.Path.write_text",
            "self": {"_target_": "pathlib.Path", "_args_": [str(marker)]},
            "data": "x",
        },
        "torch_load": {
            "_target_": "torch.load",
            "f": str(pickle_file(tmp_path / "evil.pt", marker)),
            "weights_only": False,
        },
        "numpy_load": {
            "_target_": "numpy.load",
            "file": str(npy_file(tmp_path / "evil.npy", marker)),
            "allow_pickle": True,
        },
    }


def places(model: dict, payload: dict) -> dict[str, dict]:
    """``model`` (a model config) with ``payload`` put in each part of it."""
    out = {}
    root = copy.deepcopy(model)
    out["model"] = payload
    for key in ("graph", "backbone"):
        changed = copy.deepcopy(root)
        changed[key] = payload
        out[key] = changed
    changed = copy.deepcopy(root)
    changed["backbone"]["atom_features"] = payload  # nested inside a real backbone
    out["backbone_argument"] = changed
    changed = copy.deepcopy(root)
    name = next(iter(changed["heads"]))
    changed["heads"][name] = {**payload, "_partial_": True}
    out["head"] = changed
    changed = copy.deepcopy(root)
    changed["outputs"][0] = payload
    out["output"] = changed
    return out


def write(path: Path, checkpoint: dict) -> Path:
    torch.save(checkpoint, path)
    return path


#: why each format refuses a Hydra node: format 1 maps ``_target_`` through the fixed table of
#: paths matgnn wrote; the current format has no ``_target_`` at all
REFUSALS = {
    "original": "not a class that matgnn ever wrote",
    "current": "may not carry Hydra's '_target_'",
}


@pytest.mark.parametrize("form", sorted(REFUSALS))
@pytest.mark.parametrize("attack", ["file_write", "torch_load", "numpy_load"])
@pytest.mark.parametrize(
    "where", ["model", "graph", "backbone", "backbone_argument", "head", "output"]
)
def test_a_hydra_payload_anywhere_in_the_model_is_refused(
    request, tmp_path, marker, form, attack, where
):
    real = request.getfixturevalue(form)  # the shipped checkpoint, as stored or migrated
    crafted = copy.deepcopy(real)
    model = places(real["hyper_parameters"]["model"], payloads(tmp_path, marker)[attack])
    crafted["hyper_parameters"]["model"] = model[where]
    path = write(tmp_path / "crafted.ckpt", crafted)
    with pytest.raises(CheckpointError, match=r"crafted\.ckpt: refused: hyper_parameters\.model"):
        load_model(path)
    with pytest.raises(CheckpointError, match=REFUSALS[form]):
        matgnn.load_model(path)


@pytest.mark.parametrize(
    "name", ["pathlib.Path", "os.system", "builtins.eval", "torch.load", "CrystalModel", ""]
)
def test_a_class_name_outside_the_registry_is_refused_with_its_key_path(current, tmp_path, name):
    crafted = copy.deepcopy(current)
    crafted["hyper_parameters"]["model"]["backbone"]["@class"] = name
    path = write(tmp_path / "crafted.ckpt", crafted)
    with pytest.raises(
        CheckpointError,
        match=r"hyper_parameters\.model\.backbone\.@class: .* not a registered matgnn class",
    ):
        load_model(path)


@pytest.mark.parametrize(
    "key, value",
    [
        ("provenance", {"data_source": {"_target_": "pathlib.Path.write_text", "self": "x"}}),
        ("provenance", {"note": {"@class": "cgcnn"}}),
        ("recipe", {"optimizer": {"_target_": "torch.load", "f": "x", "weights_only": False}}),
        ("output_dir", {"_args_": ["x"]}),
    ],
)
def test_class_names_in_the_plain_data_parts_are_refused(current, tmp_path, key, value):
    crafted = copy.deepcopy(current)
    crafted["hyper_parameters"][key] = value
    path = write(tmp_path / "crafted.ckpt", crafted)
    with pytest.raises(CheckpointError, match=rf"hyper_parameters\.{key}\."):
        load_model(path)


def test_the_provenance_of_an_old_file_keeps_its_loader_as_a_description(original):
    migrated = migrate(original)
    source = migrated["hyper_parameters"]["provenance"]["data_source"]
    assert source["class"] == "matgnn.data.sources.mp.mp2018" and "_target_" not in source
    assert "optimizer" not in migrated["hyper_parameters"]
    assert migrated["hyper_parameters"]["recipe"]["optimizer"]["class"] == "torch.optim.AdamW"


def test_a_pickle_inside_the_file_never_runs(tmp_path, marker, current):
    crafted = copy.deepcopy(current)
    crafted["hyper_parameters"]["provenance"]["evil"] = OpensMarker(marker)
    path = tmp_path / "pickled.ckpt"
    torch.save(crafted, path)
    with pytest.raises(CheckpointError, match=r"pickled\.ckpt: cannot be read as a checkpoint"):
        load_model(path)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda c: c.update({FORMAT_KEY: 99}), "written by a newer matgnn"),
        (lambda c: c.update({FORMAT_KEY: "2"}), "must be an integer"),
        (lambda c: c["hyper_parameters"]["model"].update({"@version": 99}), "version 99"),
        (lambda c: c["hyper_parameters"]["model"].update({"@import": "os"}), "unknown marker"),
        (lambda c: c["hyper_parameters"]["model"].update({"@class": "cgcnn"}), "must be a"),
        (lambda c: c.update({"uncertainty": {"estimator": "os.system"}}), "estimator"),
        (lambda c: c.update({"state_dict": {"model.x": "not a tensor"}}), "state_dict"),
        (lambda c: c.update({"ensemble_state_dicts": [{"w": 1}]}), r"ensemble_state_dicts\[0\]"),
    ],
)
def test_other_malformed_checkpoints_are_refused_in_words(current, tmp_path, change, message):
    crafted = copy.deepcopy(current)
    change(crafted)
    path = write(tmp_path / "bad.ckpt", crafted)
    with pytest.raises(CheckpointError, match=message):
        load_model(path)


def test_weights_that_do_not_fit_the_model_are_refused_naming_the_file(current, tmp_path, capsys):
    """A missing or misshapen weight is a CheckpointError naming the file (load_model,
    matgnn-predict), not torch's load_state_dict traceback."""
    crafted = copy.deepcopy(current)
    key = next(k for k in crafted["state_dict"] if k.endswith("weight"))
    crafted["state_dict"][key] = crafted["state_dict"][key][..., :1].clone()
    path = write(tmp_path / "misshapen.ckpt", crafted)
    with pytest.raises(CheckpointError, match=rf"^{path}: its weights do not fit.*size mismatch"):
        load_model(path)
    del crafted["state_dict"][key]
    path = write(tmp_path / "missing.ckpt", crafted)
    with pytest.raises(CheckpointError, match=rf"^{path}: its weights do not fit.*Missing key"):
        load_model(path)
    structures = tmp_path / "in"
    structures.mkdir()
    _, [structure] = mp_sample_structures(1)
    structure.to(filename=str(structures / "one.cif"))
    assert predict_main([f"ckpt={path}", f"input={structures}"]) == 2
    assert f"{path}: its weights do not fit" in capsys.readouterr().err


def test_a_deeply_nested_config_is_refused(current, tmp_path):
    crafted = copy.deepcopy(current)
    deep: dict = {}
    node = deep
    for _ in range(40):
        node["x"] = {}
        node = node["x"]
    crafted["hyper_parameters"]["provenance"]["deep"] = deep
    with pytest.raises(CheckpointError, match="nested deeper"):
        load_model(write(tmp_path / "deep.ckpt", crafted))


@pytest.fixture
def crafted_file(original, tmp_path, marker) -> Path:
    crafted = copy.deepcopy(original)
    crafted["hyper_parameters"]["model"]["backbone"] = payloads(tmp_path, marker)["torch_load"]
    return write(tmp_path / "crafted.ckpt", crafted)


def test_every_entry_point_refuses_the_crafted_file(crafted_file, tmp_path, monkeypatch, capsys):
    # matgnn-predict: a usage error (exit 2) that names the file and the key path
    structures = tmp_path / "in"
    structures.mkdir()
    _, [structure] = mp_sample_structures(1)
    structure.to(filename=str(structures / "one.cif"))
    assert predict_main([f"ckpt={crafted_file}", f"input={structures}"]) == 2
    assert "hyper_parameters.model.backbone" in capsys.readouterr().err
    # an ensemble of checkpoints, an uncertainty checkpoint, slimming
    with pytest.raises(CheckpointError):
        ensemble_from_checkpoints([EFORM, crafted_file])
    with pytest.raises(CheckpointError):
        load_uncertain_model(crafted_file)
    with pytest.raises(CheckpointError):
        slim_checkpoint(crafted_file, tmp_path / "slim.ckpt")
    # a pretrained folder whose card matches the crafted file
    folder = tmp_path / "zoo" / "evil"
    folder.mkdir(parents=True)
    (folder / "model.ckpt").write_bytes(crafted_file.read_bytes())
    card = {"name": "evil", "task": "t", "data": "d", "metric": "m", "file": "model.ckpt"}
    card["sha256"] = file_sha256(folder / "model.ckpt")
    (folder / "card.json").write_text(json.dumps(card))
    monkeypatch.setenv("MATGNN_PRETRAINED_DIR", str(tmp_path / "zoo"))
    with pytest.raises(CheckpointError):
        load_pretrained("evil")
    # fine-tuning from it, before anything is trained
    from matgnn.training.run import model_config
    from tests.training.test_train import train_config

    cfg = train_config(tmp_path / "run", "cgcnn", f"finetune.from={crafted_file}")
    with pytest.raises(CheckpointError):
        model_config(cfg)


def written_before_format_versions(name: str) -> bool:
    stored = torch.load(PACKAGE_DIR / name / "model.ckpt", map_location="cpu", weights_only=True)
    return FORMAT_KEY not in stored


#: the shipped models made before format versions (the converted cgcnn_xie2018_* are format 2)
SHIPPED_OLD_FORMAT = [name for name in SHIPPED if written_before_format_versions(name)]


def test_the_package_still_ships_old_format_models():
    assert len(SHIPPED_OLD_FORMAT) == 3, SHIPPED_OLD_FORMAT


@pytest.mark.parametrize("name", SHIPPED_OLD_FORMAT)
def test_shipped_old_format_models_load_and_round_trip_through_the_current_format(name, tmp_path):
    path = PACKAGE_DIR / name / "model.ckpt"
    stored = torch.load(path, map_location="cpu", weights_only=True)
    assert FORMAT_KEY not in stored  # written before format versions
    old = load_model(path)
    slim = slim_checkpoint(path, tmp_path / "slim.ckpt")
    rewritten = torch.load(slim, map_location="cpu", weights_only=True)
    assert rewritten[FORMAT_KEY] == FORMAT_VERSION
    text = json.dumps(rewritten["hyper_parameters"])
    assert "_target_" not in text and "matgnn." not in text.replace("matgnn.data", "")
    new = load_model(slim)
    ids, structures = mp_sample_structures(6)
    for output in old.outputs:
        np.testing.assert_array_equal(
            np.asarray(old.predict(structures, ids)[output.name]),
            np.asarray(new.predict(structures, ids)[output.name]),
        )


def test_a_checkpoint_names_no_module_so_moving_a_class_breaks_nothing(current):
    """The stored model refers to classes by registered name only; the registry maps the name
    to wherever the class lives now."""
    model = current["hyper_parameters"]["model"]
    names = set()

    def walk(node):
        if isinstance(node, dict):
            if "@class" in node:
                names.add(node["@class"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(model)
    assert names == {"crystal_model", "graph_config", "cgcnn", "regression_head", "scalar_output"}
    assert not any("." in n for n in names)


def test_every_legacy_target_and_every_config_class_is_registered():
    known = registry.registered()
    assert set(LEGACY_TARGETS.values()) <= set(known)
    for name, cls in known.items():
        assert cls.registry_name == name


def test_class_migrations_bring_old_arguments_up_to_date():
    @registry.register("test_migrating_toy", version=2)
    class Toy:
        def __init__(self, width: int) -> None:
            self.width = width

    @registry.migration("test_migrating_toy", 1)
    def renamed(args):
        return {"width": args.pop("size"), **args}

    built = safe_config.build({"@class": "test_migrating_toy", "@version": 1, "size": 7})
    assert built.width == 7
    with pytest.raises(safe_config.UnsafeConfigError, match="newer matgnn"):
        safe_config.build({"@class": "test_migrating_toy", "@version": 3, "width": 1})


def test_checks_run_before_any_construction(current, monkeypatch):
    """A config whose last part is bad constructs nothing (the whole tree is checked first)."""
    built = []
    original_init = registry.entry("cgcnn").cls.__init__

    def spy(self, *args, **kwargs):
        built.append("cgcnn")
        original_init(self, *args, **kwargs)

    monkeypatch.setattr(registry.entry("cgcnn").cls, "__init__", spy)
    crafted = copy.deepcopy(current)
    crafted["hyper_parameters"]["model"]["outputs"][0]["@class"] = "os.system"
    with pytest.raises(safe_config.UnsafeConfigError):
        check_checkpoint(crafted)
    from matgnn.checkpoints.files import model_from_checkpoint

    with pytest.raises(safe_config.UnsafeConfigError):
        model_from_checkpoint(crafted)
    assert built == []


def test_read_checkpoint_returns_the_current_format(tmp_path):
    assert read_checkpoint(EFORM)[FORMAT_KEY] == FORMAT_VERSION


def test_resuming_from_a_crafted_checkpoint_is_refused_before_training(crafted_file, tmp_path):
    from matgnn.training.run import checkpoint_to_resume, model_config
    from tests.training.test_train import train_config

    cfg = train_config(tmp_path / "run", "cgcnn", f"ckpt_path={crafted_file}")
    with pytest.raises(CheckpointError, match=r"hyper_parameters\.model\.backbone"):
        checkpoint_to_resume(cfg, tmp_path / "run", model_config(cfg))
    # an ensemble member passes its last.ckpt explicitly: checked the same way
    plain = train_config(tmp_path / "run", "cgcnn")
    with pytest.raises(CheckpointError):
        checkpoint_to_resume(plain, tmp_path / "run", model_config(plain), str(crafted_file))


def test_a_shared_reference_bomb_is_refused_quickly(current, tmp_path):
    import time

    node: list = ["x"]
    for _ in range(20):  # 2^20 values to walk, a few hundred bytes on disk
        node = [node, node]
    crafted = copy.deepcopy(current)
    crafted["hyper_parameters"]["provenance"]["bomb"] = node
    path = write(tmp_path / "bomb.ckpt", crafted)
    start = time.perf_counter()
    with pytest.raises(CheckpointError, match="more than 100000 values"):
        load_model(path)
    assert time.perf_counter() - start < 5


@pytest.mark.parametrize(
    "change, message",
    [
        ({"file": "../../escaped.ckpt"}, "file='../../escaped.ckpt' is not a plain name"),
        ({"file": "/tmp/absolute.ckpt"}, "is not a plain name"),
        ({"name": "../evil"}, "is not a plain name"),
        ({"url": "ftp://example.org/model.ckpt"}, "not an https or file URL"),
        ({"sha256": "abc"}, "sha256 is not a SHA-256"),
    ],
)
def test_a_pretrained_card_may_not_name_paths_outside_its_folder(
    tmp_path, monkeypatch, change, message
):
    folder = tmp_path / "zoo" / "model"
    folder.mkdir(parents=True)
    card = {
        "name": "model",
        "task": "t",
        "data": "d",
        "metric": "m",
        "file": "model.ckpt",
        "sha256": file_sha256(EFORM),
        **change,
    }
    (folder / "card.json").write_text(json.dumps(card))
    monkeypatch.setenv("MATGNN_PRETRAINED_DIR", str(tmp_path / "zoo"))
    with pytest.raises(ValueError, match=message):
        load_pretrained(card["name"])


def test_a_download_that_fails_its_checksum_is_not_kept(tmp_path, monkeypatch):
    from matgnn.checkpoints import pretrained

    folder = tmp_path / "zoo" / "remote"
    folder.mkdir(parents=True)
    served = tmp_path / "served.ckpt"
    served.write_bytes(b"not the model")
    card = {
        "name": "remote",
        "task": "t",
        "data": "d",
        "metric": "m",
        "file": "model.ckpt",
        "sha256": file_sha256(EFORM),
        "url": served.as_uri(),
    }
    (folder / "card.json").write_text(json.dumps(card))
    monkeypatch.setenv("MATGNN_PRETRAINED_DIR", str(tmp_path / "zoo"))
    monkeypatch.setattr(pretrained, "CACHE_DIR", tmp_path / "cache")
    with pytest.raises(ValueError, match="not kept"):
        load_pretrained("remote")
    assert not list((tmp_path / "cache").rglob("*"))[1:]  # only the empty model folder


def test_a_stored_matbench_config_is_compared_as_data_never_imported(tmp_path, marker):
    """A task folder's config.yaml (committed, from anyone) is read to refuse mixing recipes:
    a payload in it is compared as data, nothing of it is imported or called."""
    from omegaconf import OmegaConf

    from matgnn.matbench.runner import _recipe

    stored = OmegaConf.load(
        Path(__file__).parents[2]
        / "benchmarks/matbench/matbench_v0.1_matgnn_cgcnn/matbench_phonons/config.yaml"
    )
    evil = {"_target_": "pathlib.Path.touch", "self": str(marker)}
    stored.model.graph.cutoff = evil
    stored.model.backbone._target_ = "os.system"
    recipe = _recipe(stored)
    assert recipe["model"]["backbone"]["_target_"] == "os.system"  # a string, compared
    stored.model.graph = {"_target_": "matgnn.graphs.GraphConfig.preset", "name": "../../x"}
    with pytest.raises(ValueError, match="unknown graph preset"):
        _recipe(stored)
