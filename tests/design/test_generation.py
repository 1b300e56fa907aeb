"""The materials generator end to end on the shipped V-O sample (matgnn.design.labels, .codes,
.run stage=generator, .generate and the ``matgnn.generate`` app): model labels named as such and
checked against DFT, codes of the right shape, a generator trained on labelled and unlabelled
crystals alike, checkpoints read as data, and every sampling mode writing its table and CIFs."""

from __future__ import annotations

import json
import logging
import math
import shutil
from pathlib import Path

import lightning as L
import numpy as np
import pandas as pd
import pytest
import torch
from hydra import compose, initialize_config_dir
from pymatgen.core import Lattice, Structure

from matgnn.checkpoints.files import CheckpointError
from matgnn.config_dir import CONFIG_DIR
from matgnn.design.codes import decode_codes, encode_structures
from matgnn.design.decoding import DECODING
from matgnn.design.generate import (
    OVERLAP,
    generate,
    latents,
    mark_overlapping,
    shortest_distance,
    slerp,
    vanadium_oxidation_state,
)
from matgnn.design.labels import (
    DEFAULT_LABELLER,
    label_column,
    label_with_model,
    labeller_check,
    read_labels,
    save_labels,
)
from matgnn.design.networks import MaterialsGenerator
from matgnn.design.run import CODES, fit, property_targets, read_metrics
from matgnn.design.training import (
    load_autoencoder,
    load_design_models,
    load_generator,
    slim_generator_checkpoint,
)
from matgnn.design.vo_dataset import vo_sample
from matgnn.generate import sample
from matgnn.outputs import ScalarOutput

COLUMN = label_column("formation_energy_per_atom", DEFAULT_LABELLER)


def _compose(name: str, *overrides: str):
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose(config_name=name, overrides=list(overrides))


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    """Two tiny autoencoders, model labels and a generator, on the shipped sample."""
    root = tmp_path_factory.mktemp("imatgen")
    common = ("paths.output_dir=unused", f"paths.cache_dir={root}", "data.batch_size=8",
              "trainer.max_epochs=1", "trainer.limit_val_batches=1")  # fmt: skip
    for stage in ("cell", "basis"):
        fit(_compose("imatgen", f"stage={stage}", "network.width=2", "data.train_limit=8",
                     *common), root / stage)  # fmt: skip
    labels = label_with_model(vo_sample())
    save_labels(labels, root / "labels.csv.gz", "test: the shipped sample")
    generator = fit(
        _compose("imatgen", "stage=generator", f"generator.cell_run={root / 'cell'}",
                 f"generator.basis_run={root / 'basis'}", "generator.latent=8",
                 "generator.hidden=8", f"generator.property.labels={root / 'labels.csv.gz'}",
                 f"generator.property.column={COLUMN}", "generator.property.threshold=-2.3",
                 "trainer.max_epochs=2", *common[:3]),
        root / "generator",
    )  # fmt: skip
    return root, labels, generator


def test_labels_name_their_model_and_are_checked_against_dft(pipeline, tmp_path):
    root, labels, _ = pipeline
    assert COLUMN in labels and not any(c.startswith("dft_") and "predicted" in c for c in labels)
    assert labels.loc[~labels["known_vo"], "dft_formation_energy_per_atom"].isna().all()
    check = labeller_check(labels, COLUMN)
    assert check["known"] == check["labelled"] == 14
    assert 0 < check["mae"] < 0.2 and check["max_error"] >= check["mae"]  # measured 0.069
    frame, header = read_labels(root / "labels.csv.gz")
    assert header["labeller"] == DEFAULT_LABELLER and "shipped sample" in header["provenance"]
    assert len(frame) == len(labels) and frame["known_vo"].sum() == 14


def test_codes_have_one_row_per_element_and_the_cell_code_padded(pipeline):
    root, _, _ = pipeline
    cell = load_autoencoder(root / "cell" / "checkpoints" / "best.ckpt", "cell")
    basis = load_autoencoder(root / "basis" / "checkpoints" / "best.ckpt", "basis")
    data = vo_sample()
    codes = encode_structures(data.structures[:3], data.ids[:3], cell, basis)
    assert codes.shape == (3, 3, 200) and (codes[:, -1, 20:] == 0).all()
    alone = encode_structures(data.structures[1:2], data.ids[1:2], cell, basis)
    torch.testing.assert_close(alone[0], codes[1])  # eval mode: no batch statistics
    decoded = decode_codes(codes, cell, basis, names=data.ids[:3])
    assert len(decoded) == 3 and all(isinstance(d, Structure | str) for d in decoded)


