"""``python -m matgnn.matbench model=<name> task=matbench_<task> [folds=[...]]``: train one
model per official fold, predict the fold's test rows, record them through matbench.

For each requested fold that the submission folder has not recorded yet:

1. train with :func:`matgnn.train.run` on the fold's training rows (the task config's source
   gives the official fold; a seeded ``task.data.split.val`` share of it is held out for early
   stopping and the best checkpoint), into ``<submission>/<task>/fold_<k>``; a fold whose run
   was killed resumes from its ``last.ckpt``;
2. predict the fold's test inputs as matbench hands them out
   (``MatbenchTask.get_test_data(fold, include_target=False)``) with the best checkpoint; a
   test structure the model cannot take fails the fold (``unpredictable=error``, the default)
   or, only with ``unpredictable=train_mean``, is predicted as the fold's training mean and
   written to the fold's ``test_predictions.csv`` marked ``filled=train_mean``
   (:func:`write_filled_rows`);
3. write the fold's ``record.json`` (:class:`~matgnn.matbench.submission.FoldRecord`).

When every official fold is recorded: a complete copy goes through ``MatbenchTask.record`` into
``results.json.gz`` (validated on reading back); a partial copy only gets
``partial_scores.json``, labelled as not a submission. A bad request (unknown task, a
composition task, a fold out of range, no data) is one line on stderr and exit status 2, before
anything is written.
"""

from __future__ import annotations

import copy
import csv
import logging
import os
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hydra
import numpy as np
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from matgnn.config_dir import CONFIG_PATH, group_options, header, option_path
from matgnn.data.sources.matbench import frames_kept
from matgnn.matbench.data import MatbenchData, MatbenchError, check_folds, task_metadata
from matgnn.matbench.submission import (
    FoldRecord,
    SubmissionFolder,
    requirements,
)
from matgnn.training.run_logs import validation_curve

log = logging.getLogger(__name__)

#: what info.json lists as requirements (name==installed version)
REQUIREMENTS = (
    "matgnn",
    "matbench",
    "torch",
    "torch-geometric",
    "lightning",
    "hydra-core",
    "e3nn",
    "pymatgen",
    "matminer",
    "numpy",
    "scikit-learn",
)
#: what to do with a test structure the model cannot take (see :func:`predict_fold`); the
#: first is the default
UNPREDICTABLE = ("error", "train_mean")
#: the column of a fold's ``test_predictions.csv`` that marks a row the model did not predict
#: (``train_mean``: the fold's training mean; empty for the model's rows)
FILLED_COLUMN = "filled"
TRAIN_MEAN = "train_mean"
# Hydra config groups whose option a request may name on the command line
CHECKED_GROUPS = ("model", "task", "trainer", "optimizer", "scheduler", "logger")


def check_request(argv: list[str]) -> None:
    """Refuse an unknown task or option before Hydra composes anything (one line, exit 2)."""
    for argument in argv:
        key, sep, value = argument.partition("=")
        key = key.lstrip("+~")
        if not sep or key not in CHECKED_GROUPS or "," in value:
            continue
        if key == "task":
            matbench_task_name(value)
        elif value not in group_options(key):
            raise MatbenchError(f"unknown {key} {value!r}; choose one of {group_options(key)}")


def matbench_task_name(option: str) -> str:
    """The Matbench task of the task config ``option`` (``matbench_phonons``), or a one-line
    reason why it is not one."""
    from matbench.metadata import mbv01_metadata

    structure = [t for t in group_options("task") if t in mbv01_metadata]
    if option in mbv01_metadata and mbv01_metadata[option].input_type != "structure":
        raise MatbenchError(
            f"{option} is a composition task (its input is a chemical formula); matgnn's models "
            f"need crystal structures: choose one of {structure}"
        )
    if option not in group_options("task"):
        raise MatbenchError(f"unknown task {option!r}; Matbench tasks: {structure}")
    if option not in mbv01_metadata:
        raise MatbenchError(f"task {option!r} is not a Matbench task; choose one of {structure}")
    return option


