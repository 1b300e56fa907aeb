"""Train and test a model on a task: ``python -m matgnn.train model=alignn task=mp2018_eform``
(or the console script ``matgnn-train``).

Hydra composes ``configs/train.yaml`` (installed as ``pkg://matgnn.configs``, so it runs from any
directory). The task declares its outputs (``task.outputs``); the model gets one head per
output (the output's default head, built from the model's own ``heads.y``, or
``task.heads.<name>``). The graph config is resolved to data before anything is built, so
the checkpoint carries it and never refers back to a preset file.

Every run has its own folder, ``outputs/<task>/<model>/<run_name>`` (``run_name`` defaults to
the start time; each job of a ``-m`` multirun gets ``multirun/<run_name>/<job>_<task>_<model>``)
holding the resolved config (``.hydra/``), ``checkpoints/best.ckpt`` and ``last.ckpt``, logs,
``split.json``, the test predictions CSV and plots. Resume an interrupted run with
``resume=<its folder>`` (same overrides as the first run), or ``run_name=<name>
ckpt_path=last``.

From Python (a notebook): ``run(compose_config("model=cgcnn", "task=mp_sample_eform",
output_dir="runs/demo"))`` does what the command line does.
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hydra
import lightning as L
import numpy as np
import torch
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf, open_dict

from matgnn import __version__
from matgnn.checkpoint import load_model, read_checkpoint
from matgnn.config_dir import CONFIG_DIR, CONFIG_PATH
from matgnn.data.splits import split_sha256
from matgnn.finetune import check_elements, copy_normalization, freeze, transfer
from matgnn.graphs.elements import elements_of
from matgnn.heads.tensor import with_irreps
from matgnn.models.base import DEFAULT_HEAD
from matgnn.outputs import GaussianOutput, Output, ScalarOutput
from matgnn.pretrained import resolve_checkpoint
from matgnn.training import CrystalLitModule
from matgnn.training.allocator import retain_freed_memory
from matgnn.uncertainty.estimators import dropout_layers

# every run writes its test metrics here (a JSON object, metric -> value)
TEST_METRICS = "test_metrics.json"

log = logging.getLogger(__name__)


def compose_config(*overrides: str, output_dir: str | Path) -> DictConfig:
    """The config of ``python -m matgnn.train <overrides>`` with its run folder ``output_dir``,
    for :func:`run` from Python (a notebook, a script)."""
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose(
            config_name="train", overrides=[f"paths.output_dir={output_dir}", *overrides]
        )


def uncertainty_settings(cfg: DictConfig) -> dict[str, Any] | None:
    """``cfg.uncertainty`` as a dict when an estimator is chosen (``uncertainty=<name>``)."""
    settings = cfg.get("uncertainty")
    if not settings or not settings.get("estimator"):
        return None
    return OmegaConf.to_container(settings, resolve=True)


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


def model_config(cfg: DictConfig) -> dict[str, Any]:
    """The resolved model config a checkpoint stores: the graph as data (every field), one
    head per task output, and the outputs themselves."""
    model = OmegaConf.to_container(cfg.model, resolve=True)
    graph = instantiate(model["graph"])
    model["graph"] = graph.to_config()
    outputs = task_outputs(cfg)
    template = model.get("heads", {}).get(DEFAULT_HEAD)
    if template is None:
        raise ValueError(f"model config has no template head heads.{DEFAULT_HEAD}")
    heads = cfg.task.get("heads")
    chosen = OmegaConf.to_container(heads, resolve=True) if heads else {}
    unknown = sorted(set(chosen) - {o.name for o in outputs})
    if unknown:
        raise ValueError(f"task.heads names {unknown}, which are not outputs of the task")
    model["heads"] = {o.name: chosen.get(o.name) or o.head_config(template) for o in outputs}
    needed = [irreps for irreps in (o.irreps for o in outputs) if irreps]
    backbone = model.get("backbone") or {}
    if needed and backbone.get("irreps_out"):  # equivariant heads: the backbone emits them
        irreps = with_irreps(backbone["irreps_out"], needed)
        if irreps != backbone["irreps_out"]:
            log.info(
                "backbone irreps_out %s -> %s (the task's tensor heads)",
                backbone["irreps_out"],
                irreps,
            )
            backbone["irreps_out"] = irreps
    model["outputs"] = [o.to_config() for o in outputs]
    source = (cfg.get("finetune") or {}).get("from")
    if source:  # graph, backbone and matching heads as the checkpoint has them
        saved = read_checkpoint(resolve_checkpoint(source))["hyper_parameters"]["model"]
        model["graph"], model["backbone"] = saved["graph"], saved["backbone"]
        same = {o["name"] for o in saved["outputs"]} & {o["name"] for o in model["outputs"]}
        for name in same:
            mine = next(o for o in model["outputs"] if o["name"] == name)
            if mine in saved["outputs"] and name not in chosen:
                model["heads"][name] = saved["heads"][name]
    return model


def provenance(
    cfg: DictConfig, outputs: Sequence[Output], split: Mapping[str, list[str]]
) -> dict[str, Any]:
    """What a checkpoint records about how it was made."""
    source = OmegaConf.to_container(cfg.task.data.source, resolve=True)
    return {
        "matgnn_version": __version__,
        "task": cfg.task.get("name"),
        "model": HydraConfig.get().runtime.choices.get("model")
        if HydraConfig.initialized()
        else None,
        "targets": {o.name: o.target for o in outputs},
        "data_source": {k: v for k, v in source.items() if k != "_partial_"},
        "split_sha256": split_sha256(split),
        "split_sizes": {k: len(v) for k, v in split.items()},
        "seed": int(cfg.seed),
    }


def checkpoint_to_resume(cfg: DictConfig, output_dir: Path, model: dict) -> str | None:
    """``ckpt_path``, with ``last`` (and ``resume=<run dir>``) meaning the run's last.ckpt; a
    checkpoint whose model config differs from this run's is refused in words."""
    ckpt_path = cfg.get("ckpt_path")
    if cfg.get("resume") and ckpt_path is None:
        ckpt_path = "last"
    if ckpt_path == "last":
        ckpt_path = str(output_dir / "checkpoints" / "last.ckpt")
        if not Path(ckpt_path).is_file():
            raise FileNotFoundError(f"resume: no {ckpt_path} (has this run saved a checkpoint?)")
    if ckpt_path is None:
        return None
    saved = read_checkpoint(ckpt_path)["hyper_parameters"]
    if saved["model"] != model:
        keys = sorted(
            k for k in set(saved["model"]) | set(model) if saved["model"].get(k) != model.get(k)
        )
        raise ValueError(
            f"resume: {ckpt_path} was trained with another model config (differs in {keys}); "
            "resume with the overrides of the original run"
        )
    return ckpt_path


