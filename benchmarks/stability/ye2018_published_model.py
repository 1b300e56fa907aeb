"""Ye et al.'s own published unmixed-perovskite network (garnetdnn's weights) on our derived
table: does our data agree with theirs?

    python benchmarks/stability/ye2018_published_model.py [--collect <data dir>] \
        [--update README.md]

``garnetdnn_perovskite_unmix_model.json`` holds the published model's weights and input
scaler (provenance inside). Applied to the descriptors ``matgnn`` builds for every unmixed
composition of ``ye2018_perovskite`` (``--collect <data dir>``, which holds ``ye2018/``, e.g.
``../shared/data``), its error against our derived targets, by how the species of the
composition were assigned (``species_source``: garnetdnn's web-app site lists, or the
fallback over every binary-oxide species) and by site assignment. Most of these compositions
were in its training set (240 unmixed), so a large error marks a composition where our target,
species or site assignment differ from Ye et al.'s. Written to
``results/ye2018/published_model.csv`` and the README block ``ye2018-published``.

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
RESULT = HERE / "results" / "ye2018" / "published_model.csv"


def published_predictions(descriptors: np.ndarray) -> np.ndarray:
    """The Keras model's forward pass: scaler, Dense(12, ReLU), Dense(1)."""
    m = json.loads(MODEL.read_text())
    x = (descriptors - np.array(m["scaler_mean"])) / np.array(m["scaler_scale"])
    hidden = np.maximum(x @ np.array(m["hidden_kernel"]) + np.array(m["hidden_bias"]), 0.0)
    return (hidden @ np.array(m["output_kernel"]) + np.array(m["output_bias"])).ravel()


def evaluate(data_dir: Path) -> pd.DataFrame:
    from matgnn.data.sources.ye2018 import ye2018_perovskite
    from matgnn.graphs.site_descriptors import site_descriptor

    records = ye2018_perovskite(data_dir, mixed=False)
    descriptors = np.array([site_descriptor(s, ["A", "B"], 1) for s in records.structures])
    table = pd.read_csv(data_dir / "ye2018" / "ye2018_perovskite_ef.csv")
    table.index = [f"perovskite-{i}" for i in table["entry_id"]]
    table = table.loc[records.ids]
    error = np.abs(published_predictions(descriptors) - records.targets["ef_vs_binary_oxides"])
    rows = [("all unmixed", error)]
    for column in ("species_source", "site_assignment"):
        for value, group in table.groupby(column):
            rows.append((f"{column} = {value}", error[table.index.get_indexer(group.index)]))
    rows += garnet_rows()
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


def garnet_rows() -> list[tuple[str, np.ndarray]]:
    """(subset, |error| of the published garnet network on it); the crystals it cannot
    describe are named in the first subset's label."""
    from importlib import resources

    from matgnn.checkpoints.pretrained import load_pretrained
    from matgnn.data.sources.garnets_mp import TABLE
    from matgnn.data.sources.ye2018 import parse_site_species, ye2018_garnet

    records = ye2018_garnet(mixed=False)
    result = load_pretrained("ye2018_garnet_unmixed").predict(records.structures, records.ids)
    truth = dict(zip(records.ids, records.targets["ef_vs_binary_oxides"], strict=True))
    error = pd.Series(
        np.abs(np.asarray(result["ef_vs_binary_oxides"]) - [truth[i] for i in result.names]),
        index=result.names,
    )
    table = pd.read_csv(resources.files("matgnn.resources") / "ye2018" / TABLE)
    table = table.set_index("mp_id").loc[result.names]
    inside = [
        all(
            species in GARNET_SITE_LISTS[site].split()
            for site in "CAD"
            for species in parse_site_species(row[f"{site}_site_species"])
        )
        for _, row in table.iterrows()
    ]
    inside = np.array(inside)
    refused = ", ".join(sorted(result.rejected)) or "none"
    return [
        (f"garnets (mp36k): all unmixed (not describable, left out: {refused})", error.to_numpy()),
        ("garnets: every species on a site of Ye et al.'s site lists", error[inside].to_numpy()),
        ("garnets: a species outside them (extrapolation)", error[~inside].to_numpy()),
    ]


def table(frame: pd.DataFrame | None = None) -> str:
    frame = pd.read_csv(RESULT) if frame is None else frame
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
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    evaluate(data_dir).to_csv(RESULT, index=False)


if __name__ == "__main__":
    table_script(__doc__.split("\n\n")[0], "ye2018-published", collect, table)