def fold_config(cfg: DictConfig, fold: int, fold_dir: Path) -> DictConfig:
    """The training config of one fold: its official split, its own run folder, and the run's
    ``last.ckpt`` to resume from when an earlier attempt left one."""
    fold_cfg = copy.deepcopy(cfg)
    fold_cfg.task.fold = fold
    fold_cfg.paths.output_dir = str(fold_dir)
    fold_cfg.ckpt_path = "last" if (fold_dir / "checkpoints" / "last.ckpt").is_file() else None
    return fold_cfg


@dataclass
class FoldPredictions:
    """A fold's test predictions in official order, their stds (regression with
    ``uncertainty=<estimator>``, else ``None``), their ood scores (a model with a latent
    distance, else ``None``; ``nan`` for a row predicted as the training mean) and the ids
    predicted as the training mean."""

    ids: list[str]
    values: np.ndarray
    rejected: dict[str, str]
    std: np.ndarray | None = None
    ood_score: np.ndarray | None = None


def predict_fold(model, data: MatbenchData, fold: int, unpredictable: str = "error"):
    """Predictions of the fold's test rows (official order), from inputs alone: matbench's
    ``get_test_data(fold, include_target=False)`` for a complete copy, the rows present
    otherwise. Regression: the value; classification: the probability of ``True``. ``model`` is
    a :class:`~matgnn.models.CrystalModel`, or a :class:`~matgnn.uncertainty.UncertainModel`,
    whose calibrated std goes with a regression task's predictions (``task.record(std=...)``).

    A test structure the model cannot take (e.g. an atom with no neighbour within an e3nn
    radius) fails the fold (``unpredictable="error"``) or, with ``"train_mean"``, gets the mean
    target (classification: the share of ``True``) of the fold's training rows, and as std the
    std of those targets; those ids and reasons are returned (and recorded in the fold's
    params) so that no fallback is silent.
    """
    from matgnn.models.inference import predict

    rows = data.fold_rows(fold)
    if data.complete:
        inputs = data.matbench_task().get_test_data(fold, include_target=False)
        ids, structures = list(inputs.index), list(inputs)
    else:
        ids, structures = rows.test, data.inputs(rows.test)
    output = model.outputs[0]
    classification = data.metadata.task_type == "classification"
    predictions = predict(model, structures, ids)
    values = predictions.values[output.name]  # the value, or the (mean) probabilities
    std_by_id = None
    if predictions.summaries is not None and not classification:  # an estimator's std
        std = predictions.summaries[output.name]["std"].reshape(-1)
        std_by_id = dict(zip(predictions.names, std, strict=True))
    rejected = dict(predictions.rejected)
    if rejected and unpredictable != "train_mean":
        first = next(iter(rejected.items()))
        raise MatbenchError(
            f"{data.task} fold {fold}: {len(rejected)} test structures could not be predicted "
            f"(first: {first[1]}); matbench needs every test row (unpredictable=train_mean "
            "predicts the training mean for them, recorded in the fold's params)"
        )
    values = np.asarray(values, dtype=float).reshape(len(predictions.names), -1)
    if classification:
        values = values[:, -1:]  # probability of class 1 (True)
    by_id = dict(zip(predictions.names, values[:, 0], strict=True))
    if rejected:
        train = np.asarray(data.targets(rows.train), dtype=float)
        fallback = float(np.mean(train))
        log.warning(
            "%s fold %d: %d test structures predicted as the training mean %.6g: %s",
            data.task,
            fold,
            len(rejected),
            fallback,
            rejected,
        )
        by_id.update(dict.fromkeys(rejected, fallback))
        if std_by_id is not None:
            std_by_id.update(dict.fromkeys(rejected, float(np.std(train))))
    ood = None
    if predictions.ood_score is not None:
        ood_by_id = dict(zip(predictions.names, predictions.ood_score, strict=True))
        ood = np.array([ood_by_id.get(i, np.nan) for i in ids], dtype=float)
    return FoldPredictions(
        ids=list(ids),
        values=np.array([by_id[i] for i in ids]),
        rejected=rejected,
        std=None if std_by_id is None else np.array([std_by_id[i] for i in ids]),
        ood_score=ood,
    )