def set_up_data(cfg: DictConfig, graph: Any, outputs: Sequence[Output]) -> Any:
    """The task's data module for ``graph`` and ``outputs``, with its graphs built and split."""
    data = instantiate(cfg.task.data)(graph=graph, outputs=outputs)
    data.setup("fit")
    return data


@dataclass
class FittedRun:
    """What :func:`fit_and_test` leaves: test metrics, the best checkpoint and the data."""

    metrics: dict[str, float]
    best_checkpoint: str
    data: Any


def fit_and_test(cfg: DictConfig, ckpt_path: str | None = None) -> FittedRun:
    """Fit, then test the best checkpoint, in ``cfg.paths.output_dir``."""
    L.seed_everything(cfg.seed, workers=True)
    output_dir = Path(cfg.paths.output_dir)
    model = model_config(cfg)
    ckpt_path = ckpt_path or checkpoint_to_resume(cfg, output_dir, model)
    # the model first: a head that the backbone cannot feed fails before any graph is built
    lit = CrystalLitModule(
        model=model,
        optimizer=OmegaConf.to_container(cfg.optimizer, resolve=True),
        scheduler=(
            OmegaConf.to_container(cfg.scheduler, resolve=True) if cfg.get("scheduler") else None
        ),
        output_dir=str(output_dir),
        monitor=cfg.task.monitor,
    )
    settings = uncertainty_settings(cfg) or {}
    if settings.get("estimator") == "mc_dropout" and not dropout_layers(lit.model):
        raise ValueError(
            "uncertainty=mc_dropout, but every dropout probability of the model is 0: set "
            "uncertainty.dropout (or model.backbone.dropout / model.heads.y.dropout) above 0"
        )
    finetune = OmegaConf.to_container(cfg.finetune, resolve=True) if cfg.get("finetune") else {}
    source = start_from_checkpoint(lit, finetune, resuming=ckpt_path is not None)
    data = set_up_data(cfg, lit.model.graph_config(), lit.outputs)
    # an ensemble member carries its ensemble's `calibrate`, so that it fails before training
    calibrate = (cfg.get("uncertainty") or {}).get("calibrate", bool(settings))
    if calibrate and not data.subsets.get("val"):
        raise ValueError(
            f"uncertainty.calibrate=true needs a validation split, and task "
            f"{cfg.task.get('name')!r} has none: give it one (task.data.split.val > 0) or set "
            "uncertainty.calibrate=false"
        )
    if source is not None:  # before anything is written
        check_elements(
            source[0].provenance.get("elements"),
            data.subsets,
            policy=str(finetune.get("unseen_elements", "error")),
            source=str(finetune["from"]),
            frozen=str(finetune.get("freeze", "none")) != "none",
        )
    output_dir.mkdir(parents=True, exist_ok=True)
    if rank_zero_only.rank == 0:  # DDP re-runs this script in every process
        data.save_split(output_dir / "split.json")
        data.save_rejected(output_dir / "rejected.csv")
    lit.provenance = provenance(cfg, lit.outputs, data.split_ids())
    lit.provenance["elements"] = elements_of(data.subsets["train"])
    lit.fit_normalizer(data.subsets["train"])
    if source is not None and finetune.get("keep_normalization"):
        copy_normalization(lit.model, source[0], source[1].copied_heads)
    loggers = [instantiate(c) for c in (cfg.get("logger") or {}).values()]
    callbacks = [instantiate(c) for c in (cfg.get("callbacks") or {}).values()]
    trainer = instantiate(cfg.trainer, logger=loggers or False, callbacks=callbacks)
    trainer.fit(lit, datamodule=data, ckpt_path=ckpt_path)
    best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
    results = trainer.test(lit, datamodule=data, ckpt_path=best or None)
    metrics = {k: float(v) for k, v in (results[0] if results else {}).items()}
    for output in lit.outputs:
        train = torch.cat([g[output.key] for g in data.subsets["train"]]).double()
        test = torch.cat([g[output.key] for g in data.subsets["test"]]).double()
        for name, value in output.baselines(train, test).items():
            metrics[f"test_{output.name}_{name}"] = value
    return FittedRun(metrics, best, data)


