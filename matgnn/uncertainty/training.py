"""Uncertainty in a training run: the settings check, deep ensembles (members trained by
:func:`matgnn.training.run.fit_and_test`, resumable), and the estimator built from the trained
checkpoint(s), calibrated on the validation split, scored on the test split and saved.
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf, open_dict

from matgnn.checkpoints.files import model_from_checkpoint, read_checkpoint
from matgnn.graphs.config import GraphConfig
from matgnn.training import run as training
from matgnn.uncertainty.calibration import check_interval
from matgnn.uncertainty.estimators import (
    check_distance_outputs,
    check_latent_outputs,
    dropout_layers,
)

log = logging.getLogger(__name__)


def uncertainty_settings(cfg: DictConfig) -> dict[str, Any] | None:
    """``cfg.uncertainty`` as a dict when an estimator is chosen (``uncertainty=<name>``)."""
    settings = cfg.get("uncertainty")
    if not settings or not settings.get("estimator"):
        return None
    return OmegaConf.to_container(settings, resolve=True)


def settings_check(cfg: DictConfig):
    """``check(module, data)`` for :func:`~matgnn.training.run.fit_and_test`: refuse, before
    training, MC dropout on a model without dropout and calibration without a validation
    split (an ensemble member carries its ensemble's ``calibrate``)."""
    settings = uncertainty_settings(cfg) or {}
    calibrate = (cfg.get("uncertainty") or {}).get("calibrate", bool(settings))

    def check(module, data) -> None:
        if settings.get("estimator") == "mc_dropout" and not dropout_layers(module.model):
            raise ValueError(
                "uncertainty=mc_dropout, but every dropout probability of the model is 0: set "
                "uncertainty.dropout (or model.backbone.dropout / model.heads.y.dropout) above 0"
            )
        if settings.get("estimator") == "latent_distance":
            check_latent_outputs(module.model.outputs)
        if settings.get("estimator") == "latent_distance" or settings.get("distance_std"):
            check_distance_outputs(module.model.outputs)
            if not calibrate:
                raise ValueError(
                    "a distance-aware std (uncertainty=latent_distance, or "
                    "uncertainty.distance_std) is fitted on the validation split with the "
                    "calibration: set uncertainty.calibrate=true"
                )
        coverage = settings.get("coverage")
        if coverage is not None and not calibrate:
            raise ValueError(
                f"uncertainty.coverage={coverage} (conformal intervals) is fitted on the "
                "validation split with the calibration: set uncertainty.calibrate=true"
            )
        if coverage is not None:
            check_interval(str(settings.get("interval", "normalized")))
            check_coverage(
                float(coverage), module.model.outputs, len(data.subsets.get("val") or [])
            )
        if calibrate and not data.subsets.get("val"):
            raise ValueError(
                f"uncertainty.calibrate=true needs a validation split, and task "
                f"{cfg.task.get('name')!r} has none: give it one (task.data.split.val > 0) or "
                "set uncertainty.calibrate=false"
            )

    return check


def check_coverage(coverage: float, outputs: Sequence, validation_crystals: int) -> None:
    """Refuse, before training, conformal intervals that the calibration would refuse after
    it: a coverage outside (0, 1), a task without a regression output, or too few validation
    crystals for the coverage (crystal-level outputs; one score per crystal)."""
    from matgnn.uncertainty.calibration import (
        check_conformal_request,
        conformal_minimum,
        conformal_rank,
    )

    check_conformal_request(coverage, outputs)
    crystal_level = any(o.supports_conformal and o.level != "atom" for o in outputs)
    if crystal_level and 0 < validation_crystals < conformal_rank(validation_crystals, coverage):
        raise ValueError(
            f"uncertainty.coverage={coverage} needs at least {conformal_minimum(coverage)} "
            f"validation crystals, and the split has {validation_crystals}: lower the coverage "
            "or enlarge task.data.split.val"
        )


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


def train_ensemble(cfg: DictConfig, size: int) -> training.FittedRun:
    """Train (or pick up) ``size`` members; returns every member's best checkpoint, the data,
    the mean of their test metrics (``<metric>_member_mean``) and the mean of their best
    monitored values. A finished member (``done.json``) is not retrained; a member killed
    mid-training resumes from its ``last.ckpt``."""
    if size < 2:
        raise ValueError(f"uncertainty=ensemble needs uncertainty.size >= 2, got {size}")
    checkpoints, records, data = [], [], None
    for k in range(size):
        member = member_config(cfg, k)
        folder = Path(member.paths.output_dir)
        done = folder / "done.json"
        if done.is_file():
            record = json.loads(done.read_text())
            log.info("ensemble member %d: done before (%s)", k, record["best_checkpoint"])
        else:
            last = folder / "checkpoints" / "last.ckpt"
            fitted = training.fit_and_test(
                member, str(last) if last.is_file() else None, settings_check(member)
            )
            data = fitted.data
            best = Path(fitted.best_checkpoint).resolve()
            record = {  # relative to the member's folder: the run folder may move
                "best_checkpoint": str(best.relative_to(folder.resolve())),
                "metrics": fitted.metrics,
                "monitored": fitted.monitored,
            }
            done.write_text(json.dumps(record, indent=2))
        checkpoints.append(str(folder / record["best_checkpoint"]))
        records.append(record)
    if data is None:  # every member was done: rebuild the (same) split
        first = member_config(cfg, 0)
        outputs = training.task_outputs(first)
        graph = training.model_config(first, outputs)["graph"]
        data = training.build_data(first, GraphConfig.from_dict(graph), outputs)
    data.save_split(Path(cfg.paths.output_dir) / "split.json")
    metrics = {
        f"{key}_member_mean": float(np.mean([r["metrics"][key] for r in records]))
        for key in records[0]["metrics"]
    }
    scores = [r.get("monitored") for r in records]
    monitored = None if any(s is None for s in scores) else float(np.mean(scores))
    return training.FittedRun(metrics, checkpoints[0], monitored, data, checkpoints)


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
    from matgnn.uncertainty.model import UncertainModel, build_estimator
    from matgnn.uncertainty.report import calibrate_and_report

    dicts = [read_checkpoint(c) for c in checkpoints]
    models = [model_from_checkpoint(d).eval().to(device) for d in dicts]
    uncertain = UncertainModel(build_estimator(settings, models))
    distance_std = bool(settings.get("distance_std", False))
    latent = settings.get("ood", True) or distance_std or settings["estimator"] == "latent_distance"
    if latent and settings.get("calibrate", True):  # the ood score's unit is fitted on val
        uncertain.fit_latent(
            data.subsets["train"],
            neighbours=int(settings.get("neighbours", 5)),
            max_reference=int(settings.get("max_reference", 20000)),
            seed=int(settings.get("seed", 0)),
        )
    report = calibrate_and_report(
        uncertain,
        data.subsets.get("val") or [],
        data.subsets["test"],
        output_dir,
        calibrate=bool(settings.get("calibrate", True)),
        coverage=settings.get("coverage"),
        interval=str(settings.get("interval", "normalized")),
        distance_std=distance_std,
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
