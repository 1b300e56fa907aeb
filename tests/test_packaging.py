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


@pytest.mark.slow
def test_wheel_trains_and_predicts_from_an_empty_directory(tmp_path):
    """Build the wheel, install it (not editable) into a folder of its own, and run the console
    scripts from an empty directory: no checkout, no matgnn/configs/ on disk."""
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
         "-w", str(tmp_path / "dist"), str(REPO)],
        check=True, capture_output=True, timeout=600,
    )  # fmt: skip
    wheel = next((tmp_path / "dist").glob("matgnn-*.whl"))
    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps",
         "--target", str(site), str(wheel)],
        check=True, capture_output=True, timeout=600,
    )  # fmt: skip
    assert (site / "matgnn" / "configs" / "train.yaml").is_file()
    empty = tmp_path / "empty"
    empty.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site)}

    def call(*command: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            command, capture_output=True, text=True, cwd=empty, env=env, timeout=600
        )

    where = call(sys.executable, "-c", "import matgnn.config_dir as c; print(c.CONFIG_DIR)")
    assert where.stdout.strip().startswith(str(site)), where.stdout + where.stderr
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
    cif = empty / "NaCl.cif"
    cif.write_text(
        "data_NaCl\n_cell_length_a 5.64\n_cell_length_b 5.64\n_cell_length_c 5.64\n"
        "_cell_angle_alpha 90\n_cell_angle_beta 90\n_cell_angle_gamma 90\n"
        "_symmetry_space_group_name_H-M 'F m -3 m'\n_symmetry_Int_Tables_number 225\n"
        "loop_\n_atom_site_label\n_atom_site_type_symbol\n_atom_site_fract_x\n"
        "_atom_site_fract_y\n_atom_site_fract_z\nNa1 Na 0 0 0\nCl1 Cl 0.5 0.5 0.5\n"
    )
    predict = call(
        str(site / "bin" / "matgnn-predict"), f"ckpt={checkpoint}", f"input={cif}", "output=p.csv"
    )
    assert predict.returncode == 0, predict.stderr[-3000:]
    lines = (empty / "p.csv").read_text().splitlines()
    assert lines[0] == "id,predicted_formation_energy_per_atom" and lines[1].startswith("NaCl.cif,")
