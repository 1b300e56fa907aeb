"""The docs' training-speed tables, from the raw outputs of ``benchmarks/training_speed.sh``
(``benchmarks/results/speed/*.json``, written by ``models.py --json`` and
``alignn_upstream.py --json``).

    python benchmarks/speed_tables.py [--update docs/results/speed.md]

Blocks:

* ``speed-models``: every graph model's parameters (next to the paper's figure where the
  issue quoted one), fp32 and bf16 step time and step memory (``models.json``);
* ``speed-alignn``: ALIGNN against upstream's ``ALIGNNAtomWisePure``, each code on its own and
  on the other's graph, with matgl's M3GNet for scale (``alignn_upstream.json``, glibc's
  allocator as ``matgnn.train`` runs), the ratios of the same rows, the GEMM floor, and the
  same rows with freed memory retained (``alignn_upstream_retain.json``);
* ``speed-alignn-sampled``: the same step, ours against upstream's on upstream's graph
  semantics, on batches drawn at random (seeded) from the mp2018 5k crystals, with glibc's
  allocator and with freed memory retained (``alignn_upstream_sampled_s<seed>_<allocator>.json``);
* ``speed-trainer``: the trainer's step against the bare optimisation step, DataLoader
  collation and the graph-cache reload (``trainer_overhead.json``);
* ``speed-precision``: bf16-mixed against fp32 test MAE on ``mp2018_eform`` 5k, paired by seed
  (``benchmarks/results/mp2018_5k_<model>_precision.csv`` of ``benchmarks/mp2018_5k.py``, the
  MAEs from the runs' stored predictions in ``results/mp2018_5k_precision_predictions``);
* ``graph-build``: graph-construction time per structure, ours against the reference codes
  (``graph_build.json`` of ``benchmarks/graph_build.py --json``).

Every number is computed here from those files; a missing file or row fails the table (no
row is left out unseen). Each block names the date, commit, torch version, threads and CPU
of its measurement.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
RAW = HERE / "results" / "speed"
sys.path.insert(0, str(HERE))  # benchmarks/: catalog.py
from catalog import write_block  # noqa: E402

MODEL_NAMES = {
    "cgcnn": "CGCNN",
    "alignn": "ALIGNN",
    "matformer": "Matformer",
    "potnet": "PotNet",
    "e3nn": "e3nn (lmax 2)",
}
ALIGNN_ROWS = {
    "upstream": "upstream, its graph",
    "upstream_default": "upstream, our default graph",
    "default": "**ours, default graph**",
    "equal": "ours, upstream's graph",
    "matgl": "matgl M3GNet (another model, for scale)",
}


def read(name: str) -> dict:
    path = RAW / f"{name}.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not measured; run bash benchmarks/training_speed.sh")
    return json.loads(path.read_text())


def measured_on(raw: dict) -> str:
    text = (
        f"measured {raw['date'][:10]} at commit {raw['commit']}, torch {raw['torch']}, "
        f"{raw['threads']} thread{'s' if raw['threads'] > 1 else ''} on {raw['cores']} cores "
        f"({raw['cpu']})"
    )
    if "allocator" in raw:
        default = raw["allocator"] == "default"
        text += f", allocator {'glibc (default)' if default else 'retain_freed_memory=true'}"
    return text


def models_table() -> str:
    raw = read("models")
    paper = {"alignn": "4.0 M", "matformer": "2.9 M"}
    lines = [
        "| model | parameters | paper | fp32 s | bf16 s | fp32 / bf16 | step MB (fp32) | machine "
        "GEMM GFLOP/s around the row |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in raw["rows"]:
        lines.append(
            f"| {MODEL_NAMES.get(row['model'], row['model'])} | {row['params']:,} | "
            f"{paper.get(row['model'], '')} | {row['fp32']:.3g} | {row['bf16']:.3g} | "
            f"{row['fp32'] / row['bf16']:.2f} | {row['step_mb']:,.0f} | {_rates(row)} |"
        )
    first = raw["rows"][0]
    lines += [
        "",
        f"Batch: {raw['batch']} structures ({first['source']}, {first['atoms']} atoms); median "
        f"of {raw['repeat']} steps after a warm-up, one process per model; "
        f"{_drift({r['model']: r for r in raw['rows']})}; {measured_on(raw)}.",
    ]
    return "\n".join(lines)


def _rows(raw: dict) -> dict[tuple[str, str], dict]:
    return {(r["key"], r["precision"]): r for r in raw["rows"]}


def _row(rows: dict, key: str, precision: str, name: str) -> dict:
    if (key, precision) not in rows:
        raise KeyError(f"{RAW / name}.json: no {key} {precision} row")
    return rows[key, precision]


def _rates(row: dict) -> str:
    """The machine's GEMM rate measured in the row's process before and after it."""
    return f"{row['gemm_rate_before']:.0f} / {row['gemm_rate_after']:.0f}"


def _drift(rows: dict) -> str:
    """How far the machine's GEMM rate moved over the run's rows, in words."""
    rates = [r[k] for r in rows.values() for k in ("gemm_rate_before", "gemm_rate_after")]
    low, high = min(rates), max(rates)
    text = f"the machine's GEMM rate ranged {low:.0f}-{high:.0f} GFLOP/s over the rows"
    if high > 1.1 * low:
        text += (
            f" ({high / low - 1:.0%} apart): the machine's speed drifted while the rows ran one "
            "after another, so a ratio of two rows carries up to that much error"
        )
    return text


def alignn_speedup(
    ours: str,
    up: str,
    precision: str = "fp32",
    up_precision: str = "",
    name: str = "alignn_upstream",
) -> float:
    """Upstream's step time over ours (rows ``ours`` and ``up`` of the raw run ``name``): how
    many times upstream's speed ours runs at."""
    return _speedup(_rows(read(name)), name, ours, up, precision, up_precision)


