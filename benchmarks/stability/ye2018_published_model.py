"""Ye et al.'s own published unmixed-perovskite network (garnetdnn's weights) on our derived
table: does our data agree with theirs?

    python benchmarks/stability/ye2018_published_model.py [--collect <data dir>] \
        [--update docs/results/stability.md]

``garnetdnn_perovskite_unmix_model.json`` holds the published model's weights and input
scaler (provenance inside). Applied to the descriptors ``matgnn`` builds for every unmixed
composition of ``ye2018_perovskite`` (``--collect <data dir>``, which holds ``ye2018/``, e.g.
``../shared/data``), its error against our derived targets, by how the species of the
composition were assigned (``species_source``: garnetdnn's web-app site lists, or the
fallback over every binary-oxide species) and by site assignment. Most of these compositions
were in its training set (240 unmixed), so a large error marks a composition where our target,
species or site assignment differ from Ye et al.'s. ``--collect`` stores one row per
composition (``results/ye2018/published_model_predictions.csv``: subset columns, our target,
the published network's prediction); the docs block ``ye2018-published`` is computed from it.

The published garnet network (the packaged ``ye2018_garnet_unmixed``, converted from
garnetdnn's ``models/garnet/model_unmix.h5``) is scored the same way on every unmixed garnet
of the shipped mp36k garnet set (``ye2018_garnet``: MP-derived targets), split by whether every
species sits on a site of garnetdnn's own site lists (``ELS['garnet']`` of its ``util.py``: the
composition space it was trained on) or not (extrapolation); crystals it cannot describe
(Fe3+ has two tabulated VI radii) are counted, not dropped silently.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: catalog.py
from catalog import table_script

HERE = Path(__file__).parent
MODEL = HERE / "garnetdnn_perovskite_unmix_model.json"
PREDICTIONS = HERE / "results" / "ye2018" / "published_model_predictions.csv"


def published_predictions(descriptors: np.ndarray) -> np.ndarray:
    """The Keras model's forward pass: scaler, Dense(12, ReLU), Dense(1)."""
    m = json.loads(MODEL.read_text())
    x = (descriptors - np.array(m["scaler_mean"])) / np.array(m["scaler_scale"])
    hidden = np.maximum(x @ np.array(m["hidden_kernel"]) + np.array(m["hidden_bias"]), 0.0)
    return (hidden @ np.array(m["output_kernel"]) + np.array(m["output_bias"])).ravel()


def perovskite_predictions(data_dir: Path) -> pd.DataFrame:
    """One row per unmixed perovskite composition: its species and site assignment, our
    derived target and the published network's prediction (eV/atom)."""
    from matgnn.data.sources.ye2018 import ye2018_perovskite
    from matgnn.graphs.site_descriptors import site_descriptor

    records = ye2018_perovskite(data_dir, mixed=False)
    descriptors = np.array([site_descriptor(s, ["A", "B"], 1) for s in records.structures])
    table = pd.read_csv(data_dir / "ye2018" / "ye2018_perovskite_ef.csv")
    table.index = [f"perovskite-{i}" for i in table["entry_id"]]
    table = table.loc[records.ids]
    return pd.DataFrame(
        {
            "set": "perovskite",
            "id": records.ids,
            "species_source": table["species_source"].to_numpy(),
            "site_assignment": table["site_assignment"].to_numpy(),
            "ef_vs_binary_oxides": records.targets["ef_vs_binary_oxides"],
            "predicted_ef_vs_binary_oxides": published_predictions(descriptors),
        }
    )


def summary(frame: pd.DataFrame) -> pd.DataFrame:
    """The table's rows from the per-composition predictions: MAE, median and share within
    30 meV/atom for every subset."""
    error = (frame["predicted_ef_vs_binary_oxides"] - frame["ef_vs_binary_oxides"]).abs()
    perovskite = frame["set"] == "perovskite"
    rows = [("all unmixed", error[perovskite])]
    for column in ("species_source", "site_assignment"):
        for value, group in frame[perovskite].groupby(column):
            rows.append((f"{column} = {value}", error[group.index]))
    garnet = frame[frame["set"] == "garnet"]
    refused = garnet[garnet["refused"].fillna("") != ""]
    described = garnet.drop(refused.index)
    inside = described["on_site_lists"].astype(bool)
    names = ", ".join(sorted(refused["id"])) or "none"
    label = f"garnets (mp36k): all unmixed (not describable, left out: {names})"
    rows += [
        (label, error[described.index]),
        ("garnets: every species on a site of Ye et al.'s site lists", error[inside[inside].index]),
        ("garnets: a species outside them (extrapolation)", error[inside[~inside].index]),
    ]
    return pd.DataFrame(
        [
            {
                "subset": name,
                "compositions": len(e),
                "mae": e.mean(),
                "median": np.median(e),
                "share_below_30meV": (e < 0.03).mean(),
            }
            for name, e in rows
        ]
    )