def test_the_generator_trains_on_its_autoencoders_split_and_loads_as_data(pipeline):
    root, labels, run = pipeline
    assert run.metrics["epochs_run"] == 2
    stored = torch.load(root / "generator" / CODES, weights_only=True)
    assert stored["codes"].shape == (len(labels), 3, 200)
    assert (root / "generator" / "split.json").read_text() == (
        root / "basis" / "split.json"
    ).read_text()
    generator = load_generator(run.best_checkpoint)
    assert isinstance(generator, MaterialsGenerator) and not generator.training
    assert generator.output.name == "stable" and generator.provenance["threshold"] == -2.3
    with pytest.raises(CheckpointError, match="not a 'cell' one"):
        load_autoencoder(run.best_checkpoint, "cell")
    metrics = read_metrics(root / "generator")
    assert {"val/property", "val/kl", "val/reconstruction"} <= set(metrics.columns)


@pytest.mark.parametrize(
    ("mode", "extra", "rows"),
    [("random", [], 5), ("fitted", [], 5),
     ("gaussian", ["around=['mp-1001790:A=O,B=V','mp-10047:A=O,B=V']"], 10),
     ("slerp", ["between=['mp-1001790:A=O,B=V','mp-10047:A=O,B=V']"], 5)],
)  # fmt: skip
def test_every_sampling_mode_writes_its_table_and_cifs(pipeline, tmp_path, mode, extra, rows):
    root, _, _ = pipeline
    cfg = _compose("generate", f"generator_run={root / 'generator'}", f"mode={mode}", "count=5",
                   "paths.output_dir=unused", *extra)  # fmt: skip
    table = pd.read_csv(sample(cfg, tmp_path))
    assert len(table) == rows and (table["method"] == mode).all()
    assert "probability_stable__predicted_by__generator" in table
    made = table[table["decoded"]]
    assert all((tmp_path / cif).is_file() for cif in made["cif"])
    assert table.loc[~table["decoded"], "cif"].isna().all()  # no file for a failure
    assert (table.loc[~table["decoded"], "reason"].str.len() > 0).all()
    if mode == "gaussian":
        assert list(table["parent"]) == ["mp-1001790:A=O,B=V"] * 5 + ["mp-10047:A=O,B=V"] * 5


