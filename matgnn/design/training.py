"""Training iMatGen's autoencoders with Lightning, and their checkpoints.

:class:`AutoencoderTask` trains a cell or basis autoencoder (:mod:`matgnn.design.networks`) on
an :class:`~matgnn.design.data.ImageSet` with the autoencoder's own loss (binary cross-entropy
summed over the voxels). It logs ``train/loss``, ``val/loss`` and, on validation,
``val/atoms_right``: the fraction of images whose decoded image has as many atoms (peaks) as
the original, the first thing a reconstruction must get right.

A checkpoint is Lightning's file with plain data only in ``hyper_parameters`` (the network as
registry data, the optimiser settings, the provenance): :func:`load_autoencoder` reads it with
``torch.load(weights_only=True)`` and builds nothing but a registered design network, so a
crafted file runs no code (the checkpoint rules of :mod:`matgnn.checkpoints`). Resuming is
Lightning's ``ckpt_path`` with ``weights_only=True``.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from scipy import ndimage
from torch import nn

from matgnn.checkpoints import safe_config
from matgnn.checkpoints.files import CheckpointError, kept_for_loading, load_file
from matgnn.checkpoints.migrations import FORMAT_KEY, FORMAT_VERSION
from matgnn.checkpoints.safe_config import UnsafeConfigError
from matgnn.design.decoding import read_decoding
from matgnn.design.generate import OVERLAP
from matgnn.design.images import ImageSpec
from matgnn.design.networks import ImageAutoencoder, MaterialsGenerator
from matgnn.graphs.cache import file_sha256
from matgnn.outputs import Output

#: the registered roots an autoencoder checkpoint may name, by image kind
AUTOENCODERS = {"cell": "imatgen_cell_autoencoder", "basis": "imatgen_basis_autoencoder"}
#: the registered root of a generator checkpoint
GENERATOR = "imatgen_generator"


def atom_count(image: np.ndarray, threshold: float) -> int:
    """Periodic local maxima of a basis image at or above ``threshold`` (the peaks that
    :func:`~matgnn.design.images.positions_from_basis_image` turns into atoms, before merging
    a plateau's equal maxima)."""
    peaks = ndimage.maximum_filter(image, size=3, mode="wrap") == image
    return int((peaks & (image >= threshold)).sum())


def image_entropy(image: torch.Tensor) -> torch.Tensor:
    """The binary entropy of an image's values summed over its voxels, averaged over the batch:
    the smallest binary cross-entropy (:meth:`ImageAutoencoder.loss`) any decoder can reach.

    Shapes:
        ``[B, ...]`` -> scalar.
    """
    image = image.clamp(0.0, 1.0)  # overlapping Gaussians can sum above 1
    entropy = -(torch.special.xlogy(image, image) + torch.special.xlogy(1 - image, 1 - image))
    return entropy.sum() / image.size(0)


class AutoencoderTask(L.LightningModule):
    """Lightning training of one autoencoder.

    Args:
        network: the autoencoder as registry data (``safe_config.object_node``), root one of
            :data:`AUTOENCODERS`.
        kind: ``"cell"`` or ``"basis"``.
        lr: Adam's learning rate.
        lr_decay: ``None`` (a constant ``lr``) or ``{"start": E, "epochs": N, "min": m}``: ``lr``
            until epoch ``E``, then a half cosine down to ``m`` over ``N`` epochs (``m`` from
            epoch ``E + N`` on; :func:`decayed_lr`). Set from the epoch number before every
            step, so a run resumed from a checkpoint of any epoch, with or without a decay
            before, follows it; the configured ``lr`` governs a resumed run, not the
            optimiser's stored one.
        peak_threshold: the peak height counted as an atom in ``val/atoms_right`` (basis only).
        provenance: plain data saved with the checkpoint (data set, split, budget).
    """

    def __init__(
        self,
        network: Mapping[str, Any],
        kind: str,
        lr: float = 1e-3,
        lr_decay: Mapping[str, float | None] | None = None,
        peak_threshold: float = 0.3,
        provenance: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if kind not in AUTOENCODERS:
            raise ValueError(f"autoencoder kind must be one of {tuple(AUTOENCODERS)}, got {kind!r}")
        network = dict(network)
        self.save_hyperparameters(
            {
                "network": network,
                "kind": kind,
                "lr": float(lr),
                "lr_decay": _checked_decay(lr_decay, lr),
                "peak_threshold": float(peak_threshold),
                "provenance": dict(provenance or {}),
            }
        )
        self.network: ImageAutoencoder = safe_config.build(
            network, "network", root=AUTOENCODERS[kind]
        )

    def _loss(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.network.decode_logits(self.network.encode(image))
        return self.network.loss(logits, image), logits

    def training_step(self, image: torch.Tensor, batch_idx: int) -> torch.Tensor:
        loss, _ = self._loss(image)
        self.log("train/loss", loss, prog_bar=True, batch_size=image.size(0))
        return loss

    def validation_step(self, image: torch.Tensor, batch_idx: int) -> None:
        loss, logits = self._loss(image)
        self.log("val/loss", loss, prog_bar=True, batch_size=image.size(0))
        # the cross-entropy above its floor (the images' own entropy: their values are not 0
        # or 1), the part a better network can still remove; and the log-value error on the
        # Gaussians, which the cell image's inverse reads the lattice from
        shape = self.network.shape_error(logits, image)
        excess = loss - self.network.shape_weight * shape - image_entropy(image)
        self.log("val/excess", excess, batch_size=image.size(0))
        self.log("val/shape_error", shape, batch_size=image.size(0))
        if self.hparams.kind == "basis":
            decoded = torch.sigmoid(logits).detach().cpu().numpy()[:, 0]
            wanted = image.cpu().numpy()[:, 0]
            threshold = self.hparams.peak_threshold
            right = [
                atom_count(d, threshold) == atom_count(w, threshold)
                for d, w in zip(decoded, wanted, strict=True)
            ]
            self.log("val/atoms_right", float(np.mean(right)), batch_size=image.size(0))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.network.parameters(), lr=self.hparams.lr)

    def _set_lr(self) -> float:
        """The epoch's learning rate (:func:`decayed_lr`) into every parameter group: the
        configured ``lr`` governs, also over a resumed optimiser's stored one."""
        lr = decayed_lr(self.hparams.lr, self.hparams.get("lr_decay"), self.current_epoch)
        for optimizer in self.trainer.optimizers:
            for group in optimizer.param_groups:
                group["lr"] = lr
        return lr

    def on_train_epoch_start(self) -> None:
        self.log("lr", self._set_lr(), on_step=False, on_epoch=True, batch_size=1)

    def on_train_batch_start(self, batch: torch.Tensor, batch_idx: int) -> None:
        # a run resumed mid-epoch skips on_train_epoch_start: set the rate before every step
        self._set_lr()

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint[FORMAT_KEY] = FORMAT_VERSION


def _checked_decay(decay: Mapping[str, float | None] | None, lr: float) -> dict[str, float] | None:
    """``lr_decay`` as plain numbers (``None``: no decay), or a ``ValueError`` naming what is
    wrong."""
    if decay is None:
        return None
    unknown = set(decay) - {"start", "epochs", "min"}
    if unknown:
        raise ValueError(f"lr_decay: unknown keys {sorted(unknown)} (start, epochs, min)")
    if decay.get("start") is None:
        return None
    missing = {"epochs", "min"} - {k for k, v in decay.items() if v is not None}
    if missing:
        raise ValueError(f"lr_decay: start={decay['start']} needs {sorted(missing)} too")
    start, epochs, low = decay["start"], decay["epochs"], float(decay["min"])
    if int(start) != start or int(epochs) != epochs:
        raise ValueError(f"lr_decay: start and epochs are epoch counts, got {start}, {epochs}")
    start, epochs = int(start), int(epochs)
    if start < 0 or epochs < 1 or not 0 <= low <= lr:
        raise ValueError(
            f"lr_decay: needs start >= 0, epochs >= 1 and 0 <= min <= lr ({lr}); got "
            f"start={start}, epochs={epochs}, min={low}"
        )
    return {"start": start, "epochs": epochs, "min": low}


def decayed_lr(lr: float, decay: Mapping[str, float] | None, epoch: int) -> float:
    """The learning rate of ``epoch`` (0-based) under ``decay`` (see :class:`AutoencoderTask`):
    ``lr`` before ``start``, ``min + (lr - min) (1 + cos(pi t / N)) / 2`` at ``t = epoch -
    start`` for ``t < N``, ``min`` after."""
    if not decay:
        return lr
    t = epoch - int(decay["start"])
    if t < 0:
        return lr
    epochs, low = int(decay["epochs"]), float(decay["min"])
    if t >= epochs:
        return low
    return low + (lr - low) * 0.5 * (1.0 + math.cos(math.pi * t / epochs))


def _read(path: str | Path, root: str, kind: str | None) -> tuple[dict[str, Any], Mapping]:
    """A design checkpoint read as data (``weights_only=True``) and checked: its network may
    only be the registered ``root``, its state a map of names to tensors."""
    checkpoint = load_file(path)
    try:
        hyper = checkpoint.get("hyper_parameters") if isinstance(checkpoint, Mapping) else None
        if not isinstance(hyper, Mapping) or "network" not in hyper:
            raise UnsafeConfigError("not a design checkpoint (no hyper_parameters.network)")
        if kind is not None and hyper.get("kind") != kind:
            raise UnsafeConfigError(f"a {hyper.get('kind')!r} autoencoder, not a {kind!r} one")
        safe_config.validate(hyper["network"], "hyper_parameters.network", root=root)
        safe_config.check_plain(hyper.get("provenance"), "hyper_parameters.provenance")
        state = checkpoint.get("state_dict")
        if not isinstance(state, Mapping) or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
        ):
            raise UnsafeConfigError("state_dict: must map parameter names to tensors")
    except UnsafeConfigError as exc:
        raise CheckpointError(f"{path}: refused: {exc}") from None
    return checkpoint, hyper


def _load_state(network: nn.Module, state: Mapping[str, torch.Tensor], path: str | Path) -> None:
    """The checkpoint's weights into the network it describes; weights of other names or
    shapes are a :class:`CheckpointError` naming the file."""
    try:
        network.load_state_dict({k.removeprefix("network."): v for k, v in state.items()})
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        raise CheckpointError(
            f"{path}: its weights do not fit the network it names: {' '.join(first[:3])}"
        ) from None


def load_autoencoder(path: str | Path, kind: str) -> ImageAutoencoder:
    """The autoencoder of an :class:`AutoencoderTask` checkpoint, in eval mode; the file is
    read as data (``weights_only=True``) and may only name the ``kind``'s registered class."""
    if kind not in AUTOENCODERS:
        raise ValueError(f"autoencoder kind must be one of {tuple(AUTOENCODERS)}, got {kind!r}")
    checkpoint, hyper = _read(path, AUTOENCODERS[kind], kind)
    network = safe_config.build(hyper["network"], "hyper_parameters.network")
    _load_state(network, checkpoint["state_dict"], path)
    network.provenance = dict(hyper.get("provenance") or {})
    return network.eval()


class GeneratorTask(L.LightningModule):
    """Lightning training of the materials generator (a VAE on the autoencoders' codes with
    a property network on its latent).

    Loss per crystal: the squared reconstruction error summed over the code (the cell code's
    row counted ``cell_weight`` times), plus ``kl_weight`` times the KL divergence summed over
    the latent, plus ``property_weight`` times the output's own loss on the crystals that have
    a label (a batch's ``target`` is NaN where a structure has none; none is invented). The
    logged ``reconstruction`` is the unweighted error, ``cell_reconstruction`` the cell row's.

    Args:
        network: the generator as registry data (root ``imatgen_generator``).
        lr: Adam's learning rate.
        kl_weight: weight of the KL term.
        cell_weight: weight of the cell code's row in the reconstruction error (its code, whose
            20 numbers carry the whole lattice that must come back within 0.1 Å and 2 degrees,
            and the row's zero padding, which the decoder must give back as zeros).
        property_weight: weight of the property loss.
        provenance: plain data saved with the checkpoint (codes, labels and their labeller).

    Shapes:
        batch ``{"codes": [B, channels, length], "target": [B]}``.
    """

    def __init__(
        self,
        network: Mapping[str, Any],
        lr: float = 1e-3,
        kl_weight: float = 1.0,
        property_weight: float = 1.0,
        provenance: Mapping[str, Any] | None = None,
        cell_weight: float = 1.0,
    ) -> None:
        super().__init__()
        if not cell_weight > 0 or not kl_weight >= 0:
            raise ValueError(
                f"generator weights: cell_weight must be > 0 (got {cell_weight}), kl_weight "
                f">= 0 (got {kl_weight})"
            )
        network = dict(network)
        self.save_hyperparameters(
            {
                "network": network,
                "lr": float(lr),
                "kl_weight": float(kl_weight),
                "cell_weight": float(cell_weight),
                "property_weight": float(property_weight),
                "provenance": dict(provenance or {}),
            }
        )
        self.network: MaterialsGenerator = safe_config.build(network, "network", root=GENERATOR)

    def fit_property(self, targets: torch.Tensor) -> None:
        """Fit the property output's normalisation on the training labels (finite ones)."""
        output = self.network.output
        if output is None:
            return
        labelled = targets[torch.isfinite(targets)]
        if not len(labelled):
            raise ValueError("the generator's property output has no labelled training crystal")
        compositions = torch.zeros(len(labelled), 119)
        compositions[:, 0] = 1.0  # one latent "atom" per crystal, no element reference
        output.fit(self.network.head, _as_target(output, labelled), compositions)

    def _losses(self, batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        codes = batch["codes"]
        out = self.network(codes)
        rows = ((out["reconstruction"] - codes) ** 2).sum(2).mean(0)  # [channels], cell last
        losses = {
            "reconstruction": rows.sum(),
            "cell_reconstruction": rows[-1],
            "kl": self.network.kl_divergence(out["mu"], out["log_var"]),
        }
        weighted = rows.sum() + (self.hparams.cell_weight - 1.0) * rows[-1]
        total = weighted + self.hparams.kl_weight * losses["kl"]
        if self.network.output is not None:
            labelled = torch.isfinite(batch["target"])
            if labelled.any():
                target = _as_target(self.network.output, batch["target"][labelled])
                losses["property"] = self.network.output.compute_loss(
                    out["property"][labelled], target, self.network.head
                )
                total = total + self.hparams.property_weight * losses["property"]
        losses["loss"] = total
        return losses

    def training_step(self, batch: Mapping[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        losses = self._losses(batch)
        for name, value in losses.items():
            self.log(
                f"train/{name}", value, prog_bar=name == "loss", batch_size=len(batch["codes"])
            )
        return losses["loss"]

    def validation_step(self, batch: Mapping[str, torch.Tensor], batch_idx: int) -> None:
        for name, value in self._losses(batch).items():
            self.log(f"val/{name}", value, prog_bar=name == "loss", batch_size=len(batch["codes"]))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.network.parameters(), lr=self.hparams.lr)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint[FORMAT_KEY] = FORMAT_VERSION


def _as_target(output: Output, values: torch.Tensor) -> torch.Tensor:
    """Labels as the output takes them: class indices for a classifier, floats otherwise."""
    return values.long() if output.target_dtype == "long" else values.float()


def load_generator(path: str | Path) -> MaterialsGenerator:
    """The generator of a :class:`GeneratorTask` checkpoint, in eval mode, read as data."""
    checkpoint, hyper = _read(path, GENERATOR, kind=None)
    network = safe_config.build(hyper["network"], "hyper_parameters.network", root=GENERATOR)
    _load_state(network, checkpoint["state_dict"], path)
    network.provenance = dict(hyper.get("provenance") or {})
    # the epoch of the weights read (a slimmed checkpoint keeps it): what its tables name
    epoch = checkpoint.get("epoch")
    network.checkpoint_epoch = int(epoch) if isinstance(epoch, numbers.Integral) else None
    return network.eval()


def slim_generator_checkpoint(source: str | Path, target: str | Path) -> Path:
    """A generator checkpoint without what only resuming needs (optimizer state, loops,
    callbacks): a third of the size, the weights unchanged, still read by
    :func:`load_generator` (a generator kept beside the tables it made)."""
    checkpoint, _ = _read(source, GENERATOR, kind=None)
    target = Path(target)
    torch.save(kept_for_loading(checkpoint), target)  # its format kept
    return target


def checkpoint_digest(path: str | Path) -> str:
    """SHA-256 of a checkpoint file: which weights made a set of codes."""
    return file_sha256(Path(path))


def image_spec_of(network: ImageAutoencoder) -> ImageSpec:
    """The image geometry an autoencoder was trained on (its provenance)."""
    image = dict(network.provenance.get("image") or {})
    if "elements" in image:
        image["elements"] = tuple(image["elements"])
    return ImageSpec(**image)


@dataclass
class DesignModels:
    """A trained generator with the two autoencoders whose codes it was trained on."""

    generator: MaterialsGenerator
    cell: ImageAutoencoder
    basis: ImageAutoencoder
    spec: ImageSpec
    #: the overlap cut calibrated on the basis run's validation decodings (``decoding.json``),
    #: None where it has none
    overlap_cut: float | None = None

    @property
    def overlap(self) -> float:
        """Atoms closer than this (Å) in a generated crystal overlap: the calibrated cut, else
        :data:`~matgnn.design.generate.OVERLAP`."""
        return OVERLAP if self.overlap_cut is None else self.overlap_cut


def _autoencoder_runs(
    generator: MaterialsGenerator, kind: str, generator_run: str | Path
) -> list[Path]:
    """The ``kind`` autoencoder's run folders that hold a best checkpoint, of: the one the
    generator's provenance names, and, for runs moved together (a copy, another machine), the
    folder of that name beside the generator run."""
    recorded = Path(generator.provenance[f"{kind}_run"])
    beside = Path(generator_run).parent / recorded.name
    folders = [
        f for f in dict.fromkeys((recorded, beside)) if (f / "checkpoints" / "best.ckpt").is_file()
    ]
    if folders:
        return folders
    raise FileNotFoundError(
        f"{generator_run}: its {kind} autoencoder run is neither at {recorded} nor at {beside}; "
        f"give it ({kind}_run)"
    )


def load_design_models(
    generator_run: str | Path,
    cell_run: str | Path | None = None,
    basis_run: str | Path | None = None,
) -> DesignModels:
    """The best checkpoints of a generator run and of its autoencoders (the runs its
    provenance names, unless given), refused unless they are the very files the generator's
    codes came from (SHA-256) and share one image geometry; decoded as chosen for the two
    autoencoders (the basis run's ``decoding.json``, :mod:`matgnn.design.decoding`: threshold,
    merge saddle, overlap cut), else at the image geometry's defaults."""
    generator = load_generator(Path(generator_run) / "checkpoints" / "best.ckpt")
    networks, runs = {}, {}
    for kind, given in (("cell", cell_run), ("basis", basis_run)):
        recorded = generator.provenance.get(f"{kind}_sha256")
        folders = [Path(given)] if given else _autoencoder_runs(generator, kind, generator_run)
        found = [folder / "checkpoints" / "best.ckpt" for folder in folders]
        best = next((path for path in found if checkpoint_digest(path) == recorded), found[0])
        if recorded != checkpoint_digest(best):
            raise CheckpointError(
                f"{best}: not the {kind} autoencoder whose codes trained the generator in "
                f"{generator_run} (its weights changed since, or another run); retrain the "
                "generator"
            )
        networks[kind] = load_autoencoder(best, kind)
        runs[kind] = (best.parent.parent, recorded)
    spec = image_spec_of(networks["basis"])
    if image_spec_of(networks["cell"]) != spec:
        raise CheckpointError(f"{generator_run}: its autoencoders were trained on other images")
    # decoded as chosen for these autoencoders on validation structures
    basis_folder, basis_sha256 = runs["basis"]
    decoding = read_decoding(basis_folder, basis_sha256, runs["cell"][1])
    if decoding is None:
        return DesignModels(generator, networks["cell"], networks["basis"], spec)
    return DesignModels(
        generator, networks["cell"], networks["basis"], decoding.applied(spec), decoding.overlap_cut
    )
