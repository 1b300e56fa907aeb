"""Ye et al. 2018 perovskites, their network and ours (issue 13): formation energy relative to
the binary oxides and the stability it implies.

    python benchmarks/stability/ye2018_table.py [--collect <runs folder>] [--update README.md]

``--collect`` reads the finished runs of ``ye2018_runs.sh`` (``<runs>/<subset>/<model>/s<seed>``)
and stores, in ``results/ye2018/``:

* each run's test predictions (``predictions/<subset>_<model>_s<seed>.csv``) and budget
  (``runs.csv``: epochs, best epoch, summed epoch time);
* the best checkpoints of the Ye network (every seed, 9 kB each) and of the seed-0 graph models
  (``checkpoints/<subset>_<model>_s<seed>.ckpt``, without optimizer state; ``matgnn.load_model``
  or ``finetune.from=<path>`` read them);

then evaluates them (needs ``<data dir>/ye2018`` and ``<data dir>/mp36k``, the data dir being
``$MATGNN_DATA_DIR`` or ``../shared/data``) into ``metrics.csv``:

* MAE on the test crystals that every model of that subset and seed predicted (the Ye network
  cannot describe Sn2+, which has no tabulated ionic radius, so its test sets lack those; the
  seeded split is otherwise the same for every model);
* E_hull of each test crystal from the DFT and from the predicted energy, on the same hull
  (:mod:`matgnn.analysis.stability`: the garnetdnn binary oxides and every mp36k phase of the
  chemical system); accuracy, precision and recall of "stable" at E_hull <= 0 and <= 25 meV/atom, on
  the test crystals whose binary oxides all have an MP formation energy in the snapshot.

Without ``--collect`` the table is made from the stored ``metrics.csv`` and ``runs.csv``.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from pymatgen.core import Composition, Species

from matgnn.analysis.stability import (
    HullEvaluator,
    classification,
    formation_energy_from_elements,
    mp_formation_energies,
    oxide_references,
)
from matgnn.checkpoints.files import slim_checkpoint
from matgnn.config_dir import default_data_dir
from matgnn.training.run_logs import training_summary

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: catalog.py
from catalog import table_script

RESULTS = Path(__file__).parent / "results" / "ye2018"
PREDICTIONS = RESULTS / "predictions"
TARGET = "ef_vs_binary_oxides"
TOLERANCES = (0.0, 0.025)  # eV/atom
MODELS = {"ye2018_net": "Ye et al. network (ours)", "cgcnn": "CGCNN"}
SUBSETS = {"unmixed": "unmixed ABO3", "all": "all (unmixed + A- or B-mixed)"}
#: Ye et al. 2018, perovskites (their Fig. and text): MAE of the unmixed and the mixed models,
#: and the share of correct stability calls
PUBLISHED = {
    "unmixed": "21-34 meV/atom (240 unmixed, 10-fold CV)",
    "all": "up to 39 meV/atom (302 mixed added)",
}


def collect(runs: Path) -> None:
    PREDICTIONS.mkdir(parents=True, exist_ok=True)
    rows = []
    for run in sorted(runs.glob("*/*/s*")):
        if not (run / "test_metrics.json").is_file():
            continue
        subset, model, seed = run.parent.parent.name, run.parent.name, int(run.name[1:])
        split = json.loads((run / "split.json").read_text())
        summary = training_summary(run)
        name = f"{subset}_{model}_s{seed}.csv"
        shutil.copyfile(run / "test_predictions.csv", PREDICTIONS / name)
        if model == "ye2018_net" or seed == 0:
            (RESULTS / "checkpoints").mkdir(exist_ok=True)
            target = RESULTS / "checkpoints" / f"{subset}_{model}_s{seed}.ckpt"
            slim_checkpoint(run / "checkpoints" / "best.ckpt", target)
        rows.append(
            {
                "subset": subset,
                "model": model,
                "seed": seed,
                "n_train": len(split["train"]),
                "n_test": len(split["test"]),
                "epochs": summary["epochs"],
                "best_epoch": summary["best_epoch"],
                "train_seconds": summary["train_seconds"],
            }
        )
    pd.DataFrame(rows).to_csv(RESULTS / "runs.csv", index=False)
    evaluate(default_data_dir()).to_csv(RESULTS / "metrics.csv", index=False)


def candidates(folder: Path) -> pd.DataFrame:
    """The Ye table indexed by our record id, with each entry's cation species counts."""
    table = pd.read_csv(folder / "ye2018" / "ye2018_perovskite_ef.csv")
    table = table[table["status"] == "ok"].copy()
    table.index = [f"perovskite-{i}" for i in table["entry_id"]]
    counts = []
    for formula, species in zip(table["formula"], table["oxidation_states"], strict=True):
        by_element = {Species.from_str(s).symbol: s for s in species.split()}
        composition = Composition(formula)
        counts.append(
            {by_element[el.symbol]: amt for el, amt in composition.items() if el.symbol != "O"}
        )
    table["species_counts"] = counts
    return table


