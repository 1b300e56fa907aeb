"""The README's training-speed tables, from the raw outputs of ``benchmarks/training_speed.sh``
(``benchmarks/results/speed/*.json``, written by ``models.py --json`` and
``alignn_upstream.py --json``).

    python benchmarks/speed_tables.py [--update README.md]

Blocks:

* ``speed-models``: every graph model's parameters (next to the paper's figure where the
  issue quoted one), fp32 and bf16 step time and step memory (``models.json``);
* ``speed-alignn``: ALIGNN against upstream's ``ALIGNNAtomWisePure``, each code on its own and
  on the other's graph, with matgl's M3GNet for scale (``alignn_upstream.json``, glibc's
  allocator as ``matgnn.train`` runs), the ratios of the same rows, the GEMM floor, and the
  same rows with freed memory retained (``alignn_upstream_retain.json``);
* ``speed-trainer``: the trainer's step against the bare optimisation step, DataLoader
  collation and the graph-cache reload (``trainer_overhead.json``).

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
    return (
        f"measured {raw['date'][:10]} at commit {raw['commit']}, torch {raw['torch']}, "
        f"{raw['threads']} threads on {raw['cores']} cores ({raw['cpu']}), allocator "
        f"{'glibc (default)' if raw['allocator'] == 'default' else 'retain_freed_memory=true'}"
    )


def models_table() -> str:
    raw = read("models")
    paper = {"alignn": "4.0 M", "matformer": "2.9 M"}
    lines = [
        "| model | parameters | paper | fp32 s | bf16 s | fp32 / bf16 | step MB (fp32) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in raw["rows"]:
        lines.append(
            f"| {MODEL_NAMES.get(row['model'], row['model'])} | {row['params']:,} | "
            f"{paper.get(row['model'], '')} | {row['fp32']:.3g} | {row['bf16']:.3g} | "
            f"{row['fp32'] / row['bf16']:.2f} | {row['step_mb']:,.0f} |"
        )
    first = raw["rows"][0]
    lines += [
        "",
        f"Batch: {raw['batch']} structures ({first['source']}, {first['atoms']} atoms); median "
        f"of {raw['repeat']} steps after a warm-up; {measured_on(raw)}.",
    ]
    return "\n".join(lines)


def _rows(raw: dict) -> dict[tuple[str, str], dict]:
    return {(r["key"], r["precision"]): r for r in raw["rows"]}


def _row(rows: dict, key: str, precision: str, name: str) -> dict:
    if (key, precision) not in rows:
        raise KeyError(f"{RAW / name}.json: no {key} {precision} row")
    return rows[key, precision]


def alignn_table() -> str:
    raw = read("alignn_upstream")
    rows, batch = _rows(raw), raw["batch"]
    lines = [
        "| code, graph | bonds | angles | GEMM GFLOP | fp32 s/step | fp32 structures/s | "
        "bf16 structures/s | non-GEMM s (fp32) | step MB (fp32) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for key, label in ALIGNN_ROWS.items():
        fp32 = _row(rows, key, "fp32", "alignn_upstream")
        bf16 = _row(rows, key, "bf16", "alignn_upstream")
        lines.append(
            f"| {label} | {fp32['edges']:,} | {fp32['angles']:,} | {fp32['gemm_gflop']:.0f} | "
            f"{fp32['seconds']:.3g} | {batch / fp32['seconds']:.3g} | "
            f"{batch / bf16['seconds']:.3g} | {fp32['seconds'] * (1 - fp32['gemm_share']):.2f} "
            f"| {fp32['step_mb']:,.0f} |"
        )

    def speedup(ours: str, up: str, precision: str = "fp32", up_precision: str = "") -> str:
        mine = _row(rows, ours, precision, "alignn_upstream")["seconds"]
        theirs = _row(rows, up, up_precision or precision, "alignn_upstream")["seconds"]
        return f"{theirs / mine:.2f}x"

    rate = raw["gemm_rate_gflops"]
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
        f"- GEMM floor: a `[100000, 256] @ [256, 256]` fp32 product runs at {rate:.0f} GFLOP/s "
        f"here, so our default graph's {default['gemm_gflop']:.0f} GFLOP take at least "
        f"{default['gemm_gflop'] / rate:.2f} s of its {default['seconds']:.2f} s step, "
        f"upstream's {upstream['gemm_gflop']:.0f} GFLOP {upstream['gemm_gflop'] / rate:.2f} s "
        f"of {upstream['seconds']:.2f} s.",
        f"- Batch: {batch} structures ({raw['structures']}); median of {raw['steps']} steps "
        f"after a warm-up, forward + backward + AdamW step, one process per row and "
        f"precision; {measured_on(raw)}.",
    ]
    retained = read("alignn_upstream_retain")
    kept = _rows(retained)
    cells = []
    for key in ("upstream", "default", "equal"):
        row = _row(kept, key, "fp32", "alignn_upstream_retain")
        cells.append(
            f"{ALIGNN_ROWS[key].strip('*')} {row['seconds']:.3g} s/step, {row['step_mb']:,.0f} MB"
        )
    up = _row(kept, "upstream", "fp32", "alignn_upstream_retain")["seconds"]
    ours = _row(kept, "default", "fp32", "alignn_upstream_retain")["seconds"]
    lines.append(
        f"- With `retain_freed_memory=true` (fp32; {retained['date'][:10]}, same machine): "
        + "; ".join(cells)
        + f"; ours on our default graph {up / ours:.2f}x upstream on its own."
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


BLOCKS = {
    "speed-models": models_table,
    "speed-alignn": alignn_table,
    "speed-trainer": trainer_table,
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
