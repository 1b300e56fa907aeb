"""Ye et al. 2018 perovskites (issue 13) and garnets (issue 25), their network and ours:
formation energy relative to the binary oxides and the stability it implies.

    python benchmarks/stability/ye2018_table.py [--collect <runs folder>] \
        [--update docs/results/stability.md]

``--collect`` reads the finished runs of ``ye2018_runs.sh`` (``<runs>/<subset>/<model>/s<seed>``)
and stores, in ``results/ye2018/``:

* each run's test predictions (``predictions/<subset>_<model>_s<seed>.csv``) and budget
  (``runs.csv``: epochs, the epoch of the checkpoint tested, summed epoch time);
* the best checkpoints of the Ye network (every seed, 9 kB each) and of the seed-0 graph models
  (``checkpoints/<subset>_<model>_s<seed>.ckpt``, without optimizer state; ``matgnn.load_model``
  or ``finetune.from=<path>`` read them), except the foundation backbones'
  (:data:`UNSTORED_CHECKPOINTS`);
* per test crystal (``crystals.csv``), what its stability needs from the data (``<data
  dir>/ye2018`` and ``<data dir>/mp36k``, the data dir being ``$MATGNN_DATA_DIR`` or
  ``../shared/data``): its DFT target and the E_f relative to the binary oxides at which it
  would lie on the hull (:mod:`matgnn.analysis.stability`: the garnetdnn binary oxides and
  every mp36k phase of the chemical system), so that E_hull = E_f - that value for the DFT and
  for any predicted E_f; empty when one of its binary oxides has no MP formation energy in the
  snapshot;
* ``metrics.csv``, per run, the scores below (for reading; the table computes them anew).

The table is computed from the stored per-crystal files alone (the predictions,
``crystals.csv``) and ``runs.csv``, without the data dir:

* MAE on the test crystals that every model of that subset and seed predicted (the Ye network
  cannot describe Sn2+, which has no tabulated ionic radius, so its test sets lack those; the
  seeded split is otherwise the same for every model);
* E_hull of each test crystal from the DFT and from the predicted energy, on the same hull;
  accuracy, precision and recall of "stable" at E_hull <= 0 and <= 25 meV/atom, on the test
  crystals whose binary oxides all have an MP formation energy in the snapshot.

Garnets (``garnet_unmixed``, ``garnet_all``): the 46 mp36k garnets of ``ye2018_garnet``
(:mod:`matgnn.data.sources.garnets_mp`). On the unmixed subsets also Ye et al.'s own published
networks (``ye2018_perovskite_unmixed``, ``ye2018_garnet_unmixed``: garnetdnn's weights;
``published`` rows, predicted by ``--collect`` on each seed's stored test crystals; most of
them were likely in its training data, so these rows measure agreement with our targets).
The garnets' E_hull is taken against every mp36k phase except
the 62 matched garnets themselves (the candidate must not be its own competing phase).

``--collect`` merges: runs found in the folder replace the stored rows of the same subset,
model and seed; stored rows of runs not in the folder are kept.
"""

from __future__ import annotations

import json
import shutil
import sys
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
from pymatgen.core import Composition, Species

from matgnn.analysis.stability import (
    HullEvaluator,
    classification,
    formation_energy_vs_oxides,
    mp_formation_energies,
    oxide_references,
)
from matgnn.checkpoints.files import slim_checkpoint
from matgnn.config_dir import default_data_dir
from matgnn.training.run_logs import training_summary

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: catalog.py
from catalog import table_script
from speed_tables import span

RESULTS = Path(__file__).parent / "results" / "ye2018"
PREDICTIONS = RESULTS / "predictions"
TARGET = "ef_vs_binary_oxides"
TARGET_COLUMN = "ef_vs_binary_oxides_eV_per_atom"
#: crystals.csv: the E_f relative to the binary oxides (eV/atom) of the hull at the crystal's
#: composition; E_hull = E_f - this
HULL_COLUMN = "hull_ef_vs_binary_oxides_eV_per_atom"
TOLERANCES = (0.0, 0.025)  # eV/atom
MODELS = {
    "ye2018_net": "Ye et al. network (ours)",
    "published": "Ye et al.'s published network (garnetdnn weights)",
    "cgcnn": "CGCNN",
    "chgnet_frozen": "CHGNet 0.3.0 frozen (head only)",
    "chgnet_finetuned": "CHGNet 0.3.0 fine-tuned",
    "sevennet_frozen": "SevenNet-0 frozen (head only)",
}
#: foundation backbones (issue 26): their checkpoints are not stored (CHGNet's 1.6 MB, most of
#: it the pretrained weights that the foundation extra installs; SevenNet-0's larger)
UNSTORED_CHECKPOINTS = ("chgnet_frozen", "chgnet_finetuned", "sevennet_frozen")
SUBSETS = {
    "unmixed": "unmixed ABO3",
    "all": "all (unmixed + A- or B-mixed)",
    "garnet_unmixed": "unmixed garnets (mp36k)",
    "garnet_all": "all garnets (mp36k; 11 mixed)",
}
#: subset -> the packaged published network predicted on its test crystals
PUBLISHED_NETWORKS = {
    "unmixed": "ye2018_perovskite_unmixed",
    "garnet_unmixed": "ye2018_garnet_unmixed",
}
#: Ye et al. 2018, perovskites (their Fig. and text): MAE of the unmixed and the mixed models,
#: and the share of correct stability calls
PUBLISHED = {
    "unmixed": "21-34 meV/atom (240 unmixed, 10-fold CV)",
    "all": "up to 39 meV/atom (302 mixed added)",
    "garnet_unmixed": "7-10 meV/atom (their 635 unmixed)",
    "garnet_all": "7-10 meV/atom (772 mixed added)",
}