def write_filled_rows(
    path: Path, output, data: MatbenchData, predicted: FoldPredictions
) -> list[str]:
    """Write the test rows of ``predicted`` filled with the training mean (its ``rejected``
    ids) into the fold's ``test_predictions.csv`` at ``path`` (the training run's test
    table), so that the file holds every scored row: each gets its target, the recorded value
    as prediction (classification: the probabilities ``1 - p, p``) and ``train_mean`` in a
    last column :data:`FILLED_COLUMN`, empty for the model's rows. A row of the same id that
    the training run wrote is replaced, and a column the file had already is rewritten, so
    writing twice gives the same file. Nothing is written when no row was filled; returns the
    filled ids, in official order."""
    from matgnn.outputs import prediction_table

    filled = [i for i in predicted.ids if i in predicted.rejected]
    if not filled:
        return []
    header: list[str] = []
    rows: list[list[str]] = []
    if path.is_file():
        with open(path, newline="") as handle:
            header, *rows = list(csv.reader(handle))
    if FILLED_COLUMN in header:  # written before: the model's rows only are kept
        k = header.index(FILLED_COLUMN)
        rows = [r for r in rows if r[k] != TRAIN_MEAN]
        header = header[:k] + header[k + 1 :]
        rows = [r[:k] + r[k + 1 :] for r in rows]
    by_id = dict(zip(predicted.ids, predicted.values, strict=True))
    classification = data.metadata.task_type == "classification"
    values = [
        np.array([1.0 - by_id[i], by_id[i]]) if classification else np.array([by_id[i]])
        for i in filled
    ]
    targets = [np.asarray(t, dtype=float) for t in data.targets(filled)]
    new_header, new_rows = prediction_table(
        [output], filled, {output.name: values}, {output.name: targets}
    )
    header = header or new_header
    header += [c for c in new_header if c not in header]
    position = {c: k for k, c in enumerate(new_header)}
    replaced = set(filled)
    kept = [r + [""] * (len(header) - len(r) + 1) for r in rows if r[0] not in replaced]
    added = [
        [row[position[c]] if c in position else "" for c in header] + [TRAIN_MEAN]
        for row in new_rows
    ]
    temporary = path.with_name(path.name + ".tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(temporary, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([*header, FILLED_COLUMN])
        writer.writerows(kept + added)
    os.replace(temporary, path)
    return filled


def fold_params(
    cfg: DictConfig, fold_dir: Path, metrics: dict[str, float], best_epoch: int
) -> dict[str, Any]:
    """What ``MatbenchTask.record(params=...)`` keeps about the fold's model."""
    curve = validation_curve(fold_dir)
    return {
        "model": HydraConfig.get().runtime.choices.get("model"),
        "seed": int(cfg.seed),
        "max_epochs": int(cfg.trainer.max_epochs),
        "epochs_trained": 0 if curve is None else len(curve[1]),
        "best_epoch": int(best_epoch),
        "batch_size": int(cfg.task.data.batch_size),
        "optimizer": str(cfg.optimizer._target_),
        "lr": float(cfg.optimizer.lr),
        "validation_fraction": float(cfg.task.data.split.val),
        "training_test_metrics": {k: float(v) for k, v in metrics.items()},
    }


def learning_curves(task_dir: Path) -> Path | None:
    """``learning_curves.png``: the validation MAE of every fold against the epoch."""
    from matgnn.analysis.plots import learning_curves_plot

    curves, metric = {}, "val_loss"
    for fold_dir in sorted(task_dir.glob("fold_*")):
        curve = validation_curve(fold_dir)
        if curve is not None:
            metric, epochs, values = curve
            curves[fold_dir.name] = (epochs, values)
    if not curves:
        return None
    path = task_dir / "learning_curves.png"
    learning_curves_plot(curves, path, metric)
    return path


def run_matbench(cfg: DictConfig) -> SubmissionFolder:
    """Run the requested folds (see module docstring); returns the submission folder."""
    from matgnn.checkpoints.files import read_checkpoint, slim_checkpoint
    from matgnn.train import run as train_run
    from matgnn.uncertainty.model import has_uncertainty, model_for_prediction

    task = matbench_task_name(str(cfg.task.get("matbench_task") or cfg.task.get("name")))
    metadata = task_metadata(task)
    folds = check_folds(task, OmegaConf.to_container(cfg.folds, resolve=True))
    unpredictable = str(cfg.get("unpredictable", "error"))
    if unpredictable not in UNPREDICTABLE:
        raise MatbenchError(f"unpredictable={unpredictable!r}; choose one of {UNPREDICTABLE}")
    if cfg.task.data.source.get("sample"):
        # a submission is scored on the official folds; a sample would train on a subset and
        # still be written as a complete submission
        raise MatbenchError(
            f"task.data.source.sample={cfg.task.data.source.sample}: the Matbench runner takes "
            "whole folds (limit=N keeps the first rows for a smoke run, never recorded)"
        )
    with frames_kept():
        data = MatbenchData.load(task, cfg.paths.data_dir, cfg.task.data.source.get("limit"))
        folder = SubmissionFolder(cfg.submission_dir)
        task_dir = folder.task_dir(task)
        handler = start_task_folder(cfg, task_dir)
        try:
            log.info(
                "%s (%s, %d of %d rows, %s copy) folds %s into %s",
                task,
                metadata.unit,
                len(data.frame),
                metadata.n_samples,
                "complete" if data.complete else "PARTIAL",
                folds,
                folder.root,
            )
            for fold in folds:
                if fold in folder.recorded_folds(task):
                    log.info("%s fold %d: already recorded, skipped", task, fold)
                    continue
                fold_dir = folder.fold_dir(task, fold)
                fold_cfg = fold_config(cfg, fold, fold_dir)
                if fold_cfg.ckpt_path:
                    log.info("%s fold %d: resuming from %s", task, fold, fold_dir)
                start = time.perf_counter()
                metrics = train_run(fold_cfg)
                best = read_checkpoint(fold_dir / "checkpoints" / "best.ckpt")
                model = model_for_prediction(best)
                predicted = predict_fold(model, data, fold, unpredictable)
                write_filled_rows(
                    fold_dir / "test_predictions.csv", model.outputs[0], data, predicted
                )
                params = fold_params(fold_cfg, fold_dir, metrics, best["epoch"])
                params["predicted_as_training_mean"] = predicted.rejected
                if has_uncertainty(best):
                    params["uncertainty"] = best["uncertainty"]
                if predicted.ood_score is not None:  # in official test order; None: filled
                    params["ood_score"] = [
                        None if np.isnan(v) else round(float(v), 6) for v in predicted.ood_score
                    ]
                    params["ood_threshold"] = best["latent_distance"]["threshold"]
                # the wall time is this attempt's only
                params["resumed_from_last_ckpt"] = bool(fold_cfg.ckpt_path)
                record = FoldRecord.make(
                    data,
                    fold,
                    predicted.ids,
                    predicted.values,
                    params=params,
                    std=predicted.std,
                    wall_time_s=round(time.perf_counter() - start, 1),
                )
                slim_checkpoint(best, fold_dir / "model.ckpt")
                folder.write_record(record)
                log.info("%s fold %d: %s (%.0f s)", task, fold, record.scores, record.wall_time_s)
                if not data.complete:
                    folder.write_partial_scores(data)
            learning_curves(task_dir)
            folder.write_info(info(cfg))
            if data.complete and folder.all_recorded(task):
                folder.write_results(data, user_metadata(cfg, task))
            elif not data.complete:
                folder.write_partial_scores(data)
                log.warning(
                    "%s: partial copy (%d of %d rows): scores in %s, not a submission",
                    task,
                    len(data.frame),
                    metadata.n_samples,
                    folder.root / "partial_scores.json",
                )
        finally:
            logging.getLogger().removeHandler(handler)
            handler.close()
    return folder


def start_task_folder(cfg: DictConfig, task_dir: Path) -> logging.Handler:
    """Create the task folder with the resolved config and command line; refuse to mix a
    different model or training recipe into folds recorded before. Returns the log handler
    that copies this run's log into ``run.log``."""
    config = OmegaConf.to_yaml(cfg, resolve=True)
    recipe = _recipe(cfg)
    saved = task_dir / "config.yaml"
    if saved.is_file() and any(task_dir.glob("fold_*/record.json")):
        earlier = _recipe(OmegaConf.load(saved))
        if earlier != recipe:
            changed = sorted(k for k in recipe if recipe[k] != earlier.get(k))
            raise MatbenchError(
                f"{task_dir} holds folds recorded with another {changed}; use another "
                "submission_dir or the original overrides"
            )
    task_dir.mkdir(parents=True, exist_ok=True)
    saved.write_text(config)
    command = shlex.join([sys.executable, "-m", "matgnn.matbench", *sys.argv[1:]])
    with open(task_dir / "command.txt", "a") as handle:
        handle.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')}  {command}\n")
    if logging.getLogger("matgnn").getEffectiveLevel() > logging.INFO:
        logging.getLogger("matgnn").setLevel(logging.INFO)  # run.log keeps the fold lines
    handler = logging.FileHandler(task_dir / "run.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger().addHandler(handler)
    return handler


def _recipe(cfg: DictConfig) -> dict[str, Any]:
    """The parts of a config that make a fold's model: mixing two recipes in one task of a
    submission is refused. Plain data only: a stored ``config.yaml`` is compared, never
    imported from or instantiated."""
    plain = OmegaConf.to_container(cfg, resolve=True)
    recipe = {k: plain.get(k) for k in ("model", "optimizer", "scheduler", "seed")}
    # the graph as every field, however the config named it (a preset reference before graph
    # presets were Hydra defaults, the fields since)
    if isinstance(recipe["model"], dict) and isinstance(recipe["model"].get("graph"), dict):
        recipe["model"] = {**recipe["model"], "graph": _graph_fields(recipe["model"]["graph"])}
    # folds recorded before uncertainty existed had none
    recipe["uncertainty"] = plain.get("uncertainty") or {"estimator": None}
    recipe["max_epochs"] = plain.get("trainer", {}).get("max_epochs")
    # the task minus the fold, what only labels the results (units) and the caches
    task = {k: v for k, v in plain.get("task", {}).items() if k not in ("fold", "units")}
    task = _without_locations(task)
    task["outputs"] = {
        name: {k: v for k, v in (output or {}).items() if k != "units"}
        for name, output in (task.get("outputs") or {}).items()
    }
    recipe["task"] = task
    # how the model starts and what trains (a frozen and a fine-tuned fold are other models);
    # folds recorded before a setting existed had its default
    finetune = plain.get("finetune") or {}
    recipe["finetune"] = {k: finetune.get(k, v) for k, v in FINETUNE_DEFAULTS.items()}
    return recipe


#: caches: where made files are kept, not what a fold learns from
CACHES = ("cache_dir",)
#: source settings the runner refuses (a Matbench fold takes its official rows), so a recorded
#: fold had their defaults, written or not (folds recorded before they existed)
REFUSED_SOURCE_KEYS = ("sample", "sample_seed")


def _without_locations(task: dict[str, Any]) -> dict[str, Any]:
    """``task`` without :data:`CACHES` at any depth, nor the source's
    :data:`REFUSED_SOURCE_KEYS`, and with every ``data_dir`` as an absolute path: the same
    recipe run with another cache, or naming the same data copy another way
    (``../shared/data`` from the repository), is the same recipe; another copy is not (its
    rows may differ)."""

    def strip(value: Any, parent: str | None) -> Any:
        if not isinstance(value, dict):
            return value
        drop = CACHES + (REFUSED_SOURCE_KEYS if parent == "source" else ())
        kept = {k: strip(v, k) for k, v in value.items() if k not in drop}
        if kept.get("data_dir") is not None:
            kept["data_dir"] = str(Path(kept["data_dir"]).resolve())
        return kept

    return strip(task, None)


#: the ``finetune`` settings that change a fold's model, with the defaults of ``train.yaml``
#: (``cache_features`` does not: the cached run equals the uncached one)
FINETUNE_DEFAULTS = {
    "from": None,
    "freeze": "none",
    "backbone_lr_scale": 1.0,
    "keep_normalization": False,
}


#: the Hydra target of a graph preset reference in configs written before issue 31
PRESET_TARGET = "matgnn.graphs.GraphConfig.preset"


def _graph_fields(graph: dict[str, Any]) -> dict[str, Any]:
    """A model config's graph node as its fields: a preset reference (``_target_:
    matgnn.graphs.GraphConfig.preset, name: <preset>``) is replaced by that preset's yaml with
    the reference's overrides; the name must be one of ``matgnn/configs/graph/`` (read as
    data, nothing is imported)."""
    if graph.get("_target_") != PRESET_TARGET:
        return graph
    name = graph.get("name")
    if name not in group_options("graph"):
        raise MatbenchError(f"a stored config names an unknown graph preset {name!r}")
    preset = OmegaConf.to_container(OmegaConf.load(option_path("graph", str(name))))
    overrides = {k: v for k, v in graph.items() if k not in ("_target_", "name")}
    return {**preset, **overrides}


def submission_text(cfg: DictConfig) -> dict[str, str]:
    """``algorithm``, ``algorithm_long`` and ``bibtex_refs`` of info.json: the model's
    ``matgnn/configs/submission/<model>.yaml`` where there is one, else its name and the
    description at the top of its model config (a new model needs no file of its own here)."""
    given = cfg.get("submission")
    if given:
        return {
            "algorithm": str(given.algorithm),
            "algorithm_long": " ".join(str(given.algorithm_long).split()),
            "bibtex_refs": " ".join(str(given.get("bibtex_refs") or "").split()),
        }
    model = str(HydraConfig.get().runtime.choices.get("model"))
    return {
        "algorithm": f"matgnn {model}",
        "algorithm_long": header("model", model),
        "bibtex_refs": "",
    }


def info(cfg: DictConfig) -> dict[str, Any]:
    """info.json of the submission (the leaderboard's fields); ``notes`` joins the notes of
    every task run into this folder (``<task>: <notes>``)."""
    notes = []
    for saved in sorted(Path(cfg.submission_dir).glob("*/config.yaml")):
        task_notes = OmegaConf.load(saved).get("notes")
        if task_notes:
            notes.append(f"{saved.parent.name}: {task_notes}")
    text = submission_text(cfg)
    return {
        "authors": cfg.authors,
        **text,
        "notes": "; ".join(notes) or None,
        "requirements": {"python": requirements(REQUIREMENTS)},
    }


def user_metadata(cfg: DictConfig, task: str) -> dict[str, Any]:
    """``MatbenchBenchmark.add_metadata``: what produced the recorded folds."""
    return {
        "algorithm": submission_text(cfg)["algorithm"],
        "model": str(HydraConfig.get().runtime.choices.get("model")),
        "command": shlex.join(["python", "-m", "matgnn.matbench", *sys.argv[1:]]),
        "requirements": requirements(REQUIREMENTS),
        "config_of_last_task": f"{task}/config.yaml",
    }


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="matbench")
def _main(cfg: DictConfig) -> None:
    try:
        run_matbench(cfg)
    except MatbenchError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)


def main() -> None:
    try:
        check_request(sys.argv[1:])
    except MatbenchError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    _main()
