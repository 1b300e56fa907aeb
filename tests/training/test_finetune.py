"""Fine-tuning: strict transfer with a readable diff, new heads, freezing (frozen weights and
batch-norm statistics unchanged by training), separate learning rates."""

from __future__ import annotations

import csv

import pytest
import torch
from pymatgen.core import Element
from torch_geometric.data import Batch

from matgnn import load_model
from matgnn.checkpoints.files import read_checkpoint
from matgnn.data.samples import mp_sample_structures
from matgnn.graphs import build_graph
from matgnn.graphs.elements import elements_of
from matgnn.outputs import ClassOutput
from matgnn.train import run
from matgnn.training.finetune import (
    TransferError,
    check_elements,
    freeze,
    load_strictly,
    parameter_groups,
    transfer,
)
from tests.models.helpers import MODEL_NAMES, SMALL, make_model
from tests.training.test_train import train_config
from tests.uncertainty.test_estimators import with_head


@pytest.fixture(scope="module")
def structures():
    return mp_sample_structures(6)[1]


def test_a_backbone_of_another_size_is_refused_with_every_difference():
    small = make_model("cgcnn", ["model.backbone.hidden_features=32"])
    large = make_model(
        "cgcnn", ["model.backbone.hidden_features=64", "model.backbone.num_layers=4"]
    )
    with pytest.raises(TransferError) as error:
        load_strictly(small.backbone, large.backbone.state_dict(), "backbone")
    message = str(error.value)
    assert "shape of embedding.weight: checkpoint [64, 92], model [32, 92]" in message
    assert "in the checkpoint only" in message and "convs.3." in message
    with pytest.raises(TransferError, match=r"missing in the checkpoint .*convs\.3\."):
        load_strictly(large.backbone, small.backbone.state_dict(), "backbone")


def test_transfer_copies_matching_heads_and_starts_new_ones(structures):
    source = make_model("cgcnn", SMALL["cgcnn"], seed=0)
    target = make_model("cgcnn", SMALL["cgcnn"], seed=1)
    batch = Batch.from_data_list([build_graph(s, source.graph_config()) for s in structures])
    done = transfer(target, source)
    assert done.copied_heads == ["y"] and done.new_heads == []
    torch.testing.assert_close(target(batch)["y"], source(batch)["y"])
    classifier = with_head(make_model("cgcnn", SMALL["cgcnn"], seed=2), ClassOutput("y"))
    done = transfer(classifier, source)
    assert done.new_heads == ["y"]  # regression -> classification: a new head
    torch.testing.assert_close(classifier.backbone(batch).scalars, source.backbone(batch).scalars)


def test_transfer_needs_the_same_graph_config():
    source = make_model("cgcnn", SMALL["cgcnn"])
    other = make_model("cgcnn", [*SMALL["cgcnn"], "model.graph.max_neighbors=8"])
    with pytest.raises(TransferError, match="max_neighbors=12 vs 8"):
        transfer(other, source)


@pytest.mark.parametrize("name", MODEL_NAMES)
@pytest.mark.parametrize("what", ["embeddings", "layers:1", "backbone"])
def test_frozen_parameters_do_not_change_in_a_step(name, what, structures):
    model = make_model(name, SMALL.get(name, [])).train()
    frozen = set(freeze(model, what))
    names = [f"backbone.{n}" for n, _ in model.backbone.named_parameters()]
    assert frozen and (what == "backbone") == (frozen == set(names))
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    optimizer = torch.optim.SGD(parameter_groups(model, 0.1, 0.5), lr=0.1)
    batch = Batch.from_data_list([build_graph(s, model.graph_config()) for s in structures])
    model(batch)["y"].square().sum().backward()
    optimizer.step()
    for n, p in model.named_parameters():
        if n in frozen:
            torch.testing.assert_close(p, before[n], msg=n)
    head = [n for n in before if n.startswith("heads.")]
    assert any(not torch.equal(model.get_parameter(n), before[n]) for n in head)


def test_freeze_options_are_checked():
    model = make_model("cgcnn", SMALL["cgcnn"])
    with pytest.raises(ValueError, match="k must be an integer from 1 to 3"):
        freeze(model, "layers:4")
    with pytest.raises(ValueError, match="choose one of none, embeddings, backbone"):
        freeze(model, "heads")


def test_parameter_groups_give_the_backbone_its_own_learning_rate():
    model = make_model("cgcnn", SMALL["cgcnn"])
    freeze(model, "embeddings")
    backbone, heads = parameter_groups(model, 1e-3, 0.1)
    assert backbone["lr"] == pytest.approx(1e-4) and heads["lr"] == 1e-3
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert sum(p.numel() for g in (backbone, heads) for p in g["params"]) == trainable
    (single,) = parameter_groups(model, 1e-3, 1.0)  # as without fine-tuning
    assert len(single["params"]) == sum(1 for p in model.parameters() if p.requires_grad)