def _speedup(
    rows: dict, name: str, ours: str, up: str, precision: str = "fp32", up_precision: str = ""
) -> float:
    """:func:`alignn_speedup` on the rows already read from the raw run ``name``."""
    mine = _row(rows, ours, precision, name)["seconds"]
    return _row(rows, up, up_precision or precision, name)["seconds"] / mine


def alignn_table() -> str:
    raw = read("alignn_upstream")
    rows, batch = _rows(raw), raw["batch"]
    lines = [
        "| code, graph | bonds | angles | GEMM GFLOP | fp32 s/step | fp32 structures/s | "
        "bf16 structures/s | non-GEMM s (fp32) | step MB (fp32) | machine GEMM GFLOP/s "
        "around the fp32 row |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for key, label in ALIGNN_ROWS.items():
        fp32 = _row(rows, key, "fp32", "alignn_upstream")
        bf16 = _row(rows, key, "bf16", "alignn_upstream")
        lines.append(
            f"| {label} | {fp32['edges']:,} | {fp32['angles']:,} | {fp32['gemm_gflop']:.0f} | "
            f"{fp32['seconds']:.3g} | {batch / fp32['seconds']:.3g} | "
            f"{batch / bf16['seconds']:.3g} | {fp32['seconds'] * (1 - fp32['gemm_share']):.2f} "
            f"| {fp32['step_mb']:,.0f} | {_rates(fp32)} |"
        )

    def speedup(ours: str, up: str, precision: str = "fp32", up_precision: str = "") -> str:
        return f"{_speedup(rows, 'alignn_upstream', ours, up, precision, up_precision):.2f}x"

    def rate(row: dict) -> float:  # the machine's GEMM rate around that row
        return (row["gemm_rate_before"] + row["gemm_rate_after"]) / 2

    default, upstream = rows["default", "fp32"], rows["upstream", "fp32"]
    lines += [
        "",
        f"- Same graph, same work: ours is **{speedup('default', 'upstream_default')}** "
        f"upstream's speed on our default graph and **{speedup('equal', 'upstream')}** on "
        f"upstream's graph (fp32); {speedup('default', 'upstream_default', 'bf16')} and "
        f"{speedup('equal', 'upstream', 'bf16')} in bf16.",
        f"- Ours on our default graph against upstream on its own, smaller graph (fp32): "
        f"**{speedup('default', 'upstream')}**; ours in bf16 against upstream's fp32 step: "
        f"{speedup('default', 'upstream', 'bf16', 'fp32')}.",
        f"- GEMM floor: at the rate a `[100000, 256] @ [256, 256]` fp32 product ran around each "
        f"row, our default graph's {default['gemm_gflop']:.0f} GFLOP take at least "
        f"{default['gemm_gflop'] / rate(default):.2f} s of its {default['seconds']:.2f} s step, "
        f"upstream's {upstream['gemm_gflop']:.0f} GFLOP "
        f"{upstream['gemm_gflop'] / rate(upstream):.2f} s of {upstream['seconds']:.2f} s.",
        f"- Batch: {batch} structures ({raw['structures']}); median of {raw['steps']} steps "
        f"after a warm-up, forward + backward + AdamW step, one process per row and "
        f"precision; {_drift(rows)}; {measured_on(raw)}.",
    ]
    retained = read("alignn_upstream_retain")
    kept = _rows(retained)
    cells = []
    for key in ("upstream", "default", "equal"):
        row = _row(kept, key, "fp32", "alignn_upstream_retain")
        cells.append(
            f"{ALIGNN_ROWS[key].strip('*')} {row['seconds']:.3g} s/step, {row['step_mb']:,.0f} MB"
        )
    ratio = _speedup(kept, "alignn_upstream_retain", "default", "upstream")
    lines.append(
        f"- With `retain_freed_memory=true` (fp32; {retained['date'][:10]}, same machine): "
        + "; ".join(cells)
        + f"; ours on our default graph {ratio:.2f}x upstream on its own."
    )
    return "\n".join(lines)


def trainer_table() -> str:
    raw = read("trainer_overhead")
    lines = [
        "| model | atoms | bare step s | trainer step s | trainer / bare | collate ms | "
        "collate / bare step | cache reload ms per batch |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in raw["rows"]:
        lines.append(
            f"| {MODEL_NAMES.get(r['model'], r['model'])} | {r['atoms']:,} | {r['pure_s']:.3g} | "
            f"{r['trainer_s']:.3g} | {r['trainer_s'] / r['pure_s']:.2f} | "
            f"{1000 * r['collate_s']:.1f} | {r['collate_s'] / r['pure_s']:.1%} | "
            f"{1000 * r['cache_load_s_per_batch']:.0f} |"
        )
    lines += [
        "",
        f"Batch: {raw['batch']} graphs of `mp_sample_eform`; median of {raw['steps']} steps after "
        f"{raw['warmup']}; {measured_on(raw)}.",
    ]
    return "\n".join(lines)


GRAPH_LABELS = {
    "(d)": "(d) raw `find_points_in_spheres`, 8 Å (floor)",
    "(a)": "(a) pymatgen `get_all_neighbors` + 12 nearest (CGCNN reference)",
    "(b)": "(b) jarvis `Atoms.get_all_neighbors`, 8 Å (ALIGNN/Matformer neighbour step)",
    "(c)": "(c) upstream alignn `build_pure_torch_graph` (graph + line graph)",
    "ours cgcnn": "ours `cgcnn` (ties with the 12th kept, slots shared)",
    "ours alignn": "ours `alignn` (graph + line graph)",
    "ours alignn_upstream": "ours `alignn_upstream` (upstream's jarvis semantics, + line graph)",
    "ours cgcnn_reference": "ours `cgcnn_reference` (CGCNN's exact 12-neighbour cut)",
    "ours matformer": "ours `matformer` (primitive cell, then graph)",
    "ours potnet": "ours `potnet` (primitive cell, neighbours, 3 lattice sums over all pairs)",
    "ours e3nn": "ours `e3nn` 5 Å",
    "ours radius": "ours `radius` 8 Å",
}


def _graph_key(name: str) -> str:
    return name[:3] if name.startswith("(") else name.split(" (")[0].split(" [")[0]


def graph_build_table() -> str:
    raw = read("graph_build")
    if not raw.get("reference_codes", True):
        raise SystemExit(
            "graph_build.json is an --ours-only run: the table needs the reference rows"
        )
    rows = {_graph_key(r["name"]): r for r in raw["rows"]}
    order = ["(d)", "(a)", "(b)", "(c)"] + [k for k in rows if k.startswith("ours ")]
    lines = [
        "| code | ms / structure | structures / s | edges / structure |",
        "|---|---:|---:|---:|",
    ]
    for key in order:
        if key not in rows:
            raise KeyError(f"{RAW / 'graph_build.json'}: no {key} row")
        r = rows[key]
        label = GRAPH_LABELS.get(key, f"`{key}`")
        extra = r["name"][len(key) :].strip() if key.startswith("ours ") else ""
        label += f" {extra}" if extra else ""
        lines.append(f"| {label} | {r['ms']:.3g} | {1000 / r['ms']:,.0f} | {r['edges']:,.0f} |")
    ms = {k: r["ms"] for k, r in rows.items()}
    alignn = ms["ours alignn"]
    lines += [
        "",
        f"- ALIGNN graph with line graph against (c): **{ms['(c)'] / alignn:.2f}x** faster "
        f"(target >= 2); against (b) plus a line graph: "
        f"**{(ms['(b)'] + raw['line_graph_ms']) / alignn:.1f}x** (target >= 10); our CGCNN "
        f"graph against the CGCNN reference code: "
        f"{ms['(a)'] / ms['ours cgcnn']:.0f}x; our CGCNN graph costs "
        f"**{ms['ours cgcnn'] / ms['(d)']:.1f}x** the raw floor (target <= 2).",
        f"- {raw['n']:,} structures ({raw['source']}; {raw['atoms_mean']:.1f} atoms on average, "
        f"max {raw['atoms_max']}), PotNet on the first {raw['potnet_n']}; one thread, every row "
        f"in the same run; {measured_on(raw)}.",
    ]
    return "\n".join(lines)


#: the per-crystal test predictions of the precision runs (``mp2018_5k.py --predictions``)
PRECISION_PREDICTIONS = HERE / "results" / "mp2018_5k_precision_predictions"


def stored_test_results(
    model: str, frame, folder: Path = PRECISION_PREDICTIONS, suffix: str = ""
) -> tuple[list[float], list[frozenset[str]]]:
    """Each run's test MAE (eV/atom) and test crystal ids, from its stored per-crystal
    predictions (``folder/<model>_<precision>_s<seed><suffix>.csv.gz`` of ``mp2018_5k.py
    --predictions``: ``id``, the target and ``predicted_<target>`` of the 625 distinct test
    crystals), in the order of ``frame`` (an ``mp2018_5k.py`` CSV); the logged MAE must agree to
    1e-6 (float32 sums)."""
    import numpy as np
    import pandas as pd

    target = "formation_energy_per_atom"
    maes, ids = [], []
    for run in frame.itertuples():
        path = folder / f"{model}_{run.precision}_s{run.seed}{suffix}.csv.gz"
        if not path.is_file():
            raise SystemExit(f"{path}: no stored predictions for this run (mp2018_5k.py)")
        rows = pd.read_csv(path)
        if len(rows) != 625 or rows["id"].duplicated().any():
            raise SystemExit(f"{path}: {len(rows)} rows, expected the 625 distinct test crystals")
        mae = float(np.mean(np.abs(rows[f"predicted_{target}"] - rows[target])))
        if abs(mae - run.test_mae_eV_per_atom) > 1e-6:
            raise SystemExit(
                f"{path}: MAE {mae} from the predictions, {run.test_mae_eV_per_atom} logged"
            )
        maes.append(mae)
        ids.append(frozenset(rows["id"]))
    return maes, ids


def span(values, spec: str = ".1f") -> str:
    """``low-high`` of some values (formatted by ``spec``), or the one value."""
    low, high = format(min(values), spec), format(max(values), spec)
    return low if low == high else f"{low}-{high}"


def precision_table() -> str:
    """bf16-mixed against fp32 on ``mp2018_eform`` 5k, paired by seed (the seed draws split
    and weights), from ``benchmarks/results/mp2018_5k_<model>_precision.csv`` (the runs) and
    each run's stored test predictions (the MAEs)."""
    import numpy as np
    import pandas as pd

    lines = [
        "| model, budget | seeds | fp32 test MAE (eV/atom) by seed | bf16-mixed | paired "
        "bf16 - fp32 (mean) | s / epoch fp32 -> bf16 |",
        "|---|---:|---|---|---:|---|",
    ]
    for model in ("cgcnn", "alignn"):
        path = HERE / "results" / f"mp2018_5k_{model}_precision.csv"
        if not path.is_file():
            raise FileNotFoundError(f"{path}: not measured (benchmarks/mp2018_5k.py)")
        frame = pd.read_csv(path)
        frame["test_mae_eV_per_atom"], frame["test_ids"] = stored_test_results(model, frame)
        fp32 = frame[frame["precision"] == "32-true"].set_index("seed")
        bf16 = frame[frame["precision"] == "bf16-mixed"].set_index("seed")
        seeds = sorted(set(fp32.index) & set(bf16.index))
        if len(seeds) < len(set(frame["seed"])):
            raise ValueError(f"{path}: a seed without both precisions")
        for seed in seeds:  # a pair shares its split, so its test crystals
            if fp32.loc[seed, "test_ids"] != bf16.loc[seed, "test_ids"]:
                raise ValueError(f"{path}: seed {seed}: fp32 and bf16 tested other crystals")

        def maes(part, seeds=seeds) -> str:
            values = part.loc[seeds, "test_mae_eV_per_atom"].to_numpy()
            text = " / ".join(f"{v:.4f}" for v in values)
            if len(values) > 1:
                text += f" (mean {values.mean():.4f}, sd {values.std(ddof=1):.4f})"
            return text

        diff = bf16.loc[seeds, "test_mae_eV_per_atom"] - fp32.loc[seeds, "test_mae_eV_per_atom"]
        times = (
            f"{span(fp32.loc[seeds, 'train_s_per_epoch'])} -> "
            f"{span(bf16.loc[seeds, 'train_s_per_epoch'])}"
        )
        epochs = int(frame["epochs"].iloc[0])
        lines.append(
            f"| {MODEL_NAMES[model]}, {epochs} epoch{'s' if epochs > 1 else ''} | "
            f"{len(seeds)} "
            f"({', '.join(map(str, seeds))}) | {maes(fp32)} | {maes(bf16)} | "
            f"{float(np.mean(diff)):+.4f} | {times} |"
        )
    return "\n".join(lines)


#: the batches of ``alignn_upstream.py --sample-rows 6250 --sample-seed S`` (training_speed.sh)
SAMPLED_SEEDS = (0, 1, 2)
ALLOCATORS = {"default": "glibc (default)", "retain": "retained"}


def _machine_rates(raws: list[dict]) -> list[dict]:
    """Each row's GEMM rates, the one after a row with freed memory retained replaced by the one
    before it: the probe's 100 MB output is cheaper under that allocator, so it measures the
    allocator as well as the machine."""
    rates = []
    for raw in raws:
        for row in raw["rows"]:
            after = row["gemm_rate_before" if raw["allocator"] == "retain" else "gemm_rate_after"]
            rates.append({"gemm_rate_before": row["gemm_rate_before"], "gemm_rate_after": after})
    return rates


def _measured_on_all(raws: list[dict]) -> str:
    """:func:`measured_on` of the first run, naming every commit the runs record."""
    commits = sorted({raw["commit"] for raw in raws}, key=[r["commit"] for r in raws].index)
    text = measured_on({k: v for k, v in raws[0].items() if k != "allocator"})
    if len(commits) > 1:
        text = text.replace(f"at commit {raws[0]['commit']}", "at commits " + ", ".join(commits))
    return text


def sampled_speedups(
    sums: dict[str, list[float]] | None = None,
) -> tuple[dict[str, float], dict[str, float]]:
    """Ours, times the speed of upstream's pure-PyTorch and of its DGL network, per allocator:
    the step times of the sampled batches summed (``sums``: per allocator, the summed seconds
    of pure, DGL and ours; read from the raw outputs when not given)."""
    if sums is None:
        sums = {a: [0.0, 0.0, 0.0] for a in ALLOCATORS}
        for seed in SAMPLED_SEEDS:
            for allocator in ALLOCATORS:
                name = f"alignn_upstream_sampled_s{seed}_{allocator}"
                rows = _rows(read(name))
                dgl_name = f"alignn_upstream_sampled_dgl_s{seed}_{allocator}"
                dgl = _row(_rows(read(dgl_name)), "upstream_dgl", "fp32", dgl_name)
                for k, row in enumerate(
                    (_row(rows, "upstream", "fp32", name), dgl, _row(rows, "equal", "fp32", name))
                ):
                    sums[allocator][k] += row["seconds"]
    pure = {a: sums[a][0] / sums[a][2] for a in ALLOCATORS}
    dgl = {a: sums[a][1] / sums[a][2] for a in ALLOCATORS}
    return pure, dgl


def sampled_table() -> str:
    """ALIGNN's fp32 step, ours against upstream's both on upstream's graph semantics, on
    batches drawn at random from the mp2018 5k crystals (as a shuffling loader draws them),
    with glibc's allocator and with freed memory retained (``alignn_upstream_sampled_*``)."""
    lines = [
        "| batch (seed) | allocator | bonds | angles | bonds per crystal | upstream pure s/step "
        "| upstream DGL s/step | ours s/step | ours, times pure's speed | ours, times DGL's "
        "speed | step MB pure / DGL / ours |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    sums: dict[str, list[float]] = {a: [0.0, 0.0, 0.0] for a in ALLOCATORS}
    raws = []
    for seed in SAMPLED_SEEDS:
        for allocator, words in ALLOCATORS.items():
            name = f"alignn_upstream_sampled_s{seed}_{allocator}"
            raw = read(name)
            raws.append(raw)
            rows = _rows(raw)
            up, ours = _row(rows, "upstream", "fp32", name), _row(rows, "equal", "fp32", name)
            if (up["edges"], up["angles"]) != (ours["edges"], ours["angles"]):
                raise ValueError(
                    f"{RAW / name}.json: upstream's graph ({up['edges']} bonds, "
                    f"{up['angles']} angles) is not ours in its semantics ({ours['edges']}, "
                    f"{ours['angles']}): the rows would not do the same work"
                )
            dgl_name = f"alignn_upstream_sampled_dgl_s{seed}_{allocator}"
            dgl_raw = read(dgl_name)
            raws.append(dgl_raw)
            dgl = _row(_rows(dgl_raw), "upstream_dgl", "fp32", dgl_name)
            if (dgl["edges"], dgl["angles"], dgl_raw["structures"]) != (
                up["edges"],
                up["angles"],
                raw["structures"],
            ):
                raise ValueError(f"{RAW / dgl_name}.json: not the batch of {RAW / name}.json")
            for k, row in enumerate((up, dgl, ours)):
                sums[allocator][k] += row["seconds"]
            lines.append(
                f"| {seed} | {words} | {up['edges']:,} | {up['angles']:,} | "
                f"{up['edges'] / raw['batch']:.0f} | {up['seconds']:.3g} | {dgl['seconds']:.3g} "
                f"| {ours['seconds']:.3g} | {up['seconds'] / ours['seconds']:.2f}x | "
                f"{dgl['seconds'] / ours['seconds']:.2f}x | {up['step_mb']:,.0f} / "
                f"{dgl['step_mb']:,.0f} / {ours['step_mb']:,.0f} |"
            )
    first = _row(_rows(read("alignn_upstream")), "upstream", "fp32", "alignn_upstream")
    batch = read("alignn_upstream")["batch"]
    pure, dgl = sampled_speedups(sums)
    lines += [
        "",
        f"- Summed over the {len(SAMPLED_SEEDS)} batches (an epoch is a sum of such steps), "
        f"ours against upstream's DGL network, the one its trainer trains: "
        f"**{dgl['default']:.2f}x** its speed with glibc's allocator, **{dgl['retain']:.2f}x** "
        f"with freed memory retained in both processes; against upstream's pure-PyTorch "
        f"network (the table above): {pure['default']:.2f}x and {pure['retain']:.2f}x. The "
        f"first {batch} crystals of mp36k that the table above measures hold "
        f"{first['edges'] / batch:.0f} bonds per crystal in upstream's graph.",
        f"- Batches: {raws[0]['batch']} structures each ({raws[0]['structures']}, and seeds "
        f"{', '.join(str(s) for s in SAMPLED_SEEDS[1:])}); median of {raws[0]['steps']} steps "
        f"after a warm-up, forward + backward + AdamW step, fp32, one process per row; "
        f"{_drift(dict(enumerate(_machine_rates(raws))))} (the rate after a row that retained "
        f"freed memory is left out: that allocator speeds the probe itself); "
        f"{_measured_on_all(raws)}.",
    ]
    return "\n".join(lines)


BLOCKS = {
    "speed-models": models_table,
    "speed-alignn": alignn_table,
    "speed-alignn-sampled": sampled_table,
    "speed-trainer": trainer_table,
    "speed-precision": precision_table,
    "graph-build": graph_build_table,
}


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--update", nargs="*", default=[])
    args = parser.parse_args()
    for name, table in BLOCKS.items():
        text = table()
        print(text, end="\n\n")
        write_block(args.update, name, text)


if __name__ == "__main__":
    main()
