"""The package as users get it: a wheel that carries its configs and trains from an empty
directory, console scripts, the package list of pyproject.toml, a light ``import matgnn``."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
NACL_CIF = (
    "data_NaCl\n_cell_length_a 5.64\n_cell_length_b 5.64\n_cell_length_c 5.64\n"
    "_cell_angle_alpha 90\n_cell_angle_beta 90\n_cell_angle_gamma 90\n"
    "_symmetry_space_group_name_H-M 'F m -3 m'\n_symmetry_Int_Tables_number 225\n"
    "loop_\n_atom_site_label\n_atom_site_type_symbol\n_atom_site_fract_x\n"
    "_atom_site_fract_y\n_atom_site_fract_z\nNa1 Na 0 0 0\nCl1 Cl 0.5 0.5 0.5\n"
)


def test_every_package_folder_is_found_by_pyproject():
    """No hand-kept package list: ``packages.find`` takes every folder with an __init__.py."""
    from setuptools import find_packages

    settings = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert set(settings["packages"]) == {"find"}  # not a list kept by hand
    found = set(find_packages(str(REPO), **settings["packages"]["find"]))
    folders = {
        ".".join(p.parent.relative_to(REPO).parts) for p in (REPO / "matgnn").rglob("__init__.py")
    }
    assert folders == found and "matgnn.configs" in found


def test_catalog_tables_are_generated_on_the_docs_pages():
    """The model, task and pretrained tables of the docs are those of ``benchmarks/catalog.py``:
    a new model or task appears by regenerating, never by hand-editing a list."""
    from benchmarks.catalog import rendered

    for page in ("concepts/models.md", "concepts/tasks.md", "how-to/pretrained-and-fine-tuning.md"):
        path = REPO / "docs" / page
        assert rendered(path) == path.read_text(), (
            f"{page} is stale: run python benchmarks/catalog.py --update docs/{page}"
        )


def test_import_and_load_model_need_neither_lightning_nor_pyplot(tmp_path):
    """``import matgnn`` and ``load_model`` leave Lightning unimported and matplotlib's backend
    as the user set it (checked in a fresh interpreter, on a checkpoint made by training)."""
    from matgnn.train import run
    from tests.training.test_train import train_config

    run(train_config(tmp_path, "cgcnn"))
    code = f"""
import sys, matplotlib
matplotlib.use("svg")
import matgnn
model = matgnn.load_model({str(tmp_path / "checkpoints" / "last.ckpt")!r})
assert model.outputs[0].name == "formation_energy_per_atom"
heavy = ("lightning", "lightning.pytorch", "matplotlib.pyplot")
print(sorted(m for m in heavy if m in sys.modules))
print(matplotlib.get_backend())
"""
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split("\n")[:2] == ["[]", "svg"]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """matgnn's wheel, built once from this checkout."""
    dist = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
         "-w", str(dist), str(REPO)],
        check=True, capture_output=True, timeout=600,
    )  # fmt: skip
    return next(dist.glob("matgnn-*.whl"))


def _installed(wheel: Path, tmp_path: Path):
    """The wheel installed (not editable, without dependencies: the venv's, which
    ``scripts/install.sh`` installs with the same pins) into ``tmp_path/site``, and a caller of
    commands in an empty directory that imports matgnn from there alone."""
    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps",
         "--target", str(site), str(wheel)],
        check=True, capture_output=True, timeout=600,
    )  # fmt: skip
    empty = tmp_path / "empty"
    empty.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site)}

    def call(*command: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            command, capture_output=True, text=True, cwd=empty, env=env, timeout=600
        )

    where = call(sys.executable, "-c", "import matgnn.config_dir as c; print(c.CONFIG_DIR)")
    assert where.stdout.strip().startswith(str(site)), where.stdout + where.stderr
    return site, empty, call