def collect(runs: Path) -> None:
    PREDICTIONS.mkdir(parents=True, exist_ok=True)
    rows = []
    for run in sorted(p for p in runs.glob("*/*/s*") if p.is_dir()):
        if not (run / "test_metrics.json").is_file():
            raise SystemExit(f"{run}: an unfinished run (no test_metrics.json): finish it "
                             "(ye2018_runs.sh resumes) or move it away")  # fmt: skip
        subset, model, seed = run.parent.parent.name, run.parent.name, int(run.name[1:])
        split = json.loads((run / "split.json").read_text())
        summary = training_summary(run)
        if summary["best_epoch"] < 0:
            raise SystemExit(f"{run}: no tested checkpoint's epoch (no best.ckpt and no log)")
        name = f"{subset}_{model}_s{seed}.csv"
        shutil.copyfile(run / "test_predictions.csv", PREDICTIONS / name)
        if (model == "ye2018_net" or seed == 0) and model not in UNSTORED_CHECKPOINTS:
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
    if not rows:
        raise SystemExit(f"no finished run (test_metrics.json) under {runs}")
    found = pd.DataFrame(rows)
    stored_file = RESULTS / "runs.csv"
    if stored_file.is_file():
        stored = pd.read_csv(stored_file)
        key = ["subset", "model", "seed"]
        fresh = set(map(tuple, found[key].to_numpy().tolist()))
        kept = stored[[tuple(k) not in fresh for k in stored[key].to_numpy().tolist()]]
        found = pd.concat([kept, found], ignore_index=True)
    found = found[found["model"] != "published"]
    published = [
        published_predictions(subset, int(row.seed), int(row.n_train))
        for subset in PUBLISHED_NETWORKS
        for row in found[
            (found["subset"] == subset) & (found["model"] == "ye2018_net")
        ].itertuples()
    ]
    found = pd.concat([found, pd.DataFrame(published)], ignore_index=True)
    found = found.sort_values(["subset", "model", "seed"], kind="stable")
    # whole epochs (empty for the published network): not floats after the merge
    found[["epochs", "best_epoch"]] = found[["epochs", "best_epoch"]].astype("Int64")
    found.to_csv(stored_file, index=False)
    ids = sorted(
        set().union(*(
            predictions(r.subset, r.model, r.seed).index for r in found.itertuples()
        ))
    )  # fmt: skip
    hull_references(default_data_dir(), ids).to_csv(RESULTS / "crystals.csv", index=False)
    scores().to_csv(RESULTS / "metrics.csv", index=False)


def published_predictions(subset: str, seed: int, n_train: int) -> dict:
    """Ye et al.'s packaged published network on the test crystals of one seed's split (every
    crystal any stored model of that subset and seed predicted), stored like a run's
    predictions; returns its ``runs.csv`` row (no training: epochs left empty)."""
    from matgnn.checkpoints.pretrained import load_pretrained
    from matgnn.data.sources.ye2018 import ye2018_garnet, ye2018_perovskite_sample

    test_ids = sorted(
        set().union(*(
            pd.read_csv(f)["id"] for f in PREDICTIONS.glob(f"{subset}_*_s{seed}.csv")
            if "_published_" not in f.name
        ))
    )  # fmt: skip
    loader = ye2018_garnet if subset.startswith("garnet") else ye2018_perovskite_sample
    records = loader(mixed=False)
    by_id = dict(zip(records.ids, records.structures, strict=True))
    result = load_pretrained(PUBLISHED_NETWORKS[subset]).predict(
        [by_id[i] for i in test_ids], list(test_ids)
    )
    pd.DataFrame({"id": result.names, f"predicted_{TARGET}": result[TARGET]}).to_csv(
        PREDICTIONS / f"{subset}_published_s{seed}.csv", index=False
    )
    untrained = {"epochs": None, "best_epoch": None, "train_seconds": None}
    rejected = " ".join(sorted(result.rejected))  # named here; the MAE uses the common crystals
    return {"subset": subset, "model": "published", "seed": seed, "n_train": n_train,
            "n_test": len(test_ids), **untrained, "rejected": rejected}  # fmt: skip


