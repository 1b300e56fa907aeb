"""Every option of the training config groups composes; the ones that can run here instantiate."""

from __future__ import annotations

import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from lightning.pytorch.loggers import CSVLogger

from matgnn.config_dir import CONFIG_DIR, group_options
from matgnn.data import CrystalDataModule
from matgnn.graphs import GraphConfig
from matgnn.outputs import Output, TensorOutput
from matgnn.training.run import model_config, task_outputs

GROUPS = (
    "task",
    "trainer",
    "logger",
    "callbacks",
    "paths",
    "optimizer",
    "scheduler",
    "experiment",
    "uncertainty",
)


def compose_train(*overrides: str):
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose(config_name="train", overrides=["paths.output_dir=out", *overrides])


@pytest.mark.parametrize(("group", "option"), [(g, o) for g in GROUPS for o in group_options(g)])
def test_option_composes(group, option):
    cfg = compose_train(f"{group}={option}")
    # experiments are `@package _global_`: they set other groups' keys, not their own
    assert cfg.model is not None if group == "experiment" else cfg[group] is not None


@pytest.mark.parametrize("task", group_options("task"))
def test_task_declares_outputs_and_builds_a_datamodule(task):
    """Every task declares its outputs; a tensor task composes with the equivariant model, the
    others with CGCNN, into a model config with one head per output."""
    cfg = compose_train(f"task={task}")
    outputs = task_outputs(cfg)
    assert outputs and all(isinstance(o, Output) for o in outputs)
    names = [o.name for o in outputs]
    assert len(set(names)) == len(names)
    tensor = any(isinstance(o, TensorOutput) for o in outputs)
    cfg = compose_train(f"task={task}", *(["model=e3nn"] if tensor else []))
    model = model_config(cfg)
    assert sorted(model["heads"]) == sorted(names)
    graph = GraphConfig.from_dict(model["graph"])
    data = instantiate(cfg.task.data)(graph=graph, outputs=outputs)
    assert isinstance(data, CrystalDataModule)


def test_cpu_trainer_callbacks_and_csv_logger_instantiate(tmp_path):
    cfg = compose_train(f"paths.output_dir={tmp_path}")
    callbacks = [instantiate(c) for c in cfg.callbacks.values()]
    loggers = [instantiate(c) for c in cfg.logger.values()]
    trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers)
    assert trainer.max_epochs == cfg.trainer.max_epochs
    assert callbacks and all(any(c is t for t in trainer.callbacks) for c in callbacks)
    assert any(isinstance(x, CSVLogger) for x in trainer.loggers)


LOCAL_TASKS = [
    t
    for t in group_options("task")
    # matbench tables are checked in tests/data/test_sources.py; the AFLOW prototypes come with
    # pymatgen (tests/data/test_aflow_prototypes.py)
    if not any(
        name in str(compose_train(f"task={t}").task.data.source._target_)
        for name in ("matbench", "aflow_prototypes")
    )
    and not t.endswith("_sample")
]


#: tasks whose source is a matminer data set: matminer checks each file's published SHA-256
#: before reading it, so only the full file in ../shared/data will do (the ``*_sample`` tasks
#: run the same record-building code in CI)
MATMINER_TASKS = {
    t for t in LOCAL_TASKS if compose_train(f"task={t}").task.data.source._target_.endswith(
        ("tensors.dielectric", "tensors.elastic_tensor")
    )
}  # fmt: skip


@pytest.mark.parametrize("task", LOCAL_TASKS)
def test_task_source_provides_every_output_target(task, request):
    """Through the task's own config (not a direct call), the local copy yields a column for
    every declared output: the shipped subsets of tests/data/mini (in CI too), or
    ../shared/data for the matminer sets (skipped without it). Matbench tasks load their tables
    in tests/data/test_sources.py; the `_sample` tasks train in tests/training."""
    fixture = "shared_data_dir" if task in MATMINER_TASKS else "mini_data_dir"
    data_dir = request.getfixturevalue(fixture)
    tensor = any(isinstance(o, TensorOutput) for o in task_outputs(compose_train(f"task={task}")))
    cfg = compose_train(
        f"task={task}",
        f"paths.data_dir={data_dir}",
        "task.data.source.limit=30",
        *(["model=e3nn"] if tensor else []),
    )
    records = instantiate(cfg.task.data.source)()
    assert {o.target for o in task_outputs(cfg)} <= set(records.targets)
    # tensor loaders drop the crystals whose tensor is not in the structure's frame
    assert 25 <= len(records.ids) <= 30


#: the packaged first rows of each matminer set, for the task configs that read the full set
SHIPPED_ROWS = {
    "matgnn.data.sources.tensors.dielectric": "matgnn.data.sources.tensors.dielectric_sample",
    "matgnn.data.sources.tensors.elastic_tensor": "matgnn.data.sources.tensors.elastic_sample",
}


