"""One place that assembles a training run from a composed config: the task's outputs, the
model (assembled from graph, backbone and outputs), the data module, the LightningModule, the
trainer; then fit and test.

``matgnn.train`` only composes the config and starts :func:`fit_and_test` (or an ensemble of
it, :mod:`matgnn.uncertainty.training`). Everything kind-specific is asked of the outputs, the
model prepares itself from the data in ``setup("fit")`` (:class:`CrystalLitModule`), and the
checkpoint stores the assembled model as registry data.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf

from matgnn import __version__
from matgnn.checkpoints import safe_config
from matgnn.checkpoints.files import read_checkpoint
from matgnn.checkpoints.migrations import described
from matgnn.checkpoints.pretrained import resolve_checkpoint
from matgnn.huge_pages import describe as describe_huge_pages
from matgnn.models import assembly
from matgnn.outputs import GaussianOutput, Output, ScalarOutput
from matgnn.terminal import is_interactive
from matgnn.training.callbacks import BoundRetainedMemory
from matgnn.training.finetune import FineTuning
from matgnn.training.lit_module import CrystalLitModule

log = logging.getLogger(__name__)


def _plain(node: Any) -> Any:
    return OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node


def task_outputs(cfg: DictConfig) -> list[Output]:
    """The task's declared outputs (``task.outputs``: ``{key: output config}``); with
    ``uncertainty.variance_head`` (``uncertainty=mean_variance``, or an ensemble of
    mean-variance members) every scalar output gets a variance
    (:class:`~matgnn.outputs.GaussianOutput`)."""
    outputs = [instantiate(c) for c in (cfg.task.get("outputs") or {}).values() if c is not None]
    if not outputs:
        raise ValueError(f"task {cfg.task.get('name')!r} declares no outputs (task.outputs)")
    settings = cfg.get("uncertainty") or {}
    if settings.get("variance_head"):
        scalars = [o for o in outputs if type(o) is ScalarOutput]
        if not scalars:
            raise ValueError(
                f"a variance head (uncertainty=mean_variance, or uncertainty.variance_head) "
                f"needs a scalar regression output, but task {cfg.task.get('name')!r} has "
                f"{[type(o).__name__ for o in outputs]}: use uncertainty=ensemble or mc_dropout"
            )
        loss = settings.get("loss", "gaussian_nll")
        outputs = [GaussianOutput.from_scalar(o, loss) if o in scalars else o for o in outputs]
    return outputs


def model_config(cfg: DictConfig, outputs: Sequence[Output] | None = None) -> dict[str, Any]:
    """The assembled model config (registry data) that the run trains and its checkpoint
    stores: ``model=`` with one head per task output (``task.heads`` where given), or, with
    ``finetune.from``, the checkpoint's graph and backbone (:func:`assembly.with_source`)."""
    outputs = task_outputs(cfg) if outputs is None else outputs
    chosen = _plain(cfg.task.get("heads")) or {}
    heads = {name: assembly.from_hydra(head) for name, head in chosen.items()}
    model = assembly.assemble(assembly.from_hydra(_plain(cfg.model)), outputs, heads)
    source = (cfg.get("finetune") or {}).get("from")
    if source:
        saved = read_checkpoint(resolve_checkpoint(source))["hyper_parameters"]["model"]
        model = assembly.with_source(model, saved, str(source), chosen, outputs=outputs)
    return model


def task_provenance(cfg: DictConfig, outputs: Sequence[Output]) -> dict[str, Any]:
    """What a checkpoint records about the run before the data is read (the split and the
    training elements are added by the LightningModule's ``setup``)."""
    return {
        "matgnn_version": __version__,
        "task": cfg.task.get("name"),
        "model": HydraConfig.get().runtime.choices.get("model")
        if HydraConfig.initialized()
        else None,
        "targets": {o.name: o.target for o in outputs},
        "data_source": described(_plain(cfg.task.data.source)),
        "seed": int(cfg.seed),
    }


