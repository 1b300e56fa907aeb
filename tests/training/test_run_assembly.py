"""One place assembles a run: the model from (graph, backbone, outputs), the LightningModule
preparing itself from the data in ``setup("fit")``, ``main`` returning the monitored value;
and the defects found in passing (a fine-tuning source of another architecture, the process-
wide allocator setting)."""

from __future__ import annotations

import lightning as L
import numpy as np
import pytest
import torch

from matgnn.checkpoints.safe_config import CLASS
from matgnn.models import assembly
from matgnn.train import MONITORED, run
from matgnn.training import CrystalLitModule
from matgnn.training.allocator import configure_allocator
from matgnn.training.run import build_data, model_config, task_outputs
from matgnn.training.run_logs import read_logs
from tests.test_benchmark_scripts import tensor_run_args
from tests.training.test_train import train_config


def test_the_model_config_is_assembled_from_graph_backbone_and_outputs(tmp_path):
    cfg = train_config(tmp_path, "e3nn", "task=dielectric_sample")
    model = model_config(cfg)
    assert model[CLASS] == "crystal_model" and model["graph"][CLASS] == "graph_config"
    assert model["graph"]["cutoff"] == model["backbone"]["r_max"]  # the yaml's interpolation
    (output,) = task_outputs(cfg)
    assert list(model["heads"]) == [output.name] and model["heads"][output.name][CLASS] == (
        "tensor_head"
    )
    assert "2x2e" in model["backbone"]["irreps_out"] or "2e" in model["backbone"]["irreps_out"]
    built = assembly.build(model)
    assert [o.name for o in built.outputs] == [output.name]


def test_a_finetuning_source_of_another_architecture_is_refused_in_words(tmp_path):
    cfg = train_config(tmp_path, "alignn", "finetune.from=cgcnn_mp2018_eform")
    with pytest.raises(ValueError, match=r"is a cgcnn model, but this run chose model=alignn"):
        model_config(cfg)
    assert not (tmp_path / "checkpoints").exists()


def test_the_lightning_module_prepares_itself_under_a_plain_trainer(tmp_path):
    """Without matgnn.train: normalisers, provenance and freezing happen in setup("fit")."""
    cfg = train_config(tmp_path, "cgcnn")
    outputs = task_outputs(cfg)
    model = model_config(cfg, outputs)
    module = CrystalLitModule(model, provenance={"task": "mp_sample_eform"})
    data = build_data(cfg, module.model.graph_config(), module.outputs)
    head = module.model.heads[outputs[0].name]
    assert float(head.normalizer.std.squeeze()) == 1.0  # not fitted yet
    trainer = L.Trainer(
        max_epochs=1,
        limit_train_batches=1,
        limit_val_batches=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
    )
    trainer.fit(module, datamodule=data)
    targets = torch.cat([g[outputs[0].key] for g in data.subsets["train"]]).double()
    assert float(head.normalizer.std.squeeze()) == pytest.approx(
        float(targets.std(unbiased=False)), rel=1e-5
    )
    assert module.provenance["split_sizes"]["train"] == len(data.subsets["train"])
    assert len(module.provenance["split_sha256"]) == 64 and "O" in module.provenance["elements"]


def test_run_returns_the_best_monitored_value_for_a_sweeper(tmp_path):
    metrics = run(train_config(tmp_path, "cgcnn", "trainer.max_epochs=2"))
    logged = read_logs(tmp_path)["val_loss"].dropna()
    assert len(logged) == 2
    assert metrics[MONITORED] == pytest.approx(float(logged.min()), rel=1e-6)
    assert np.isfinite(metrics["test_loss"])


def test_the_allocator_is_left_alone_unless_asked(tmp_path):
    assert configure_allocator(False) is False
    cfg = train_config(tmp_path, "cgcnn")
    assert cfg.retain_freed_memory is False


def test_a_nan_loss_is_logged_as_nan_not_dropped(tmp_path):
    cfg = train_config(tmp_path, "cgcnn")
    module = CrystalLitModule(model_config(cfg, task_outputs(cfg)))
    for stage in ("val", "test"):
        mean = module.loss_means[stage]
        mean.update(torch.tensor(1.0), weight=2)  # a batch of 2 crystals
        mean.update(torch.tensor(4.0), weight=1)
        assert mean.compute().item() == pytest.approx(2.0), stage  # weighted by crystals
        mean.update(torch.tensor(float("nan")), weight=1)
        assert torch.isnan(mean.compute()), stage


def script_head_overrides(tmp_path, run: str) -> list[str]:
    """The ``task.heads`` overrides that benchmarks/tensors/run.sh passes to one run."""
    overrides = [a for a in tensor_run_args(tmp_path, run)[run] if a.startswith("+task.heads")]
    assert overrides, run
    return overrides


def test_task_heads_give_a_tensor_head_its_hidden_layer(tmp_path):
    """The overrides of benchmarks/tensors/run.sh's gated runs, as the script passes them:
    ``task.heads.<output>`` with a TensorHead / AtomTensorHead and ``hidden`` irreps, on
    SevenNet's block-3 features."""
    overrides = script_head_overrides(tmp_path, "sevennet_gated_born_charges")
    cfg = train_config(tmp_path, "sevennet", "task=born_charges_sample", *overrides)
    model = model_config(cfg)
    assert model["backbone"]["equivariant_blocks"] == [3] and model["backbone"]["split_parity"]
    assert model["heads"]["becs"][CLASS] == "atom_tensor_head"
    assert model["heads"]["eps"]["formula"] == "ij=ji"
    built = assembly.build(model)
    assert str(built.heads["becs"].hidden.irreps_out) == "128x0e+32x1e+32x2e"
    assert str(built.heads["eps"].hidden.irreps_out) == "128x0e+32x1e+32x2e"


def test_task_heads_give_sevennets_elastic_head_a_tensor_square(tmp_path):
    """The overrides of benchmarks/tensors/run.sh's gated SevenNet elastic run, as the script
    passes them: a TensorHead with ``square`` (and ``hidden``) through ``task.heads`` builds on
    SevenNet's block-3 features, whose l <= 2 alone it would refuse."""
    overrides = script_head_overrides(tmp_path, "sevennet_gated_square_elastic_tensor")
    cfg = train_config(tmp_path, "sevennet", "task=elastic_sample", *overrides)
    model = model_config(cfg)
    assert model["heads"]["elastic_tensor"]["square"] == "16x4e"
    built = assembly.build(model)
    head = built.heads["elastic_tensor"]
    assert str(head.square.irreps_out) == "16x4e" and head.rank == 4
    assert str(head.hidden.irreps_out) == "128x0e+32x1e+32x2e"