def evaluate(folder: Path) -> pd.DataFrame:
    table = candidates(folder)
    oxides = json.loads((folder / "ye2018" / "binary_oxides_entries_dict.json").read_text())
    phases = mp_formation_energies(folder / "mp36k" / "mp36k_with_ehull.csv.gz")
    refs = oxide_references({k: Composition(v["composition"]) for k, v in oxides.items()}, phases)
    hull = HullEvaluator(phases)
    runs = pd.read_csv(RESULTS / "runs.csv")
    cache: dict[tuple[str, float], float] = {}

    def ehull(row_id: str, ef_vs_oxides: float) -> float:
        key = (row_id, round(float(ef_vs_oxides), 9))
        if key not in cache:
            row = table.loc[row_id]
            ef = formation_energy_from_elements(
                row["species_counts"], ef_vs_oxides, refs, float(row["n_atoms"])
            )
            cache[key] = hull.e_above_hull(Composition(row["formula"]), ef)
        return cache[key]

    out = []
    for (subset, seed), group in runs.groupby(["subset", "seed"]):
        frames = {
            m: pd.read_csv(PREDICTIONS / f"{subset}_{m}_s{seed}.csv").set_index("id")
            for m in group["model"]
        }
        common = sorted(set.intersection(*(set(f.index) for f in frames.values())))
        hullable = [i for i in common if all(s in refs for s in table.loc[i, "species_counts"])]
        true_ef = table.loc[common, "ef_vs_binary_oxides_eV_per_atom"].to_numpy()
        true_hull_ef = table.loc[hullable, "ef_vs_binary_oxides_eV_per_atom"].to_numpy()
        true_hull = np.array([ehull(i, e) for i, e in zip(hullable, true_hull_ef, strict=True)])
        for model, frame in frames.items():
            predicted = frame.loc[common, f"predicted_{TARGET}"].to_numpy(dtype=float)
            on_hull = frame.loc[hullable, f"predicted_{TARGET}"].to_numpy(dtype=float)
            pred_hull = np.array([ehull(i, e) for i, e in zip(hullable, on_hull, strict=True)])
            row = {
                "subset": subset,
                "model": model,
                "seed": seed,
                "n_common": len(common),
                "n_hull": len(hullable),
                "mae": float(np.abs(predicted - true_ef).mean()),
                "ehull_mae": float(np.abs(pred_hull - true_hull).mean()),
            }
            for tol in TOLERANCES:
                for key, value in classification(true_hull, pred_hull, tol).items():
                    row[f"{key}_{tol:g}"] = value
            out.append(row)
    return pd.DataFrame(out)


def _pm(values: pd.Series, scale: float = 1.0, digits: int = 1) -> str:
    return f"{scale * values.mean():.{digits}f} ± {scale * values.std(ddof=1):.{digits}f}"


def table() -> str:
    metrics = pd.read_csv(RESULTS / "metrics.csv")
    runs = pd.read_csv(RESULTS / "runs.csv")
    lines = [
        "| crystals | model | seeds | test crystals (common; with a hull) | Ef MAE (meV/atom) | "
        "published (Ye et al.) | stable share (DFT, E_hull <= 0) | accuracy / precision / recall "
        "at 0 | accuracy at <= 25 meV/atom | epochs (best) | epoch time per run (s) |",
        "|---|---|---:|---:|---:|---|---:|---|---:|---|---:|",
    ]
    for subset, label in SUBSETS.items():
        for model, name in MODELS.items():
            m = metrics[(metrics["subset"] == subset) & (metrics["model"] == model)]
            r = runs[(runs["subset"] == subset) & (runs["model"] == model)]
            if m.empty:
                continue
            published = PUBLISHED[subset] if model == "ye2018_net" else "-"
            lines.append(
                f"| {label} | {name} | {len(m)} | {m['n_common'].mean():.0f}; "
                f"{m['n_hull'].mean():.0f} | "
                f"{_pm(m['mae'], 1000)} | {published} | {100 * m['stable_share_0'].mean():.0f}% | "
                f"{_pm(m['accuracy_0'], 100, 0)}% / {_pm(m['precision_0'], 100, 0)}% / "
                f"{_pm(m['recall_0'], 100, 0)}% | {_pm(m['accuracy_0.025'], 100, 0)}% | "
                f"{r['epochs'].mean():.0f} ({r['best_epoch'].mean():.0f}) | "
                f"{r['train_seconds'].mean():.0f} |"
            )
    lines.append(
        "| garnets | data not available here | - | - | - | 7-10 meV/atom (635 unmixed; 772 "
        "mixed added) | - | - | - | - | - |"
    )
    return "\n".join(lines)


if __name__ == "__main__":
    table_script(__doc__.split("\n\n")[0], "ye2018", collect, table)