def check_restored_best(checkpoint: Mapping[str, Any], resumed: str) -> None:
    """Refuse a resumed checkpoint whose callback state names a best checkpoint outside the
    resumed file's own folder, or one that is not a safe matgnn checkpoint: Lightning restores
    that path from the file (``ModelCheckpoint.load_state_dict``) and tests it after training,
    so it is a path read from a file like any other. Checked before anything trains.

    Raises:
        CheckpointError: naming the resumed file and the path it names.
    """
    from matgnn.checkpoints.files import CheckpointError

    folder = Path(resumed).resolve().parent
    for key, state in (checkpoint.get("callbacks") or {}).items():
        best = state.get("best_model_path") if isinstance(state, Mapping) else None
        if not best or not str(key).startswith("ModelCheckpoint"):
            continue
        if not Path(best).resolve().is_relative_to(folder):
            raise CheckpointError(
                f"{resumed}: its checkpoint callback names the best checkpoint {best}, outside "
                f"the folder of the file resumed ({folder})"
            )
        if Path(best).is_file():  # (a moved run folder names its old place: Lightning fails)
            read_checkpoint(best)


def checkpoint_to_resume(
    cfg: DictConfig, output_dir: Path, model: Mapping, ckpt_path: str | None = None
) -> str | None:
    """``ckpt_path`` (given, else the config's), with ``last`` (and ``resume=<run dir>``)
    meaning the run's last.ckpt; the file is read and checked safely (the best checkpoint its
    callback state names too: :func:`check_restored_best`), and a checkpoint whose model
    config differs from this run's is refused in words."""
    ckpt_path = ckpt_path or cfg.get("ckpt_path")
    if cfg.get("resume") and ckpt_path is None:
        ckpt_path = "last"
    if ckpt_path == "last":
        ckpt_path = str(output_dir / "checkpoints" / "last.ckpt")
        if not Path(ckpt_path).is_file():
            raise FileNotFoundError(f"resume: no {ckpt_path} (has this run saved a checkpoint?)")
    if ckpt_path is None:
        return None
    checkpoint = read_checkpoint(ckpt_path)
    check_restored_best(checkpoint, ckpt_path)
    saved = checkpoint["hyper_parameters"]["model"]
    if saved != model:
        keys = sorted(k for k in set(saved) | set(model) if saved.get(k) != model.get(k))
        raise ValueError(
            f"resume: {ckpt_path} was trained with another model config (differs in {keys}); "
            "resume with the overrides of the original run"
        )
    return ckpt_path


def build_data(cfg: DictConfig, graph: Any, outputs: Sequence[Output]) -> Any:
    """The task's data module for ``graph`` and ``outputs``, with its graphs built and split."""
    data = instantiate(cfg.task.data)(graph=graph, outputs=outputs)
    data.setup("fit")
    return data


def build_module(cfg: DictConfig, model: Mapping, resuming: bool) -> CrystalLitModule:
    """The LightningModule of the run (the model is built here: a head that the backbone
    cannot feed fails before any graph is built)."""
    outputs = [safe_config.build(o) for o in model["outputs"]]  # no model built twice (RNG)
    return CrystalLitModule(
        model=model,
        optimizer=_plain(cfg.optimizer),
        scheduler=_plain(cfg.scheduler) if cfg.get("scheduler") else None,
        output_dir=str(cfg.paths.output_dir),
        monitor=cfg.task.monitor,
        provenance=task_provenance(cfg, outputs),
        finetuning=FineTuning.from_settings(_plain(cfg.get("finetune")), resuming=resuming),
    )