def test_a_scalar_property_trains_on_labelled_crystals_only_and_resumes(
    pipeline, tmp_path, monkeypatch
):
    root, labels, _ = pipeline
    partial = labels.copy()
    partial.loc[partial.index % 2 == 0, COLUMN] = float("nan")  # half without a label
    save_labels(partial, tmp_path / "partial.csv.gz", "test: half the sample unlabelled")
    overrides = (f"generator.cell_run={root / 'cell'}", f"generator.basis_run={root / 'basis'}",
                 "generator.latent=8", "generator.hidden=8", "paths.output_dir=unused",
                 f"paths.cache_dir={root}", "data.batch_size=8", "trainer.limit_val_batches=1",
                 f"generator.property.labels={tmp_path / 'partial.csv.gz'}",
                 f"generator.property.column={COLUMN}")  # fmt: skip
    cfg = _compose("imatgen", "stage=generator", "trainer.max_epochs=1", *overrides)
    targets = property_targets(cfg, vo_sample())
    assert torch.isnan(targets[::2]).all() and torch.isfinite(targets[1::2]).all()
    run = fit(cfg, tmp_path / "scalar")
    logged = read_metrics(tmp_path / "scalar")
    assert np.isfinite(logged["val/property"].dropna()).all() and len(
        logged["val/property"].dropna()
    )
    generator = load_generator(run.best_checkpoint)
    assert generator.output.name == COLUMN and isinstance(generator.output, ScalarOutput)
    scale = generator.head.normalizer.std.clone()
    resumed = fit(
        _compose("imatgen", "stage=generator", "trainer.max_epochs=2",
                 f"resume={tmp_path / 'scalar'}", *overrides),
        tmp_path / "scalar",
    )  # fmt: skip
    assert resumed.metrics["epochs_run"] == 2 and resumed.metrics["starts"] == 2
    assert resumed.metrics["wall_time_s"] > resumed.metrics["wall_time_this_start_s"]
    assert not (tmp_path / "scalar" / "started.json").exists()
    # two starts killed in a row before their records (their markers left): each is counted,
    # and the wall time is unknown
    timed = (
        "trainer.max_epochs=3",
        "trainer.max_time=00:01:00:00",
        f"resume={tmp_path / 'scalar'}",
    )

    def killed_fit(*args, **kwargs):
        raise KeyboardInterrupt("killed")

    with monkeypatch.context() as patch:
        patch.setattr(L.Trainer, "fit", killed_fit)
        for _ in range(2):
            with pytest.raises(KeyboardInterrupt):
                fit(_compose("imatgen", "stage=generator", *timed, *overrides), tmp_path / "scalar")
    killed = fit(_compose("imatgen", "stage=generator", *timed, *overrides), tmp_path / "scalar")
    assert killed.metrics["starts"] == 5 and killed.metrics["unfinished_starts"] == 2
    assert killed.metrics["wall_time_s"] is None and killed.metrics["train_time_s"] > 0
    assert not (tmp_path / "scalar" / "started.json").exists()
    assert torch.equal(load_generator(resumed.best_checkpoint).head.normalizer.std, scale)
    none = labels.copy()
    none[COLUMN] = float("nan")
    save_labels(none, tmp_path / "none.csv.gz", "test: no labels")
    with pytest.raises(ValueError, match="no labelled training crystal"):
        fit(_compose("imatgen", "stage=generator", *overrides[:-2],
                     f"generator.property.labels={tmp_path / 'none.csv.gz'}",
                     f"generator.property.column={COLUMN}"), tmp_path / "none")  # fmt: skip


def test_autoencoders_other_than_the_generators_are_refused(pipeline, tmp_path):
    root, _, _ = pipeline
    changed = tmp_path / "cell"
    shutil.copytree(root / "cell", changed)
    checkpoint = torch.load(changed / "checkpoints" / "best.ckpt", weights_only=True)
    name = next(k for k in checkpoint["state_dict"] if k.endswith("output_bias"))
    checkpoint["state_dict"][name] += 1.0
    torch.save(checkpoint, changed / "checkpoints" / "best.ckpt")
    assert load_design_models(root / "generator").spec.basis_grid == 64
    with pytest.raises(CheckpointError, match="not the cell autoencoder whose codes trained"):
        load_design_models(root / "generator", cell_run=changed)


def test_runs_moved_together_still_load_and_a_missing_one_is_named(pipeline, tmp_path):
    root, _, _ = pipeline
    for name in ("cell", "basis", "generator"):
        shutil.copytree(root / name, tmp_path / "moved" / name)
    moved = tmp_path / "moved"
    generator = load_generator(moved / "generator" / "checkpoints" / "best.ckpt")
    assert Path(generator.provenance["cell_run"]) == root / "cell"  # where it was trained
    hidden = root.parent / (root.name + "-hidden")
    root.rename(hidden)  # the recorded folders are gone: the ones beside the generator load
    try:
        assert load_design_models(moved / "generator").spec.basis_grid == 64
        shutil.rmtree(moved / "basis")
        with pytest.raises(FileNotFoundError, match="basis autoencoder run is neither at"):
            load_design_models(moved / "generator")
    finally:
        hidden.rename(root)