def _predicts_nacl(site: Path, empty: Path, call, checkpoint: Path) -> None:
    """``matgnn-predict`` of the installed wheel gives rock salt's formation energy as the
    checkpoint's model predicts it (``load_model(...).predict``)."""
    cif = empty / "NaCl.cif"
    cif.write_text(NACL_CIF)
    predict = call(
        str(site / "bin" / "matgnn-predict"), f"ckpt={checkpoint}", f"input={cif}", "output=p.csv"
    )
    assert predict.returncode == 0, predict.stderr[-3000:]
    lines = (empty / "p.csv").read_text().splitlines()
    # unseen_elements: those of the crystal the checkpoint's training split lacked
    assert lines[0] == "id,predicted_formation_energy_per_atom,unseen_elements"
    name, energy, unseen = lines[1].split(",")
    assert name == "NaCl.cif" and set(unseen.split()) <= {"Na", "Cl"}
    # the value is the checkpoint's own prediction, loaded in a fresh process of the wheel
    code = f"""
import matgnn
from pymatgen.core import Structure
model = matgnn.load_model({str(checkpoint)!r})
print(float(model.predict([Structure.from_file({str(cif)!r})]).draws[
    "formation_energy_per_atom"][0].ravel()[0]))
"""
    direct = call(sys.executable, "-c", code)
    assert direct.returncode == 0, direct.stderr[-3000:]
    assert float(energy) == pytest.approx(float(direct.stdout.strip().splitlines()[-1]), rel=1e-5)


@pytest.mark.slow
def test_wheel_trains_and_predicts_from_an_empty_directory(wheel, tmp_path):
    """Build the wheel, install it (not editable) into a folder of its own, and run the console
    scripts from an empty directory: no checkout, no matgnn/configs/ on disk."""
    site, empty, call = _installed(wheel, tmp_path)
    assert (site / "matgnn" / "configs" / "train.yaml").is_file()

    # the shipped pretrained models are listed and load from the wheel (SHA-256 checked)
    pretrained = call(
        sys.executable,
        "-c",
        "from matgnn.checkpoints.pretrained import list_pretrained, load_pretrained, "
        "pretrained_file;"
        "names = [r['name'] for r in list_pretrained()]; [load_pretrained(n) for n in names];"
        "print(names, pretrained_file(names[0]))",
    )
    assert pretrained.returncode == 0, pretrained.stderr[-2000:]
    assert "cgcnn_mp2018_eform" in pretrained.stdout and str(site) in pretrained.stdout
    train = call(
        str(site / "bin" / "matgnn-train"),
        "trainer.max_epochs=1",
        "run_name=wheel",
        "task.data.source.limit=60",
        "+trainer.enable_progress_bar=false",
    )
    assert train.returncode == 0, train.stderr[-3000:]
    run_dir = empty / "outputs" / "mp_sample_eform" / "cgcnn" / "wheel"
    checkpoint = run_dir / "checkpoints" / "last.ckpt"
    assert checkpoint.is_file()
    _predicts_nacl(site, empty, call, checkpoint)


@pytest.mark.slow
def test_wheel_declares_the_foundation_extra_and_fine_tunes_chgnet_from_it(wheel, tmp_path):
    """``matgnn[foundation]`` names the exact releases whose weights the backbones are stored
    with; from the installed wheel, ``matgnn-train model=chgnet`` fine-tunes CHGNet, and the
    checkpoint loads (``load_model``) and predicts (``matgnn-predict``) in a fresh process with
    the fine-tuned weights, not the package's."""
    import zipfile

    with zipfile.ZipFile(wheel) as archive:
        metadata = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        requires = archive.read(metadata).decode()
    assert "Provides-Extra: foundation" in requires
    for pin in ("chgnet==0.4.2", "sevenn==0.13.0"):
        assert f'Requires-Dist: {pin}; extra == "foundation"' in requires, requires
    site, empty, call = _installed(wheel, tmp_path)
    train = call(
        str(site / "bin" / "matgnn-train"),
        "model=chgnet",
        "trainer.max_epochs=1",
        "run_name=wheel",
        "task.data.source.limit=24",
        "task.data.batch_size=8",
        "+trainer.enable_progress_bar=false",
    )
    assert train.returncode == 0, train.stderr[-3000:]
    checkpoint = empty / "outputs" / "mp_sample_eform" / "chgnet" / "wheel" / "checkpoints"
    checkpoint = checkpoint / "last.ckpt"
    assert checkpoint.is_file()
    code = f"""
import torch, matgnn
from matgnn.models import CHGNetBackbone
model = matgnn.load_model({str(checkpoint)!r})
assert matgnn.__file__.startswith({str(site)!r}), matgnn.__file__
tuned = dict(model.backbone.named_parameters())
pretrained = dict(CHGNetBackbone().named_parameters())
print(max((tuned[k] - pretrained[k]).abs().max().item() for k in pretrained))
"""
    loaded = call(sys.executable, "-c", code)
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    assert float(loaded.stdout.strip().splitlines()[-1]) > 0  # fine-tuned, not the wheel's
    _predicts_nacl(site, empty, call, checkpoint)