def start_from_checkpoint(lit: CrystalLitModule, finetune: Mapping[str, Any], resuming: bool):
    """``finetune.from``: transfer the checkpoint's weights into ``lit.model`` (not when
    resuming: the run's own checkpoint has them), then freeze ``finetune.freeze`` and set the
    backbone's learning-rate scale. Returns (source model, transfer) or ``None``."""
    lit.backbone_lr_scale = float(finetune.get("backbone_lr_scale", 1.0))
    source = None
    if finetune.get("from") and not resuming:
        model = load_model(resolve_checkpoint(finetune["from"]))
        done = transfer(lit.model, model)
        log.info(
            "fine-tuning from %s: backbone loaded; heads copied %s, new %s",
            finetune["from"],
            done.copied_heads,
            done.new_heads,
        )
        source = (model, done)
    frozen = freeze(lit.model, str(finetune.get("freeze", "none")))
    if frozen:
        log.info("frozen: %d backbone tensors", len(frozen))
    return source


def member_config(cfg: DictConfig, k: int) -> DictConfig:
    """Ensemble member ``k``: its own folder ``members/<k>``, seed ``seed + k`` for weights and
    batches, the split of the ensemble's seed, no uncertainty of its own."""
    member = copy.deepcopy(cfg)
    split_seed = OmegaConf.select(cfg, "task.data.split.seed")
    with open_dict(member):
        member.paths.output_dir = str(Path(cfg.paths.output_dir) / "members" / str(k))
        member.seed = int(cfg.seed) + k
        if split_seed is not None:
            member.task.data.split.seed = int(split_seed)
        member.uncertainty = {
            "estimator": None,
            "calibrate": bool(cfg.uncertainty.get("calibrate", True)),
            "variance_head": bool(cfg.uncertainty.get("variance_head", False)),
            "loss": cfg.uncertainty.get("loss", "gaussian_nll"),
        }
        member.resume = None
        member.ckpt_path = None
    return member