def test_the_basis_runs_chosen_decoding_decodes_unless_the_app_sets_one(
    pipeline, tmp_path, caplog, monkeypatch
):
    """``load_design_models`` decodes at the threshold and merge saddle in the basis run's
    ``decoding.json`` and takes its overlap cut (the defaults without it; refused when chosen
    through another basis or cell checkpoint); ``python -m matgnn.generate peak_threshold=...
    merge_saddle=...`` override them (``none``: no merging), decode with them and say which
    they used; values out of range are refused."""
    root, _, _ = pipeline
    for name in ("cell", "basis", "generator"):
        shutil.copytree(root / name, tmp_path / "runs" / name)
    runs = tmp_path / "runs"
    unchosen = load_design_models(runs / "generator")
    assert unchosen.spec.peak_threshold == 0.3 and unchosen.overlap == OVERLAP
    assert unchosen.overlap_cut is None
    provenance = load_generator(runs / "generator" / "checkpoints" / "best.ckpt").provenance
    record = {"peak_threshold": 0.02, "basis_sha256": provenance["basis_sha256"],
              "cell_sha256": provenance["cell_sha256"], "overlap_cut": 1.2}  # fmt: skip
    (runs / "basis" / DECODING).write_text(json.dumps(record))
    # the copies' recorded runs are the originals: give the copied basis run
    models = load_design_models(runs / "generator", basis_run=runs / "basis")
    assert models.spec.peak_threshold == 0.02 and models.spec.merge_saddle is None
    assert models.overlap == 1.2 and models.overlap_cut == 1.2
    chosen = ("generate", f"generator_run={runs / 'generator'}", f"basis_run={runs / 'basis'}",
              "mode=random", "count=2", "paths.output_dir=unused")  # fmt: skip
    used = []  # the image geometry each call decodes with

    def generate_with(*args, **kwargs):
        used.append((args[4].peak_threshold, args[4].merge_saddle))
        return generate(*args, **kwargs)

    monkeypatch.setattr("matgnn.generate.generate", generate_with)
    with caplog.at_level(logging.INFO, logger="matgnn.generate"):
        sample(_compose(*chosen), tmp_path / "chosen")
        sample(_compose(*chosen, "peak_threshold=0.5"), tmp_path / "set")
        sample(_compose(*chosen, "merge_saddle=0.6"), tmp_path / "merged")
        (runs / "basis" / DECODING).write_text(json.dumps({**record, "merge_saddle": 0.7}))
        sample(_compose(*chosen), tmp_path / "stored")
        sample(_compose(*chosen, "merge_saddle=none"), tmp_path / "unmerged")
    assert used == [(0.02, None), (0.5, None), (0.02, 0.6), (0.02, 0.7), (0.02, None)]
    said = [r.getMessage() for r in caplog.records if "images decoded at" in r.getMessage()]
    prefix = "basis images decoded at a peak threshold of"
    assert said[:3] == [f"{prefix} 0.02, merge saddle None", f"{prefix} 0.5, merge saddle None",
                        f"{prefix} 0.02, merge saddle 0.6"]  # fmt: skip
    # the count of crystals with atoms closer than the stored overlap cut (1.2 Å), said
    table = pd.read_csv(tmp_path / "chosen" / "generated.csv")
    counted = [r.getMessage() for r in caplog.records if "latents decoded" in r.getMessage()]
    # a decoding set on the command line is not the one the cut was calibrated for: said so
    assert "(the overlap cut, calibrated for peak threshold 0.02, merge saddle None, not this " \
        "decoding)" in counted[1]  # fmt: skip
    said_cut = (
        f"{table['overlapping'].sum()} with atoms closer than 1.2 Å (the overlap cut, calibrated)"
    )
    assert said_cut in counted[0]
    (runs / "basis" / DECODING).unlink()  # no calibrated cut: the default, said so
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="matgnn.generate"):
        sample(_compose(*chosen), tmp_path / "default")
    counted = [r.getMessage() for r in caplog.records if "latents decoded" in r.getMessage()]
    assert f"than {OVERLAP:g} Å (the overlap cut, not calibrated, the default)" in counted[0]
    with pytest.raises(ValueError, match=r"peak_threshold 1.5 is not in \(0, 1\)"):
        sample(_compose(*chosen, "peak_threshold=1.5"), tmp_path / "bad")
    with pytest.raises(ValueError, match=r"merge_saddle 2 is not in \(0, 1\]"):
        sample(_compose(*chosen, "merge_saddle=2"), tmp_path / "bad")
    # a decoding chosen through another basis or cell checkpoint is refused, not applied
    for kind in ("basis", "cell"):
        other = {**record, f"{kind}_sha256": "0" * 64}
        (runs / "basis" / DECODING).write_text(json.dumps(other))
        with pytest.raises(ValueError, match=f"through another {kind} checkpoint"):
            load_design_models(runs / "generator", basis_run=runs / "basis")