@pytest.mark.parametrize("task", sorted(MATMINER_TASKS))
def test_matminer_task_configs_find_their_targets_in_the_shipped_rows(task):
    """In CI too (no ../shared): each matminer task's own config, its source pointed at the
    packaged first rows of the same set (same loader, same arguments but the folder), yields
    every declared output's target."""
    cfg = compose_train(f"task={task}")
    source = cfg.task.data.source._target_
    tensor = any(isinstance(o, TensorOutput) for o in task_outputs(cfg))
    cfg = compose_train(
        f"task={task}",
        f"task.data.source._target_={SHIPPED_ROWS[source]}",
        "~task.data.source.data_dir",
        "task.data.source.limit=30",
        *(["model=e3nn"] if tensor else []),
    )
    records = instantiate(cfg.task.data.source)()
    assert {o.target for o in task_outputs(cfg)} <= set(records.targets)
    assert 25 <= len(records.ids) <= 30


@pytest.mark.parametrize("model", group_options("model"))
@pytest.mark.parametrize("task", ["mp_sample_eform", "mp_sample_is_metal", "phonon_dos_sample"])
def test_mc_dropout_puts_dropout_into_every_model_and_head(model, task):
    from matgnn.models.assembly import build
    from matgnn.uncertainty.estimators import dropout_layers

    cfg = compose_train(f"model={model}", f"task={task}", "uncertainty=mc_dropout")
    built = build(model_config(cfg))
    probabilities = {layer.p for layer in dropout_layers(built)}
    assert probabilities == {cfg.uncertainty.dropout}
    assert dropout_layers(built.backbone) and all(dropout_layers(h) for h in built.heads.values())


def test_default_data_dir_is_the_paths_config_default(monkeypatch):
    from pathlib import Path

    from matgnn.config_dir import default_data_dir

    monkeypatch.setenv("MATGNN_DATA_DIR", "/somewhere/data")
    assert default_data_dir() == Path("/somewhere/data")
    monkeypatch.delenv("MATGNN_DATA_DIR")
    assert default_data_dir() == Path("../shared/data")


@pytest.mark.parametrize(
    ("task", "added"),
    [("dielectric_sample", ""), ("born_charges_sample", "1e"), ("elastic_sample", "4e")],
)
def test_tensor_tasks_give_the_backbone_the_irreps_their_heads_need(task, added):
    """model=e3nn emits 64x0e + 16x2e; a general rank-2 head (Born charges) also needs 1e, the
    elastic head 4e: model_config adds them (mul 16) and the checkpoint records the result."""
    model = model_config(compose_train("model=e3nn", f"task={task}"))
    irreps = model["backbone"]["irreps_out"]
    if added:
        assert f"16x{added}" in irreps and "64x0e" in irreps and "16x2e" in irreps
    else:
        assert irreps == "64x0e + 16x2e"
    instantiate(model)  # every head finds its irreps


def test_slurm_trainer_takes_nodes_devices_and_ranks_from_the_allocation(monkeypatch):
    """``trainer=slurm`` inside a 2-node job with one task per node (as ``srun`` sets it):
    Lightning's SLURMEnvironment, 2 nodes, this task's global rank from SLURM."""
    for key, value in {
        "SLURM_NNODES": "2",
        "SLURM_NTASKS_PER_NODE": "1",
        "SLURM_NTASKS": "2",
        "SLURM_PROCID": "1",
        "SLURM_LOCALID": "0",
        "SLURM_NODEID": "1",
        "SLURM_JOB_ID": "42",
        "SLURM_JOB_NAME": "matgnn",
        "SLURM_NODELIST": "node[1-2]",
    }.items():
        monkeypatch.setenv(key, value)
    # Lightning's SLURMEnvironment writes MASTER_ADDR/MASTER_PORT into os.environ when asked
    # for them; recorded here (set, then removed) so that the teardown removes them again, or a
    # later DDP run started from this process would wait for a rank-0 node called "node1"
    for key in ("MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.setenv(key, "")
        monkeypatch.delenv(key)
    import lightning.fabric.utilities.rank_zero as fabric_rank_zero
    import lightning.pytorch.utilities.rank_zero as pytorch_rank_zero
    import lightning_utilities.core.rank_zero as utilities_rank_zero
    from lightning.pytorch.plugins.environments import SLURMEnvironment

    # the trainer sets the process-wide rank-zero rank from SLURM (1 here): restored after the
    # test, or every later run in this process would think it is not rank 0 and write nothing
    for module in (fabric_rank_zero, pytorch_rank_zero, utilities_rank_zero):
        monkeypatch.setattr(module.rank_zero_only, "rank", module.rank_zero_only.rank)

    cfg = compose_train("trainer=slurm", "trainer.accelerator=cpu")
    trainer = instantiate(cfg.trainer, logger=False)
    environment = trainer.strategy.cluster_environment
    assert isinstance(environment, SLURMEnvironment)
    assert trainer.num_nodes == 2 and trainer.num_devices == 1
    assert environment.global_rank() == 1 and environment.world_size() == 2
    assert environment.main_address == "node1"
    assert pytorch_rank_zero.rank_zero_only.rank == 1  # what the monkeypatch restores