def build_trainer(cfg: DictConfig) -> L.Trainer:
    """The trainer of ``cfg.trainer`` with the configured loggers and callbacks. Lightning's
    progress bar is shown only when the output is a terminal (:func:`is_interactive`; a log
    file, a pipe or CI gets :class:`~matgnn.training.callbacks.EpochSummary`'s line per
    epoch instead); ``+trainer.enable_progress_bar=true|false`` decides for itself."""
    loggers = [instantiate(c) for c in (cfg.get("logger") or {}).values()]
    callbacks = [instantiate(c) for c in (cfg.get("callbacks") or {}).values()]
    callbacks += BoundRetainedMemory.if_retained()  # retain_freed_memory=true, bounded
    bar = {} if "enable_progress_bar" in cfg.trainer else {"enable_progress_bar": is_interactive()}
    return instantiate(cfg.trainer, logger=loggers or False, callbacks=callbacks, **bar)


@dataclass
class FittedRun:
    """What :func:`fit_and_test` leaves.

    Attributes:
        metrics: test metrics of the best checkpoint (and each output's baselines).
        best_checkpoint: its path (``""`` without a checkpoint callback).
        monitored: the best value of the checkpoint's monitored metric (``task.monitor``,
            ``None`` without one): what a Hydra sweeper optimises.
        data: the data module (built and split).
        checkpoints: every model's best checkpoint (one; an ensemble's members).
    """

    metrics: dict[str, float]
    best_checkpoint: str
    monitored: float | None
    data: Any
    checkpoints: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.checkpoints and self.best_checkpoint:
            self.checkpoints = [self.best_checkpoint]


def build_module_and_data(
    cfg: DictConfig, model: Mapping, resuming: bool
) -> tuple[CrystalLitModule, Any]:
    """The run's module, then its data module (graphs built and split), in this order: what
    :func:`fit_and_test` trains on and what :func:`write_split` writes."""
    module = build_module(cfg, model, resuming=resuming)
    return module, build_data(cfg, module.model.graph_config(), module.outputs)


def write_split(cfg: DictConfig, path: Path) -> None:
    """Write the split that :func:`fit_and_test` with ``cfg`` would draw and save as its
    ``split.json``, without training (for a benchmark that needs a seed's crystals but not
    its run)."""
    L.seed_everything(cfg.seed, workers=True)
    _, data = build_module_and_data(cfg, model_config(cfg), resuming=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    data.save_split(path)


def fit_and_test(cfg: DictConfig, ckpt_path: str | None = None, check: Any = None) -> FittedRun:
    """Fit, then test the best checkpoint, in ``cfg.paths.output_dir``. ``check(module,
    data)`` runs once both exist, before anything is written (the uncertainty settings)."""
    L.seed_everything(cfg.seed, workers=True)
    # what a CPU epoch time depends on (THP_MEM_ALLOC_ENABLE=1 in the environment turns them on)
    log.info("huge pages: %s", describe_huge_pages())
    output_dir = Path(cfg.paths.output_dir)
    model = model_config(cfg)
    ckpt_path = checkpoint_to_resume(cfg, output_dir, model, ckpt_path)
    module, data = build_module_and_data(cfg, model, resuming=ckpt_path is not None)
    if check is not None:
        check(module, data)
    # fine-tuning checks, normalisers, freezing: before anything is written (setup("fit") would
    # do it too, after the trainer has made its folders)
    module.prepare(data.subsets, data.split_ids(), getattr(data, "cache_dir", None))
    output_dir.mkdir(parents=True, exist_ok=True)
    if rank_zero_only.rank == 0:  # DDP re-runs this script in every process
        data.save_split(output_dir / "split.json")
        data.save_rejected(output_dir / "rejected.csv")
    trainer = build_trainer(cfg)
    trainer.fit(module, datamodule=data, ckpt_path=ckpt_path, weights_only=True)
    callback = trainer.checkpoint_callback
    best = callback.best_model_path if callback else ""
    score = callback.best_model_score if callback else None
    results = trainer.test(module, datamodule=data, ckpt_path=best or None, weights_only=True)
    metrics = {k: float(v) for k, v in (results[0] if results else {}).items()}
    return FittedRun(metrics, best, None if score is None else float(score), data)