def candidates(folder: Path) -> pd.DataFrame:
    """The Ye perovskite table and the shipped garnet table indexed by our record id, with each
    entry's cation species counts per ``n_atoms`` atoms."""
    from matgnn.data.sources.garnets_mp import TABLE

    table = pd.read_csv(folder / "ye2018" / "ye2018_perovskite_ef.csv")
    table = table[table["status"] == "ok"].copy()
    table.index = [f"perovskite-{i}" for i in table["entry_id"]]
    garnets = pd.read_csv(resources.files("matgnn.resources") / "ye2018" / TABLE)
    garnets = garnets[garnets["status"] == "ok"].copy()
    garnets.index = garnets["mp_id"].tolist()
    table = pd.concat([table, garnets[["formula", "oxidation_states", "n_atoms", TARGET_COLUMN]]])
    counts = []
    for formula, species, n_atoms in zip(
        table["formula"], table["oxidation_states"], table["n_atoms"], strict=True
    ):
        by_element = {Species.from_str(s).symbol: s for s in species.split()}
        composition = Composition(formula)
        scale = float(n_atoms) / composition.num_atoms
        counts.append(
            {by_element[el.symbol]: amt * scale for el, amt in composition.items()
             if el.symbol != "O"}
        )  # fmt: skip
    table["species_counts"] = counts
    table["garnet"] = table.index.isin(garnets.index)
    return table


def hull_references(folder: Path, ids: list[str]) -> pd.DataFrame:
    """Per crystal of ``ids`` (``crystals.csv``): the DFT target and the E_f relative to the
    binary oxides at which the crystal lies on its hull (eV/atom), so that E_hull = E_f - that
    value; NaN, with the species named in ``missing_oxides``, where a binary oxide has no MP
    formation energy in the snapshot. Needs the data dir ``folder``."""
    table = candidates(folder)
    unknown = sorted(set(ids) - set(table.index))
    if unknown:
        raise SystemExit(f"test crystals not in the Ye or garnet tables of {folder}: {unknown[:5]}")
    oxides = json.loads((folder / "ye2018" / "binary_oxides_entries_dict.json").read_text())
    phases = mp_formation_energies(folder / "mp36k" / "mp36k_with_ehull.csv.gz")
    refs = oxide_references({k: Composition(v["composition"]) for k, v in oxides.items()}, phases)
    hull = HullEvaluator(phases)
    # a garnet is not its own competing phase: its hull leaves out every matched garnet
    from matgnn.data.sources.garnets_mp import TABLE

    matched = pd.read_csv(resources.files("matgnn.resources") / "ye2018" / TABLE)["mp_id"]
    garnet_hull = HullEvaluator(phases[~phases["mp_id"].isin(set(matched))])
    rows = []
    for row_id in sorted(ids):
        row = table.loc[row_id]
        missing = sorted(s for s in row["species_counts"] if s not in refs)
        on_hull = float("nan")
        if not missing:
            evaluator = garnet_hull if row["garnet"] else hull
            # E_hull(E_f = 0 from the elements) = -E_f of the hull at this composition
            hull_energy = -evaluator.e_above_hull(Composition(row["formula"]), 0.0)
            on_hull = formation_energy_vs_oxides(
                row["species_counts"], hull_energy, refs, float(row["n_atoms"])
            )
        rows.append(
            {
                "id": row_id,
                TARGET_COLUMN: float(row[TARGET_COLUMN]),
                HULL_COLUMN: on_hull,
                "missing_oxides": " ".join(missing),
            }
        )
    return pd.DataFrame(rows)