def test_finetuning_from_the_command_line(tmp_path):
    base = tmp_path / "base"
    run(train_config(base, "cgcnn"))
    checkpoint = base / "checkpoints" / "best.ckpt"
    source = load_model(checkpoint)

    # new target, frozen backbone: backbone weights and batch-norm statistics stay as they were
    frozen = tmp_path / "frozen"
    run(
        train_config(
            frozen,
            "cgcnn",
            "task=mp_sample_is_metal",
            f"finetune.from={checkpoint}",
            "finetune.freeze=backbone",
            # validation and test hold elements that base's 48 training crystals lack (the
            # check has its own test below)
            "finetune.unseen_elements=allow",
        )
    )
    tuned = load_model(frozen / "checkpoints" / "last.ckpt")
    for key, value in source.backbone.state_dict().items():
        torch.testing.assert_close(tuned.backbone.state_dict()[key], value, msg=key)

    # same target, first 2 layers frozen, backbone at a tenth of the heads' learning rate
    tuned_dir = tmp_path / "layers"
    run(
        train_config(
            tuned_dir,
            "cgcnn",
            f"finetune.from={checkpoint}",
            "finetune.freeze=layers:2",
            "finetune.backbone_lr_scale=0.1",
            "finetune.keep_normalization=true",
            "seed=3",  # another split: refitted statistics would differ
            "finetune.unseen_elements=allow",  # the other split holds elements base never saw
        )
    )
    tuned = load_model(tuned_dir / "checkpoints" / "last.ckpt")
    torch.testing.assert_close(
        tuned.backbone.convs[1].state_dict(), source.backbone.convs[1].state_dict()
    )
    assert not torch.equal(
        tuned.backbone.convs[2].linear.weight, source.backbone.convs[2].linear.weight
    )
    name = "formation_energy_per_atom"
    for key in ("mean", "std"):
        torch.testing.assert_close(
            getattr(tuned.heads[name].normalizer, key), getattr(source.heads[name].normalizer, key)
        )
    refitted_dir = tmp_path / "refitted"
    run(
        train_config(
            refitted_dir,
            "cgcnn",
            f"finetune.from={checkpoint}",
            "seed=3",
            "finetune.unseen_elements=allow",
        )
    )
    refitted = load_model(refitted_dir / "checkpoints" / "last.ckpt")
    assert not torch.equal(refitted.heads[name].normalizer.mean, source.heads[name].normalizer.mean)
    with open(next(tuned_dir.glob("logs/*/metrics.csv"))) as handle:
        rows = [r for r in csv.DictReader(handle) if r.get("lr-AdamW/pg1")]
    assert float(rows[0]["lr-AdamW/pg1"]) == pytest.approx(0.1 * float(rows[0]["lr-AdamW/pg2"]))


def test_unseen_elements_are_refused_by_name_or_allowed(structures, caplog):
    config = make_model("cgcnn").graph_config()
    graphs = [build_graph(s, config) for s in structures]
    for k, graph in enumerate(graphs):
        graph.sample_id = f"s{k}"
    present = elements_of(graphs)
    assert present == sorted(present, key=lambda e: Element(e).Z)
    missing = present[-1]
    holders = [g.sample_id for g in graphs if missing in elements_of([g])]
    seen = present[:-1]
    with pytest.raises(
        TransferError,
        match=rf"1 elements that demo never saw.*{missing} "
        rf"\({len(holders)} structures: {holders[0]}",
    ):
        check_elements(seen, {"train": graphs}, source="demo")
    assert check_elements(seen, {"test": graphs}, policy="allow") == {missing: holders}
    assert "they are learned from the new data" in caplog.text
    assert check_elements(present, {"train": graphs}) == {}
    assert check_elements(None, {"train": graphs}) == {}
    assert "does not record its training elements" in caplog.text
    with pytest.raises(ValueError, match="unseen_elements must be one of"):
        check_elements(seen, {"train": graphs}, policy="ignore")


def test_runs_record_their_elements_and_finetuning_checks_them(tmp_path, caplog):
    base = tmp_path / "base"
    run(train_config(base, "cgcnn"))
    checkpoint = read_checkpoint(base / "checkpoints" / "best.ckpt")
    elements = checkpoint["hyper_parameters"]["provenance"]["elements"]
    assert "O" in elements and len(elements) > 10

    # a checkpoint that never saw oxygen: fine-tuning on oxides fails before training
    checkpoint["hyper_parameters"]["provenance"]["elements"] = [e for e in elements if e != "O"]
    no_oxygen = tmp_path / "no_oxygen.ckpt"
    torch.save(checkpoint, no_oxygen)
    # predicting with it: predicted, listed as extrapolations and named in a warning
    ids, structures = mp_sample_structures(20)
    oxides = [i for i, s in zip(ids, structures, strict=True) if "O" in s.composition]
    predictions = load_model(no_oxygen).predict(structures, ids)
    assert predictions.names == ids and predictions.unseen_elements["O"] == oxides
    assert not set(predictions.unseen_elements) & set(elements) - {"O"}
    assert oxides and "never saw in training" in caplog.text
    with pytest.raises(TransferError, match=r"never saw in training: O \("):
        run(train_config(tmp_path / "refused", "cgcnn", f"finetune.from={no_oxygen}"))
    # nothing written but the graph cache (which this test config keeps in the run folder)
    assert [p.name for p in (tmp_path / "refused").iterdir()] == ["cache"]
    allowed = tmp_path / "allowed"
    run(
        train_config(
            allowed, "cgcnn", f"finetune.from={no_oxygen}", "finetune.unseen_elements=allow"
        )
    )
    assert (allowed / "test_metrics.json").is_file()