#: the published runs of benchmarks/design/runs: the two autoencoders, their decoding chosen on
#: validation (peak threshold 0.02, merge saddle 0.6, overlap cut 1.3 Å) and the generator
PUBLISHED = Path(__file__).resolve().parents[2] / "benchmarks" / "design" / "runs"


def test_the_published_generator_decodes_vo_crystals_through_the_app(tmp_path, caplog):
    """The app on the trained models of the README tables (not the tiny pipeline's, which
    decode nothing): random latents come back as V-O crystals whose CIFs hold what the table
    says, decoded as chosen for the basis autoencoder, overlaps marked at its calibrated cut."""
    cfg = _compose("generate", f"generator_run={PUBLISHED / 'generator'}", "mode=random",
                   "count=24", "paths.output_dir=unused")  # fmt: skip
    with caplog.at_level(logging.INFO, logger="matgnn.generate"):
        table = pd.read_csv(sample(cfg, tmp_path))
    said = " ".join(r.getMessage() for r in caplog.records)
    assert "peak threshold of 0.02, merge saddle 0.6" in said
    assert "than 1.3 Å (the overlap cut, calibrated)" in said
    made = table[table["decoded"]]
    assert len(made) >= 6, table["reason"].value_counts()
    # these seeded latents give both: crystals with atoms closer than 1.3 Å and without
    assert made["overlapping"].any() and not made["overlapping"].all()
    assert (table.loc[~table["decoded"], "reason"].str.len() > 0).all()
    for row in made.itertuples():
        structure = Structure.from_file(tmp_path / row.cif)
        assert structure.composition.reduced_formula == row.formula
        assert {e.symbol for e in structure.composition.elements} <= {"V", "O"}
        assert len(structure) == row.sites
        assert shortest_distance(structure) == pytest.approx(row.min_distance, abs=1e-3)
        assert row.overlapping == (row.min_distance < 1.3)
    # the generator's property: the CGCNN formation-energy label it learned, named as its own
    predicted = made[f"{COLUMN}__predicted_by__generator"]
    assert predicted.between(-5.0, 2.0).all()  # eV/atom


def test_a_slimmed_generator_keeps_its_weights_and_provenance(pipeline, tmp_path):
    root, _, _ = pipeline
    best = root / "generator" / "checkpoints" / "best.ckpt"
    slim = slim_generator_checkpoint(best, tmp_path / "slim.ckpt")
    stored = torch.load(slim, weights_only=True)
    assert "optimizer_states" not in stored and "loops" not in stored
    assert slim.stat().st_size < best.stat().st_size
    full, kept = load_generator(best), load_generator(slim)
    assert kept.provenance == full.provenance
    # the epoch of the weights, read with them, slimmed or not
    assert kept.checkpoint_epoch == full.checkpoint_epoch == stored["epoch"]
    assert isinstance(stored["epoch"], int)
    pairs = zip(full.state_dict().values(), kept.state_dict().values(), strict=True)
    assert all(torch.equal(a, b) for a, b in pairs)
    with pytest.raises(CheckpointError, match="refused"):  # an autoencoder is no generator
        slim_generator_checkpoint(root / "cell" / "checkpoints" / "best.ckpt", tmp_path / "x")


def test_crystals_with_atoms_closer_than_the_cut_are_marked_overlapping():
    frame = pd.DataFrame({"id": ["a", "b", "c", "d"], "decoded": [True, True, True, False],
                          "min_distance": [1.19, 1.2, 2.0, math.nan], "cif": ""})  # fmt: skip
    marked = mark_overlapping(frame, 1.2)
    assert list(marked.columns) == ["id", "decoded", "min_distance", "overlapping", "cif"]
    assert marked["overlapping"].tolist() == [True, False, False, False]
    again = mark_overlapping(marked, 2.5)  # marked again: replaced, not a second column
    assert list(again.columns) == list(marked.columns)
    assert again["overlapping"].tolist() == [True, True, True, False]