def _stored(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: stored result missing (benchmarks/stability/ye2018_table.py --collect "
            "writes it)"
        )
    return pd.read_csv(path, keep_default_na=False, na_values=[""])


def predictions(subset: str, model: str, seed: int) -> pd.Series:
    """One run's stored test predictions (eV/atom) by crystal id."""
    path = PREDICTIONS / f"{subset}_{model}_s{seed}.csv"
    frame = _stored(path)
    values = frame.set_index("id")[f"predicted_{TARGET}"].astype(float)
    if values.isna().any() or not values.index.is_unique:
        raise ValueError(f"{path}: an empty prediction or a repeated id")
    return values


def scores() -> pd.DataFrame:
    """Per run of ``runs.csv``: the table's scores, from its stored test predictions and the
    stored per-crystal targets and hulls (``crystals.csv``)."""
    crystals = _stored(RESULTS / "crystals.csv").set_index("id")
    runs = _stored(RESULTS / "runs.csv")
    listed = {f"{r.subset}_{r.model}_s{r.seed}.csv" for r in runs.itertuples()}
    unlisted = sorted({p.name for p in PREDICTIONS.glob("*.csv")} - listed)
    if unlisted:
        raise ValueError(f"{PREDICTIONS}: predictions of runs not in runs.csv: {unlisted}")
    out = []
    for (subset, seed), group in runs.groupby(["subset", "seed"]):
        frames = {m: predictions(subset, m, seed) for m in group["model"]}
        common = sorted(set.intersection(*(set(f.index) for f in frames.values())))
        unknown = sorted(set().union(*(f.index for f in frames.values())) - set(crystals.index))
        if unknown:
            raise ValueError(f"{RESULTS / 'crystals.csv'}: no row for {unknown[:5]}; collect again")
        on_hull = crystals.loc[common, HULL_COLUMN]
        hullable = on_hull.index[on_hull.notna()].tolist()
        true_ef = crystals.loc[common, TARGET_COLUMN].to_numpy(dtype=float)
        hull_ef = crystals.loc[hullable, HULL_COLUMN].to_numpy(dtype=float)
        true_hull = crystals.loc[hullable, TARGET_COLUMN].to_numpy(dtype=float) - hull_ef
        for model, frame in frames.items():
            predicted = frame.loc[common].to_numpy()
            pred_hull = frame.loc[hullable].to_numpy() - hull_ef
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


def _pm(values: pd.Series, scale: float = 1.0, digits: int = 1, unit: str = "") -> str:
    """Mean ± sample std over seeds; seeds where the value is undefined (NaN: e.g. no crystal
    predicted stable, so no precision) are counted, not dropped silently."""
    defined = values.dropna()
    if defined.empty:
        return "undefined"
    text = f"{scale * defined.mean():.{digits}f}"
    if len(defined) > 1:
        text += f" ± {scale * defined.std(ddof=1):.{digits}f}"
    text += unit
    if len(defined) < len(values):
        text += f" ({len(defined)} of {len(values)} seeds)"
    return text


def _span(counts: pd.Series) -> str:
    """A count per seed as ``n`` when every seed has it, else ``min-max``."""
    return span(counts.astype(int), "d")


def table() -> str:
    metrics = scores()
    runs = _stored(RESULTS / "runs.csv")
    lines = [
        "| crystals | model | seeds | test crystals per seed (common; with a hull) | "
        "Ef MAE (meV/atom) | published (Ye et al.) | stable (DFT, E_hull <= 0): share; per split "
        "| accuracy / precision / recall at 0 | accuracy at <= 25 meV/atom | "
        "epochs (tested checkpoint's) | epoch time per run (s) |",
        "|---|---|---:|---:|---:|---|---:|---|---:|---|---:|",
    ]
    for subset, label in SUBSETS.items():
        for model, name in MODELS.items():
            m = metrics[(metrics["subset"] == subset) & (metrics["model"] == model)]
            r = runs[(runs["subset"] == subset) & (runs["model"] == model)]
            if m.empty:
                continue
            published = PUBLISHED[subset] if model in ("ye2018_net", "published") else "-"
            stable = (m["n_0"] * m["stable_share_0"]).round().astype(int)
            trained = r["epochs"].notna().any()
            budget = (
                f"{r['epochs'].mean():.0f} ({r['best_epoch'].mean():.0f}) | "
                f"{r['train_seconds'].mean():.0f}"
                if trained
                else "not trained here | -"
            )
            lines.append(
                f"| {label} | {name} | {len(m)} | {_span(m['n_common'])}; "
                f"{_span(m['n_hull'])} | "
                f"{_pm(m['mae'], 1000)} | {published} | {100 * m['stable_share_0'].mean():.0f}%; "
                f"{stable.min()}-{stable.max()} | "
                f"{_pm(m['accuracy_0'], 100, 0, '%')} / {_pm(m['precision_0'], 100, 0, '%')} / "
                f"{_pm(m['recall_0'], 100, 0, '%')} | {_pm(m['accuracy_0.025'], 100, 0, '%')} | "
                f"{budget} |"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    table_script(__doc__.split("\n\n")[0], "ye2018", collect, table)