def run_ensemble(cfg: DictConfig, size: int) -> tuple[list[str], Any, dict[str, float]]:
    """Train (or pick up) ``size`` members; returns their best checkpoints, the data and the
    mean of their test metrics. A finished member (``done.json``) is not retrained; a member
    killed mid-training resumes from its ``last.ckpt``."""
    if size < 2:
        raise ValueError(f"uncertainty=ensemble needs uncertainty.size >= 2, got {size}")
    checkpoints, member_metrics, data = [], [], None
    for k in range(size):
        member = member_config(cfg, k)
        folder = Path(member.paths.output_dir)
        done = folder / "done.json"
        if done.is_file():
            record = json.loads(done.read_text())
            log.info("ensemble member %d: done before (%s)", k, record["best_checkpoint"])
        else:
            last = folder / "checkpoints" / "last.ckpt"
            fitted = fit_and_test(member, str(last) if last.is_file() else None)
            data = fitted.data
            best = Path(fitted.best_checkpoint).resolve()
            record = {  # relative to the member's folder: the run folder may move
                "best_checkpoint": str(best.relative_to(folder.resolve())),
                "metrics": fitted.metrics,
            }
            done.write_text(json.dumps(record, indent=2))
        checkpoints.append(str(folder / record["best_checkpoint"]))
        member_metrics.append(record["metrics"])
    if data is None:  # every member was done: rebuild the (same) split
        first = member_config(cfg, 0)
        graph = instantiate(model_config(first)["graph"])
        data = set_up_data(first, graph, task_outputs(first))
    data.save_split(Path(cfg.paths.output_dir) / "split.json")
    mean = {
        f"{key}_member_mean": float(np.mean([m[key] for m in member_metrics]))
        for key in member_metrics[0]
    }
    return checkpoints, data, mean


def run(cfg: DictConfig) -> dict[str, float]:
    """Fit, then test the best checkpoint; returns the test metrics and writes them to
    ``<run>/test_metrics.json``. With
    ``uncertainty=<estimator>``: also calibrate on the validation split, score the test split
    (:mod:`matgnn.uncertainty.report`) and store estimator and calibration in
    ``checkpoints/best.ckpt``."""
    if cfg.get("retain_freed_memory", False):
        retain_freed_memory()
    settings = uncertainty_settings(cfg)
    output_dir = Path(cfg.paths.output_dir)
    if settings and settings["estimator"] == "ensemble":
        checkpoints, data, metrics = run_ensemble(cfg, int(settings.get("size", 5)))
    else:
        fitted = fit_and_test(cfg)
        checkpoints, data, metrics = [fitted.best_checkpoint], fitted.data, fitted.metrics
    if settings and rank_zero_only.rank == 0:  # DDP runs this in every process
        accelerator = str(cfg.trainer.get("accelerator", "cpu"))
        device = (
            "cuda"
            if accelerator in ("gpu", "cuda", "auto") and torch.cuda.is_available()
            else "cpu"
        )
        metrics.update(add_uncertainty(settings, checkpoints, data, output_dir, device))
    if rank_zero_only.rank == 0:
        output_dir.mkdir(parents=True, exist_ok=True)
        (output_dir / TEST_METRICS).write_text(json.dumps(metrics, indent=1, sort_keys=True))
    log.info("test metrics: %s; outputs in %s", metrics, output_dir)
    return metrics


def add_uncertainty(
    settings: Mapping[str, Any],
    checkpoints: Sequence[str],
    data: Any,
    output_dir: Path,
    device: str = "cpu",
) -> dict[str, float]:
    """Build the estimator from the trained checkpoint(s) on ``device``, calibrate and report
    it, and save it into ``output_dir/checkpoints/best.ckpt``; returns the test metrics of the
    uncertainty (``test_<output>_<metric>_<state>``), before and after calibration."""
    from matgnn.checkpoint import model_from_checkpoint
    from matgnn.uncertainty import UncertainModel, build_estimator
    from matgnn.uncertainty.report import calibrate_and_report

    dicts = [read_checkpoint(c) for c in checkpoints]
    models = [model_from_checkpoint(d).eval().to(device) for d in dicts]
    uncertain = UncertainModel(build_estimator(settings, models))
    report = calibrate_and_report(
        uncertain,
        data.subsets.get("val") or [],
        data.subsets["test"],
        output_dir,
        calibrate=bool(settings.get("calibrate", True)),
    )
    target = output_dir / "checkpoints" / "best.ckpt"
    target.parent.mkdir(parents=True, exist_ok=True)
    uncertain.save(dicts[0], target)
    return {
        f"test_{output}_{metric}_{state}": value
        for state, per_output in report["test"].items()
        for output, values in per_output.items()
        for metric, value in values.items()
    }


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="train")
def main(cfg: DictConfig) -> None:
    run(cfg)


if __name__ == "__main__":
    main()
