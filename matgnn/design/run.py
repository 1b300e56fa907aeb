"""One place that assembles an iMatGen autoencoder run from its config
(``matgnn/configs/imatgen.yaml``): the V-O data set and its split, the image sets, the task,
the trainer with its checkpoints and logs; ``python -m matgnn.design.train`` only composes the
config and calls :func:`fit_autoencoder`.

A run's folder holds ``checkpoints/best.ckpt`` (lowest ``val/loss``) and ``last.ckpt``,
``logs/version_<k>/metrics.csv`` (Lightning's CSV logger, one version per start;
:func:`read_metrics` joins them), ``split.json`` (the rows' ids of each part) and
``result.json`` (the epoch and validation metrics of the best checkpoint, the wall time, the
peak resident memory).
"""

from __future__ import annotations

import json
import logging
import resource
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import pandas as pd
import torch
from hydra.utils import instantiate
from lightning.pytorch.callbacks import ModelCheckpoint, Timer
from lightning.pytorch.loggers import CSVLogger
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import DataLoader, Dataset

from matgnn.checkpoints import safe_config
from matgnn.design.codes import encode_structures
from matgnn.design.data import ImageSet, Split, split_by_source
from matgnn.design.images import ImageSpec
from matgnn.design.labels import read_labels
from matgnn.design.networks import MaterialsGenerator
from matgnn.design.training import (
    AUTOENCODERS,
    AutoencoderTask,
    GeneratorTask,
    checkpoint_digest,
    image_spec_of,
    load_autoencoder,
)
from matgnn.design.vo_dataset import VODataset, build_vo_dataset, vo_sample
from matgnn.outputs import ClassOutput, Output, ScalarOutput
from matgnn.terminal import is_interactive
from matgnn.training.callbacks import BoundRetainedMemory, EpochSummary

log = logging.getLogger(__name__)

#: each start of a run (the first, every resume) logs to ``<run>/logs/version_<k>/metrics.csv``
LOGS = "logs"
#: written when a start begins, removed when it writes result.json
STARTED = "started.json"
#: the V-O data set built from mp36k, kept here under the cache folder
VO_CACHE = "vo_dataset.json.gz"


def compose_config(*overrides: str, output_dir: str | Path = "unused") -> DictConfig:
    """The config of ``python -m matgnn.design.train <overrides>``, for :func:`fit` from
    Python (a notebook)."""
    from hydra import compose, initialize_config_dir

    from matgnn.config_dir import CONFIG_DIR

    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose(
            config_name="imatgen", overrides=[f"paths.output_dir={output_dir}", *overrides]
        )


def load_vo_dataset(source: str, data_dir: str | Path, cache_dir: str | Path) -> VODataset:
    """``sample`` (shipped), ``mp36k`` (built from ``data_dir`` once, then read from
    ``cache_dir``) or the path of a saved :class:`VODataset`."""
    if source == "sample":
        return vo_sample()
    if source == "mp36k":
        cached = Path(cache_dir) / VO_CACHE
        if cached.is_file():
            return VODataset.from_json(cached)
        data = build_vo_dataset(data_dir)
        cached.parent.mkdir(parents=True, exist_ok=True)
        data.to_json(cached)
        return data
    path = Path(source)
    if not path.is_file():
        raise FileNotFoundError(
            f"data.source: {source!r} is neither 'sample', 'mp36k' nor a V-O data set file"
        )
    return VODataset.from_json(path)


def read_metrics(run_dir: str | Path) -> pd.DataFrame:
    """A run's logged metrics, every start in order (a resumed run's versions concatenated)."""
    files = sorted(
        Path(run_dir, LOGS).glob("version_*/metrics.csv"),
        key=lambda f: int(f.parent.name.removeprefix("version_")),
    )
    if not files:
        raise FileNotFoundError(f"{run_dir}: no {LOGS}/version_*/metrics.csv (has it trained?)")
    return pd.concat([pd.read_csv(f) for f in files], ignore_index=True)


def image_spec(cfg: DictConfig) -> ImageSpec:
    image = OmegaConf.to_container(cfg.image, resolve=True)
    return ImageSpec(**{**image, "elements": tuple(image["elements"])})


def network_node(cfg: DictConfig, spec: ImageSpec) -> dict[str, Any]:
    """The stage's network as registry data, its grid from the image geometry."""
    from matgnn.checkpoints.registry import entry

    cls = entry(AUTOENCODERS[cfg.stage]).cls
    grid = spec.cell_grid if cfg.stage == "cell" else spec.basis_grid
    arguments = OmegaConf.to_container(cfg.network, resolve=True)
    return safe_config.object_node(cls, grid=grid, **arguments)