def test_weights_that_do_not_fit_the_named_network_are_a_checkpoint_error(pipeline, tmp_path):
    root, _, _ = pipeline
    checkpoint = torch.load(root / "cell" / "checkpoints" / "best.ckpt", weights_only=True)
    name = next(k for k in checkpoint["state_dict"] if k.endswith("output_bias"))
    checkpoint["state_dict"][name] = torch.zeros(3)
    torch.save(checkpoint, tmp_path / "bad.ckpt")
    with pytest.raises(CheckpointError, match=r"bad\.ckpt: its weights do not fit the network"):
        load_autoencoder(tmp_path / "bad.ckpt", "cell")


def test_an_unknown_structure_id_is_refused_by_name(pipeline, tmp_path):
    root, _, _ = pipeline
    cfg = _compose("generate", f"generator_run={root / 'generator'}", "mode=gaussian",
                   "around=['mp-0:nothing']", "paths.output_dir=unused")  # fmt: skip
    with pytest.raises(ValueError, match="no structure 'mp-0:nothing'"):
        sample(cfg, tmp_path)


def test_slerp_runs_on_the_great_circle_between_its_ends():
    z0, z1 = torch.tensor([1.0, 0.0, 0.0]), torch.tensor([0.0, 2.0, 0.0])
    path = slerp(z0, z1, torch.linspace(0, 1, 5))
    torch.testing.assert_close(path[0], z0)
    torch.testing.assert_close(path[-1], z1)
    unit = slerp(z0, z1 / 2, torch.linspace(0, 1, 5))  # equal norms: on the unit circle
    torch.testing.assert_close(unit.norm(dim=1), torch.ones(5))
    angles = torch.arccos(unit @ z0)
    torch.testing.assert_close(angles, torch.linspace(0, math.pi / 2, 5))  # evenly spaced
    torch.testing.assert_close(slerp(z0, 3 * z0, torch.tensor([0.5]))[0], 2 * z0)  # parallel


def test_latents_check_their_inputs():
    generator = MaterialsGenerator(latent=4, hidden=8)
    assert latents(generator, "random", 3, seed=1).shape == (3, 4)
    torch.testing.assert_close(
        latents(generator, "random", 3, seed=1), latents(generator, "random", 3, seed=1)
    )
    with pytest.raises(ValueError, match="needs the codes"):
        latents(generator, "gaussian", 3)
    with pytest.raises(ValueError, match="between two structures, got 3"):
        latents(generator, "slerp", 3, codes=torch.zeros(3, 3, 200))
    with pytest.raises(ValueError, match="sampling mode must be one of"):
        latents(generator, "grid", 3)


def test_fitted_latents_follow_the_gaussian_of_the_structures_latent_means():
    torch.manual_seed(0)
    generator = MaterialsGenerator(latent=4, hidden=8).eval()
    codes = torch.rand(300, 3, 200) * 2 - 1
    with torch.no_grad():
        mu, _ = generator.encode(codes)
    drawn = latents(generator, "fitted", 40000, codes=codes, seed=3)
    assert drawn.shape == (40000, 4)
    scale = mu.std(0).max()
    torch.testing.assert_close(drawn.mean(0), mu.mean(0), atol=0.03 * scale, rtol=0)
    torch.testing.assert_close(torch.cov(drawn.T), torch.cov(mu.T), atol=0.05 * scale**2, rtol=0)
    torch.testing.assert_close(
        latents(generator, "fitted", 7, codes=codes, seed=3),
        latents(generator, "fitted", 7, codes=codes, seed=3),
    )  # seeded
    with pytest.raises(ValueError, match="at least two structures, got 1"):
        latents(generator, "fitted", 3, codes=codes[:1])
    with pytest.raises(ValueError, match="needs the codes"):
        latents(generator, "fitted", 3)


def test_vanadium_oxidation_state_with_oxygen_at_minus_two():
    v2o5 = Structure(Lattice.cubic(5), ["V"] * 2 + ["O"] * 5, [[k / 7, 0, 0] for k in range(7)])
    assert vanadium_oxidation_state(v2o5) == 5.0
    oxygen = Structure(Lattice.cubic(5), ["O"], [[0, 0, 0]])
    assert math.isnan(vanadium_oxidation_state(oxygen))