#: garnetdnn util.py ELS['garnet'] (materialsvirtuallab/garnetdnn@333bddc, BSD-3): the species
#: of each site in Ye et al.'s garnet compositions
GARNET_SITE_LISTS = {
    "C": "Bi3+ Hf4+ Zr4+ La3+ Pr3+ Nd3+ Sm3+ Eu3+ Gd3+ Tb3+ Dy3+ Ho3+ Er3+ Tm3+ Yb3+ Lu3+ Y3+ "
    "Cd2+ Zn2+ Ba2+ Sr2+ Ca2+ Mg2+ Na+",
    "A": "Rh3+ Ru4+ Cr3+ Sb5+ Ta5+ Nb5+ Sn4+ Ge4+ Hf4+ Zr4+ Ti4+ In3+ Ga3+ Al3+ Lu3+ Yb3+ Tm3+ "
    "Er3+ Ho3+ Dy3+ Y3+ Sc3+ Zn2+ Mg2+ Li+",
    "D": "As5+ P5+ Sn4+ Ge4+ Si4+ Ti4+ Ga3+ Al3+ Li+",
}


def garnet_predictions() -> pd.DataFrame:
    """One row per unmixed mp36k garnet: whether every species sits on a site of garnetdnn's
    site lists, our MP-derived target, the published garnet network's prediction, and the
    reason a crystal it cannot describe was refused (its prediction left empty)."""
    from importlib import resources

    from matgnn.checkpoints.pretrained import load_pretrained
    from matgnn.data.sources.garnets_mp import TABLE
    from matgnn.data.sources.ye2018 import parse_site_species, ye2018_garnet

    records = ye2018_garnet(mixed=False)
    result = load_pretrained("ye2018_garnet_unmixed").predict(records.structures, records.ids)
    predicted = dict(zip(result.names, np.asarray(result["ef_vs_binary_oxides"]), strict=True))
    table = pd.read_csv(resources.files("matgnn.resources") / "ye2018" / TABLE)
    table = table.set_index("mp_id").loc[records.ids]
    inside = [
        all(
            species in GARNET_SITE_LISTS[site].split()
            for site in "CAD"
            for species in parse_site_species(row[f"{site}_site_species"])
        )
        for _, row in table.iterrows()
    ]
    return pd.DataFrame(
        {
            "set": "garnet",
            "id": records.ids,
            "on_site_lists": inside,
            "ef_vs_binary_oxides": records.targets["ef_vs_binary_oxides"],
            "predicted_ef_vs_binary_oxides": [predicted.get(i, np.nan) for i in records.ids],
            "refused": [str(result.rejected.get(i, "")) for i in records.ids],
        }
    )


def table(frame: pd.DataFrame | None = None) -> str:
    """The docs block, computed from the stored per-composition predictions."""
    frame = summary(pd.read_csv(PREDICTIONS) if frame is None else frame)
    lines = [
        "| unmixed compositions (ours) | n | MAE (meV/atom) | median (meV/atom) | error < 30 meV |",
        "|---|---:|---:|---:|---:|",
    ]
    for _, r in frame.iterrows():
        lines.append(
            f"| {r['subset']} | {r['compositions']} | {1000 * r['mae']:.1f} | "
            f"{1000 * r['median']:.1f} | {100 * r['share_below_30meV']:.0f}% |"
        )
    return "\n".join(lines)


def collect(data_dir: Path) -> None:
    PREDICTIONS.parent.mkdir(parents=True, exist_ok=True)
    frame = pd.concat([perovskite_predictions(data_dir), garnet_predictions()], ignore_index=True)
    frame.to_csv(PREDICTIONS, index=False)


if __name__ == "__main__":
    table_script(__doc__.split("\n\n")[0], "ye2018-published", collect, table)