def data_split(cfg: DictConfig, data: VODataset) -> Split:
    split = split_by_source(
        data,
        val=cfg.data.val,
        test=cfg.data.test,
        seed=cfg.data.split_seed,
        hold_out_known=cfg.data.hold_out_known,
    )
    if cfg.data.train_limit is not None:
        split = Split(split.train[: cfg.data.train_limit], split.val, split.test, split.held_out)
    return split


@dataclass
class AutoencoderRun:
    """What a run leaves: the best checkpoint, its validation metrics, the split."""

    best_checkpoint: str
    metrics: dict[str, Any]
    split: Split


def _resume_path(cfg: DictConfig, output_dir: Path) -> str | None:
    if not cfg.get("resume"):
        return None
    last = output_dir / "checkpoints" / "last.ckpt"
    if not last.is_file():
        raise FileNotFoundError(f"resume: no {last} (has this run saved a checkpoint?)")
    return str(last)


def _train(
    cfg: DictConfig,
    task: L.LightningModule,
    loaders: dict[str, DataLoader],
    output_dir: Path,
    resume: str | None,
    started: float,
) -> dict[str, Any]:
    """Fit ``task`` with the configured trainer, checkpoints (best ``val/loss`` and last) and
    CSV log; write ``result.json`` (its ``best_checkpoint`` relative to ``output_dir``) and
    return the same record with the checkpoint's path as Lightning gave it."""
    checkpoint = ModelCheckpoint(
        dirpath=output_dir / "checkpoints",
        filename="best",
        monitor="val/loss",
        mode="min",
        enable_version_counter=False,
    )
    # last.ckpt after every epoch, to resume from: ModelCheckpoint's own save_last writes it
    # only when the best checkpoint improves, so a stopped run would go back to its last
    # improvement (as the training CLI's callbacks/default.yaml)
    last = ModelCheckpoint(
        dirpath=output_dir / "checkpoints",
        filename="last",
        monitor=None,
        save_top_k=1,
        every_n_epochs=1,
        enable_version_counter=False,
    )
    callbacks: list[L.Callback] = [checkpoint, last]
    callbacks += BoundRetainedMemory.if_retained()  # a process that retains freed memory
    bar = is_interactive()
    if not bar:
        callbacks.append(EpochSummary())
    trainer = instantiate(
        cfg.trainer,
        logger=CSVLogger(output_dir, name=LOGS),
        callbacks=callbacks,
        enable_progress_bar=bar,
        default_root_dir=output_dir,
    )
    # a start that ends writes result.json and removes this marker; a marker found on resume is
    # a start that was killed (its wall time unknown: only the timer below counts it)
    marker = output_dir / STARTED
    earlier = _earlier_starts(output_dir, resume)
    marker.write_text(
        json.dumps({"started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **earlier}, indent=1)
    )
    trainer.fit(task, loaders["train"], loaders["val"], ckpt_path=resume, weights_only=True)
    best = checkpoint.best_model_path
    this_start = time.perf_counter() - started
    total = earlier["wall_time_s"]
    timer = next((c for c in trainer.callbacks if isinstance(c, Timer)), None)
    metrics = {
        "stage": cfg.stage,
        "best_checkpoint": str(best),
        "best_val_loss": float(checkpoint.best_model_score) if best else None,
        "epochs_run": int(trainer.current_epoch),
        # every start together; None when an earlier start left no record (killed)
        "wall_time_s": None if total is None else round(total + this_start, 1),
        "wall_time_this_start_s": round(this_start, 1),
        # Lightning's timer (trainer.max_time): training time of every start, a killed one's
        # up to its last checkpoint
        "train_time_s": round(timer.time_elapsed("train"), 3) if timer is not None else None,
        "starts": earlier["starts"] + 1,
        "unfinished_starts": earlier["unfinished_starts"],
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    # the record names the checkpoint relative to the run folder, so a moved folder still says
    # which one it is; the caller gets the path
    record = dict(metrics, best_checkpoint=_relative(best, output_dir) if best else "")
    (output_dir / "result.json").write_text(json.dumps(record, indent=1))
    marker.unlink(missing_ok=True)
    return metrics


def _earlier_starts(output_dir: Path, resume: str | None) -> dict[str, Any]:
    """What the starts before this one add up to: ``starts``, ``unfinished_starts`` (killed
    before their record) and ``wall_time_s`` (None once any of them left no record).

    A start's marker carries the counts before it, so a killed start is counted from its
    marker, and several killed in a row each add one."""
    if not resume:
        return {"starts": 0, "unfinished_starts": 0, "wall_time_s": 0.0}
    marker = output_dir / STARTED
    if marker.is_file():
        before = json.loads(marker.read_text())
        return {
            "starts": int(before.get("starts") or 0) + 1,
            "unfinished_starts": int(before.get("unfinished_starts") or 0) + 1,
            "wall_time_s": None,
        }
    record = output_dir / "result.json"
    if record.is_file():
        done = json.loads(record.read_text())
        return {
            "starts": int(done.get("starts") or 1),
            "unfinished_starts": int(done.get("unfinished_starts") or 0),
            "wall_time_s": done.get("wall_time_s"),
        }
    # resumed from a checkpoint with neither (a start killed before markers existed)
    return {"starts": 1, "unfinished_starts": 1, "wall_time_s": None}


def _warm_start_record(
    cfg: DictConfig,
    output_dir: Path,
    resume: str | None,
    spec: ImageSpec,
    parts: dict[str, list[str]],
) -> dict[str, Any] | None:
    """The ``init_from`` record of this run's checkpoints (None: not warm-started). A new run
    checks its ``init_from`` (:func:`_init_record`); a resumed one carries the record of its
    last checkpoint, and an ``init_from`` that names another run than that record is
    refused."""
    init = cfg.get("init_from")
    if resume:
        earlier = load_autoencoder(resume, cfg.stage).provenance.get("init_from")
        if init and (not earlier or Path(str(earlier["run"])).resolve() != Path(init).resolve()):
            started = f"from {earlier['run']}" if earlier else "from scratch"
            raise ValueError(
                f"init_from={init}: {output_dir} resumes a run started {started}; "
                "a resumed run keeps its own start"
            )
        return dict(earlier) if earlier else None
    if not init:
        return None
    if Path(init).resolve() == output_dir.resolve():
        raise ValueError(f"init_from={init}: the run's own folder (resume=<folder> continues it)")
    return _init_record(Path(init), cfg.stage, spec, parts)


def _init_record(
    run: Path, stage: str, spec: ImageSpec, parts: dict[str, list[str]]
) -> dict[str, Any]:
    """What a warm start (``init_from``) starts from: the run's best checkpoint and its
    digest. Refused, naming the run: another stage's run, other images, or another split (the
    same training, validation, test and held-out structures: none this run validates or tests
    on may have been trained on, and a subset of the training rows is another run)."""
    checkpoint = run / "checkpoints" / "best.ckpt"
    if not checkpoint.is_file():
        raise FileNotFoundError(f"init_from: no {checkpoint} (is {run} an autoencoder run?)")
    source = load_autoencoder(checkpoint, stage)
    if image_spec_of(source) != spec:
        raise ValueError(
            f"init_from: {run} was trained on other images ({image_spec_of(source)}, this run: "
            f"{spec})"
        )
    split_file = run / "split.json"
    if not split_file.is_file() or json.loads(split_file.read_text()) != parts:
        raise ValueError(
            f"init_from: {run} was trained on another split than this run's ({split_file}): "
            "its weights may have seen this run's validation or test structures"
        )
    return {"run": str(run), "checkpoint_sha256": checkpoint_digest(checkpoint)}


def _warm_start(network: torch.nn.Module, run: Path, stage: str) -> None:
    """``network`` (a new run's) takes the weights of ``run``'s best checkpoint; a network of
    another architecture (width, code, grid, batch norm or not: other weights' names or shapes)
    is refused, naming the run. Settings without weights of their own may differ: the loss's
    ``shape_weight``, and ``background_logit``, which only sets the initial bias."""
    source = load_autoencoder(run / "checkpoints" / "best.ckpt", stage)
    try:
        network.load_state_dict(source.state_dict())
    except RuntimeError as exc:
        first = " ".join(str(exc).strip().splitlines()[:2])
        raise ValueError(
            f"init_from: {run}'s network does not fit this run's (same width, code and "
            f"grid needed): {first}"
        ) from None


def _relative(path: str | Path, folder: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(folder.resolve()))
    except ValueError:  # a checkpoint outside the run folder keeps its full path
        return str(path)


def fit_autoencoder(cfg: DictConfig, output_dir: str | Path) -> AutoencoderRun:
    """Train the ``cfg.stage`` autoencoder; write the run folder (module docstring)."""
    started = time.perf_counter()
    output_dir = Path(output_dir)
    L.seed_everything(cfg.seed, workers=True)
    data = load_vo_dataset(cfg.data.source, cfg.paths.data_dir, cfg.paths.cache_dir)
    spec = image_spec(cfg)
    split = data_split(cfg, data)
    output_dir.mkdir(parents=True, exist_ok=True)
    parts = {
        k: [data.ids[i] for i in getattr(split, k)] for k in ("train", "val", "test", "held_out")
    }
    resume = _resume_path(cfg, output_dir)
    # checked before this run writes its split.json (the source's is read)
    warm = _warm_start_record(cfg, output_dir, resume, spec, parts)
    (output_dir / "split.json").write_text(json.dumps(parts))
    loaders = {
        part: DataLoader(
            ImageSet(data, getattr(split, part), cfg.stage, spec),
            batch_size=cfg.data.batch_size,
            shuffle=part == "train",
            num_workers=cfg.data.num_workers,
        )
        for part in ("train", "val")
    }
    provenance = {
        "data": cfg.data.source,
        "structures": len(data),
        "train_rows": len(split.train),
        "split_seed": cfg.data.split_seed,
        "hold_out_known": bool(cfg.data.hold_out_known),
        "image": OmegaConf.to_container(cfg.image, resolve=True),
    }
    if warm:
        provenance["init_from"] = warm
    decay = cfg.get("lr_decay")
    decay = OmegaConf.to_container(decay, resolve=True) if decay is not None else None
    task = AutoencoderTask(
        network_node(cfg, spec), cfg.stage, lr=cfg.lr, lr_decay=decay, provenance=provenance
    )
    if warm and not resume:  # a resumed run has its own weights in last.ckpt
        _warm_start(task.network, Path(warm["run"]), cfg.stage)
    metrics = _train(cfg, task, loaders, output_dir, resume, started)
    return AutoencoderRun(metrics["best_checkpoint"], metrics, split)


#: a generator run keeps its training codes here (``torch.save``, read with weights_only)
CODES = "codes.pt"


def property_output(cfg: DictConfig) -> Output | None:
    """The generator's property output from ``cfg.generator.property`` (None: no labels)."""
    prop = cfg.generator.property
    if not prop.labels:
        return None
    if not prop.column:
        raise ValueError("generator.property.column: name the label column of the labels file")
    if prop.threshold is None:
        return ScalarOutput(name=str(prop.column), target=str(prop.column), loss="mae")
    return ClassOutput(
        name="stable", target="stable", num_classes=2, classes=("unstable", "stable")
    )


def property_targets(cfg: DictConfig, data: VODataset) -> torch.Tensor:
    """One value per structure (NaN without a label): the label column of the labels file, or
    ``label <= threshold`` as 0/1 for the class."""
    prop = cfg.generator.property
    frame, _ = read_labels(prop.labels)
    if prop.column not in frame:
        raise ValueError(f"{prop.labels}: no column {prop.column!r} (has {list(frame.columns)})")
    values = dict(zip(frame["id"], frame[prop.column].astype(float), strict=True))
    raw = torch.tensor([values.get(i, float("nan")) for i in data.ids], dtype=torch.float64)
    if prop.threshold is None:
        return raw
    return torch.where(torch.isnan(raw), raw, (raw <= prop.threshold).double())


def autoencoders_split(cell_run: Path, basis_run: Path) -> dict[str, list[str]]:
    """The split (ids per part) two autoencoder runs share; runs on different splits are
    refused."""
    splits = [json.loads((Path(d) / "split.json").read_text()) for d in (cell_run, basis_run)]
    if splits[0] != splits[1]:
        raise ValueError(f"{cell_run} and {basis_run} were trained on different splits")
    return splits[0]


def fit_generator(cfg: DictConfig, output_dir: str | Path) -> AutoencoderRun:
    """Train the materials generator on the codes of ``cfg.generator``'s two autoencoder runs,
    on their split; write the run folder (``codes.pt`` with the codes of every structure)."""
    started = time.perf_counter()
    output_dir = Path(output_dir)
    if cfg.get("init_from"):
        raise ValueError(
            f"init_from={cfg.init_from}: warm starts are for the autoencoders (stage=cell or "
            "basis), not the generator"
        )
    L.seed_everything(cfg.seed, workers=True)
    runs = {k: Path(str(cfg.generator[f"{k}_run"] or "")) for k in AUTOENCODERS}
    for kind, folder in runs.items():
        if not (folder / "checkpoints" / "best.ckpt").is_file():
            raise FileNotFoundError(f"generator.{kind}_run: no {folder}/checkpoints/best.ckpt")
    shared = autoencoders_split(runs["cell"], runs["basis"])
    data = load_vo_dataset(cfg.data.source, cfg.paths.data_dir, cfg.paths.cache_dir)
    index = {sid: row for row, sid in enumerate(data.ids)}
    missing = [sid for part in shared.values() for sid in part if sid not in index]
    if missing:
        raise ValueError(f"the autoencoders' split names {len(missing)} structures not in the data")
    best = {kind: folder / "checkpoints" / "best.ckpt" for kind, folder in runs.items()}
    cell, basis = (load_autoencoder(best[kind], kind) for kind in ("cell", "basis"))
    spec = image_spec_of(basis)
    if image_spec_of(cell) != spec or image_spec(cfg) != spec:
        raise ValueError(
            f"the autoencoders ({runs['cell']}, {runs['basis']}) and this config's image "
            "settings describe different images"
        )
    digests = {f"{kind}_sha256": checkpoint_digest(path) for kind, path in best.items()}
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "split.json").write_text(json.dumps(shared))
    codes_file = output_dir / CODES
    if codes_file.is_file():
        stored = torch.load(codes_file, weights_only=True)
        codes = stored["codes"]
        if stored["ids"] != data.ids or any(stored.get(k) != v for k, v in digests.items()):
            raise ValueError(
                f"{codes_file} holds the codes of other structures or of other autoencoder "
                "weights; remove it (and the generator's checkpoints) to start again"
            )
    else:
        codes = encode_structures(data.structures, data.ids, cell, basis, spec)
        torch.save({"ids": list(data.ids), "codes": codes, **digests}, codes_file)
    output = property_output(cfg)
    targets = (
        property_targets(cfg, data)
        if output is not None
        else torch.full((len(data),), float("nan"), dtype=torch.float64)
    )
    node = safe_config.object_node(
        MaterialsGenerator,
        channels=codes.shape[1],
        length=codes.shape[2],
        cell_code=cell.code,
        latent=cfg.generator.latent,
        hidden=cfg.generator.hidden,
        output=None if output is None else output.to_config(),
    )
    rows = {part: [index[sid] for sid in shared[part]] for part in ("train", "val")}
    provenance = {
        "data": cfg.data.source,
        "cell_run": str(runs["cell"].resolve()),
        "basis_run": str(runs["basis"].resolve()),
        **digests,
        "train_rows": len(rows["train"]),
        "labels": str(cfg.generator.property.labels),
        "label_column": str(cfg.generator.property.column),
        "threshold": cfg.generator.property.threshold,
    }
    task = GeneratorTask(
        node,
        lr=cfg.lr,
        kl_weight=cfg.generator.kl_weight,
        cell_weight=cfg.generator.cell_weight,
        property_weight=cfg.generator.property_weight,
        provenance=provenance,
    )
    resume = _resume_path(cfg, output_dir)
    if resume is not None:
        _warn_changed_weights(task, resume)
    if output is not None and resume is None:
        task.fit_property(targets[rows["train"]].float())
    loaders = {
        part: DataLoader(
            CodeSet(codes[rows[part]], targets[rows[part]].float()),
            batch_size=cfg.data.batch_size,
            shuffle=part == "train",
        )
        for part in ("train", "val")
    }
    metrics = _train(cfg, task, loaders, output_dir, resume, started)
    split = Split(*(list(map(index.get, shared[p])) for p in ("train", "val", "test", "held_out")))
    return AutoencoderRun(metrics["best_checkpoint"], metrics, split)


def _warn_changed_weights(task: GeneratorTask, resume: str) -> None:
    """A resumed generator trains on with this config's loss weights: say so where the
    checkpoint's run used others (e.g. a run started before the defaults changed)."""
    stored = torch.load(resume, map_location="cpu", weights_only=True)["hyper_parameters"]
    for key in ("kl_weight", "cell_weight", "property_weight", "lr"):
        before, now = stored.get(key, 1.0 if key != "lr" else None), task.hparams[key]
        if before is not None and float(before) != float(now):
            log.warning(
                "%s: resumed with generator %s %s (its run used %s)", resume, key, now, before
            )


class CodeSet(Dataset):
    """Codes and their property targets (NaN: no label) as generator batches."""

    def __init__(self, codes: torch.Tensor, targets: torch.Tensor) -> None:
        self.codes, self.targets = codes, targets

    def __len__(self) -> int:
        return len(self.codes)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {"codes": self.codes[index], "target": self.targets[index]}


def fit(cfg: DictConfig, output_dir: str | Path) -> AutoencoderRun:
    """The run of ``cfg.stage``: an autoencoder or the generator."""
    if cfg.stage == "generator":
        return fit_generator(cfg, output_dir)
    return fit_autoencoder(cfg, output_dir)
