"""Training iMatGen's autoencoders (matgnn.design.data, .training, .run, .evaluate): splits by
source, images made on the fly equal to the representation's, a run assembled from the Hydra
config that learns, resumes and writes a checkpoint read as data only, and the reconstruction
table with every failure counted."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir

from matgnn.checkpoints import safe_config
from matgnn.checkpoints.files import CheckpointError
from matgnn.config_dir import CONFIG_DIR
from matgnn.design.codes import encode_structures
from matgnn.design.data import ImageSet, split_by_source
from matgnn.design.evaluate import reconstruct, reconstruct_codes, summarise
from matgnn.design.images import ImageSpec, basis_images, cell_image, standard_lattice
from matgnn.design.networks import CellAutoencoder
from matgnn.design.run import fit_autoencoder, fit_generator, read_metrics
from matgnn.design.training import (
    AutoencoderTask,
    atom_count,
    decayed_lr,
    image_entropy,
    load_autoencoder,
)
from matgnn.design.vo_dataset import vo_sample


@pytest.fixture(scope="module")
def sample():
    return vo_sample()


def test_split_keeps_both_assignments_of_a_binary_together_and_holds_out_the_known(sample):
    split = split_by_source(sample, val=0.2, test=0.2, seed=3, hold_out_known=True)
    parts = {"train": split.train, "val": split.val, "test": split.test}
    rows = sorted(r for part in parts.values() for r in part) + split.held_out
    assert sorted(rows) == list(range(len(sample)))
    sources = {name: {sample.sources[r] for r in part} for name, part in parts.items()}
    assert not (sources["train"] & sources["val"]) and not (sources["train"] & sources["test"])
    assert split.held_out == [r for r, known in enumerate(sample.known) if known]
    assert split_by_source(sample, 0.2, 0.2, seed=3, hold_out_known=True) == split
    assert split_by_source(sample, 0.2, 0.2, seed=4, hold_out_known=True) != split
    with_known = split_by_source(sample, 0.2, 0.2, seed=3)
    assert not with_known.held_out
    known_rows = set(split.held_out)
    placed = set(with_known.train) | set(with_known.val) | set(with_known.test)
    assert known_rows <= placed  # without hold-out the known structures are split like others
    for part in ("train", "val", "test"):  # and the other rows stay where they were
        assert set(getattr(with_known, part)) - known_rows == set(getattr(split, part))
    with pytest.raises(ValueError, match="sum below 1"):
        split_by_source(sample, val=0.5, test=0.5)


def test_image_sets_make_the_representations_images(sample):
    spec = ImageSpec()
    basis = ImageSet(sample, [0, 5], "basis", spec)
    assert len(basis) == 4  # one image per element channel
    expected = basis_images(sample.structures[5], spec)
    assert torch.equal(basis[3][0], torch.from_numpy(expected[1]))
    cell = ImageSet(sample, [5], "cell", spec)
    wanted = cell_image(standard_lattice(sample.structures[5].lattice), spec)
    assert cell[0].shape == (1, 32, 32, 32) and torch.equal(cell[0][0], torch.from_numpy(wanted))
    assert list(cell._cells) == [5]  # kept once made
    cell._cells[5] = cell._cells[5] * 0 + 0.5  # and served from there afterwards
    assert torch.equal(cell[0], torch.full((1, 32, 32, 32), 0.5))
    with pytest.raises(ValueError, match="kind must be one of"):
        ImageSet(sample, [0], "lattice")


def test_image_entropy_is_the_loss_of_a_perfect_decoder(sample):
    image = torch.from_numpy(cell_image(standard_lattice(sample.structures[3].lattice)))[None]
    image = torch.stack([image, image.flip(-1)]).double()
    perfect = torch.logit(image.clamp(1e-12, 1 - 1e-12))
    network = CellAutoencoder(width=2)
    assert network.loss(perfect, image).item() == pytest.approx(
        image_entropy(image).item(), rel=1e-6
    )
    worse = network.loss(perfect + 0.3, image).item()
    above_one = image.clone()
    above_one[0, 0, 0, 0, 0] = 1.2  # two Gaussians of a basis image can overlap above 1
    assert torch.isfinite(image_entropy(above_one))
    assert worse > image_entropy(image).item() > 0
    # the shape error: zero for the perfect decoder, the log-value error on covered voxels
    assert network.shape_error(perfect, image).item() == pytest.approx(0.0, abs=1e-9)
    covered = image > 0
    shifted = torch.nn.functional.logsigmoid(perfect[covered] + 0.3) - torch.log(image[covered])
    expected = shifted.pow(2).sum().item() / 2
    assert network.shape_error(perfect + 0.3, image).item() == pytest.approx(expected)
    weighted = CellAutoencoder(width=2, shape_weight=0.5)
    assert weighted.loss(perfect + 0.3, image).item() == pytest.approx(worse + 0.5 * expected)


def test_atom_count_finds_the_peaks_of_a_basis_image(sample):
    structure = sample.structures[0]
    images = basis_images(structure)
    counts = [atom_count(image, 0.3) for image in images]
    assert counts == [structure.composition["V"], structure.composition["O"]]


def _config(tmp_path: Path, *overrides: str):
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose(
            config_name="imatgen",
            overrides=[
                f"paths.cache_dir={tmp_path / 'cache'}",
                "paths.output_dir=unused",
                "network.width=4",
                "data.batch_size=4",
                "data.train_limit=12",
                "trainer.limit_val_batches=2",
                *overrides,
            ],
        )


def test_a_cell_autoencoder_run_learns_resumes_and_loads_as_data(tmp_path):
    cfg = _config(tmp_path, "stage=cell", "trainer.max_epochs=3", "lr=3e-3")
    run = fit_autoencoder(cfg, tmp_path / "run")
    result = json.loads((tmp_path / "run" / "result.json").read_text())
    assert result["epochs_run"] == 3 and result["peak_rss_mb"] > 0
    # the record names the checkpoint within the run folder (a moved folder stays readable)
    assert (tmp_path / "run" / result["best_checkpoint"]).samefile(run.best_checkpoint)
    assert not Path(result["best_checkpoint"]).is_absolute()
    val = read_metrics(tmp_path / "run")["val/loss"].dropna().to_numpy()
    assert len(val) == 3 and val[-1] < val[0]  # it learns
    split = json.loads((tmp_path / "run" / "split.json").read_text())
    assert len(split["train"]) == 12 and split["held_out"]  # the known V-O held out

    network = load_autoencoder(run.best_checkpoint, "cell")
    assert isinstance(network, CellAutoencoder) and not network.training
    assert network.provenance["train_rows"] == 12
    with pytest.raises(CheckpointError, match="not a 'basis' one"):
        load_autoencoder(run.best_checkpoint, "basis")

    # resumed with a learning-rate decay from epoch 2 (the checkpoint's run had none): the
    # first resumed epoch, 3, trains at the decayed rate, not at the restored optimiser's
    decay = ("lr=3e-3", "lr_decay.start=2", "lr_decay.epochs=2", "lr_decay.min=1e-4")
    for epochs in (4, 5):
        resumed = fit_autoencoder(
            _config(
                tmp_path,
                "stage=cell",
                f"trainer.max_epochs={epochs}",
                *decay,
                f"resume={tmp_path / 'run'}",
            ),
            tmp_path / "run",
        )
        assert resumed.metrics["epochs_run"] == epochs  # continued, not from scratch
        last = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)
        used = last["optimizer_states"][0]["param_groups"][0]["lr"]
        assert used == pytest.approx({4: (3e-3 + 1e-4) / 2, 5: 1e-4}[epochs])
    metrics = read_metrics(tmp_path / "run")
    epochs = metrics.dropna(subset=["val/loss"])["epoch"]
    assert list(epochs) == [0, 1, 2, 3, 4]  # the first start's log kept
    lr = metrics.dropna(subset=["lr"]).set_index("epoch")["lr"]
    assert lr.to_numpy() == pytest.approx([3e-3, 3e-3, 3e-3, (3e-3 + 1e-4) / 2, 1e-4])


def test_last_ckpt_is_the_last_epoch_even_when_validation_did_not_improve(tmp_path):
    """A run stopped after epochs that did not improve resumes from its last epoch, not from
    its best one (Lightning's save_last alone keeps last.ckpt at the last improvement)."""
    # lr 0 and no batch norm (whose running statistics would move): the weights never change
    cfg = _config(tmp_path, "stage=cell", "trainer.max_epochs=3", "lr=0.0", "network.norm=false")
    fit_autoencoder(cfg, tmp_path / "run")
    folder = tmp_path / "run" / "checkpoints"
    best = torch.load(folder / "best.ckpt", weights_only=True)
    last = torch.load(folder / "last.ckpt", weights_only=True)
    assert best["epoch"] == 0  # the same validation loss every epoch, never better
    assert last["epoch"] == 2 and last["global_step"] > best["global_step"]
    assert sorted(p.name for p in folder.iterdir()) == ["best.ckpt", "last.ckpt"]


def test_a_warm_start_takes_the_best_weights_of_a_run_of_the_same_split_and_network(tmp_path):
    """``init_from=<run>``: a new run starts from that run's best weights (with ``lr=0`` and no
    batch norm it keeps them exactly) and records which; another split, width or stage is
    refused in words."""
    fixed = ("stage=cell", "network.norm=false")
    fit_autoencoder(_config(tmp_path, *fixed, "trainer.max_epochs=2", "lr=3e-3"), tmp_path / "a")
    first = load_autoencoder(tmp_path / "a" / "checkpoints" / "best.ckpt", "cell")
    warm = fit_autoencoder(
        _config(
            tmp_path,
            *fixed,
            "trainer.max_epochs=1",
            "lr=0.0",
            "network.shape_weight=1.0",
            f"init_from={tmp_path / 'a'}",
        ),
        tmp_path / "b",
    )
    second = load_autoencoder(warm.best_checkpoint, "cell")
    for name, value in first.state_dict().items():
        assert torch.equal(value, second.state_dict()[name]), name
    record = second.provenance["init_from"]
    assert record["run"] == str(tmp_path / "a") and len(record["checkpoint_sha256"]) == 64
    cold = fit_autoencoder(
        _config(tmp_path, *fixed, "trainer.max_epochs=1", "lr=0.0"), tmp_path / "c"
    )
    weights = load_autoencoder(cold.best_checkpoint, "cell").state_dict()
    assert not all(torch.equal(v, weights[k]) for k, v in first.state_dict().items())

    # resumed, the run keeps its record (the checkpoints after the resume say it too) and
    # refuses an init_from that names another run
    resumed = fit_autoencoder(
        _config(tmp_path, *fixed, "trainer.max_epochs=2", "lr=0.0", "network.shape_weight=1.0",
                f"init_from={tmp_path / 'a'}", f"resume={tmp_path / 'b'}"),
        tmp_path / "b",
    )  # fmt: skip
    assert resumed.metrics["epochs_run"] == 2
    last = load_autoencoder(tmp_path / "b" / "checkpoints" / "last.ckpt", "cell")
    assert last.provenance["init_from"] == record
    with pytest.raises(ValueError, match="resumes a run started from"):
        fit_autoencoder(
            _config(tmp_path, *fixed, "trainer.max_epochs=3", f"init_from={tmp_path / 'c'}",
                    f"resume={tmp_path / 'b'}"),
            tmp_path / "b",
        )  # fmt: skip

    refused = {
        "another split": ("data.split_seed=1",),  # validation and test structures trained on
        "other images": ("image.sigma=0.3",),
        "does not fit": ("network.width=8",),
    }
    for number, (message, overrides) in enumerate(refused.items()):
        cfg = _config(tmp_path, *fixed, "trainer.max_epochs=1", f"init_from={tmp_path / 'a'}",
                      *overrides)  # fmt: skip
        with pytest.raises(ValueError, match=message):
            fit_autoencoder(cfg, tmp_path / f"refused_{number}")
    own = _config(tmp_path, *fixed, "trainer.max_epochs=1", f"init_from={tmp_path / 'a'}")
    with pytest.raises(ValueError, match="the run's own folder"):
        fit_autoencoder(own, tmp_path / "a")
    assert load_autoencoder(tmp_path / "a" / "checkpoints" / "best.ckpt", "cell")  # untouched
    basis = _config(tmp_path, "stage=basis", "trainer.max_epochs=1", f"init_from={tmp_path / 'a'}")
    with pytest.raises(CheckpointError, match="not a 'basis' one"):
        fit_autoencoder(basis, tmp_path / "refused_basis")
    generator = _config(tmp_path, "stage=generator", f"init_from={tmp_path / 'a'}")
    with pytest.raises(ValueError, match="not the generator"):
        fit_generator(generator, tmp_path / "refused_generator")


def test_the_learning_rate_decays_by_half_cosine_from_its_start_epoch():
    decay = {"start": 10, "epochs": 4, "min": 1e-5}
    rates = [decayed_lr(1e-3, decay, epoch) for epoch in range(8, 16)]
    expected_decay = [1e-5 + (1e-3 - 1e-5) * (1 + math.cos(math.pi * t / 4)) / 2 for t in range(4)]
    assert rates == pytest.approx([1e-3, 1e-3, *expected_decay, 1e-5, 1e-5])
    assert decayed_lr(1e-3, None, 50) == 1e-3  # no decay: constant
    task = AutoencoderTask(
        safe_config.object_node(CellAutoencoder, grid=8, width=2),
        "cell",
        lr=1e-3,
        lr_decay={"start": None, "epochs": 3, "min": 0.0},
    )
    assert task.hparams.lr_decay is None  # start null: constant
    for wrong, message in (
        ({"start": 2, "epochs": 0, "min": 1e-5}, "epochs >= 1"),
        ({"start": 2, "epochs": 3, "min": None}, r"needs \['min'\]"),
        ({"start": 2.5, "epochs": 3, "min": 1e-5}, "epoch counts"),
        ({"start": None, "epochs": 3, "min": 1e-5, "gamma": 0.1}, "unknown keys"),
        ({"start": 2, "epochs": 3, "min": 1e-2}, "min <= lr"),
        ({"start": 2, "epochs": 3, "min": 1e-5, "gamma": 0.1}, "unknown keys"),
    ):
        with pytest.raises(ValueError, match=message):
            AutoencoderTask(
                safe_config.object_node(CellAutoencoder, grid=8, width=2),
                "cell",
                lr=1e-3,
                lr_decay=wrong,
            )


def test_a_crafted_autoencoder_checkpoint_runs_nothing(tmp_path):
    task = AutoencoderTask(safe_config.object_node(CellAutoencoder, grid=8, width=2), "cell")
    state = {f"network.{k}": v for k, v in task.network.state_dict().items()}
    crafted = {
        "hyper_parameters": {
            "kind": "cell",
            "network": {"@class": "os.system", "command": "touch pwned"},
        },
        "state_dict": state,
    }
    path = tmp_path / "crafted.ckpt"
    torch.save(crafted, path)
    with pytest.raises(CheckpointError, match="not a registered matgnn class"):
        load_autoencoder(path, "cell")
    crafted["hyper_parameters"]["network"] = safe_config.object_node(
        CellAutoencoder, grid=8, width=2
    )
    crafted["state_dict"] = {"network.x": "not a tensor"}
    torch.save(crafted, path)
    with pytest.raises(CheckpointError, match="parameter names to tensors"):
        load_autoencoder(path, "cell")
    assert not Path("pwned").exists()


class _Zero(torch.nn.Module):
    def forward(self, image):
        return torch.zeros_like(image)


def test_reconstruction_through_exact_autoencoders_is_the_representations_and_failures_count(
    sample,
):
    rows = list(range(6))
    exact = reconstruct(sample, rows, torch.nn.Identity(), torch.nn.Identity())
    assert exact["decoded"].all() and exact["fully_reconstructed"].all()
    assert exact["matches"].all()  # StructureMatcher takes each for its original
    summary = summarise(exact)
    assert summary["fully_reconstructed_fraction"] == 1.0 and summary["position_rmse"] < 1e-3
    assert summary["rmse_a"] < 1e-3 and summary["rmse_gamma"] < 1e-2

    # no network: the exact images, the same rows
    alone = reconstruct(sample, rows, None, None)
    assert alone.equals(exact)
    # one network alone: its failures only (the basis images exact, the cell one emptied)
    cell_alone = reconstruct(sample, rows, _Zero(), None)
    assert not cell_alone["decoded"].any() and cell_alone["reason"].str.contains("cell").all()

    empty = reconstruct(sample, rows, torch.nn.Identity(), _Zero())
    assert not empty["decoded"].any() and empty["reason"].str.contains("no atom").all()
    summary = summarise(empty)
    assert summary["structures"] == 6 and summary["fully_reconstructed"] == 0
    assert summary["fully_reconstructed_fraction"] == 0.0 and math.isnan(summary["rmse_a"])
    assert summary["matches"] == 0 and not empty["matches"].any()


class _Lookup(torch.nn.Module):
    """An exact autoencoder: the code of an image is its index in a store (in the first entry,
    from 1), decoded back to the stored image (an unknown index: an empty image)."""

    def __init__(self, code: int) -> None:
        super().__init__()
        self.code, self.images = code, []

    def encode(self, images):
        first = len(self.images)
        self.images.extend(images[:, 0])
        codes = torch.zeros(len(images), self.code)
        codes[:, 0] = torch.arange(first + 1, first + len(images) + 1)
        return codes

    def decode(self, codes):
        keys = codes[:, 0].round().long() - 1
        blank = torch.zeros_like(self.images[0])
        found = [self.images[k] if 0 <= k < len(self.images) else blank for k in keys]
        return torch.stack(found)[:, None]


class _ShiftingGenerator(torch.nn.Module):
    """A generator whose latent is the flattened code, decoded with ``shift`` added to its
    first entry (the basis codes' store index of the first element)."""

    def __init__(self, shape, shift: float) -> None:
        super().__init__()
        self.shape, self.shift = shape, shift

    def encode(self, codes):
        return codes.flatten(1), torch.zeros(len(codes), codes[0].numel())

    def decode(self, z):
        out = z.reshape(len(z), *self.shape).clone()
        out[:, 0, 0] += self.shift
        return out


def test_codes_decode_as_the_images_do_and_what_a_generator_loses_shows(sample):
    rows = list(range(5))
    structures = [sample.structures[r] for r in rows]
    cell, basis = _Lookup(4), _Lookup(8)
    codes = encode_structures(structures, [sample.ids[r] for r in rows], cell, basis)
    direct = reconstruct_codes(sample, rows, codes, cell, basis)
    exact = reconstruct(sample, rows, None, None)
    assert direct.drop(columns="code_error").equals(exact) and direct["fully_reconstructed"].all()
    assert (direct["code_error"] == 0).all()

    # a generator that keeps the codes changes nothing
    kept = reconstruct_codes(
        sample, rows, codes, cell, basis, _ShiftingGenerator(codes.shape[1:], 0)
    )
    assert kept.equals(direct)
    # one that moves each first element's code to the next structure's: those crystals fail,
    # and the squared error it left is the code error
    moved = reconstruct_codes(
        sample, rows, codes, cell, basis, _ShiftingGenerator(codes.shape[1:], 2.0)
    )
    assert not moved["fully_reconstructed"].any()
    assert moved["code_error"].tolist() == [4.0] * len(rows)
    with pytest.raises(ValueError, match="4 codes for 5 structures"):
        reconstruct_codes(sample, rows, codes[:4], cell, basis)
