"""The docs table of benchmarks/data_store/run.sh (issue 29): the on-disk graph store against
the in-memory path, from the stored measurements in ``results/*.json``.

    python benchmarks/data_store/table.py [--update docs/results/speed.md]

A measurement the table needs and that is not stored fails the script with its name; one that
is planned but not taken yet is listed in ``PENDING`` with why, and the table says so.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPOSITORY = HERE.parents[1]
sys.path.insert(0, str(REPOSITORY / "benchmarks"))  # catalog.py

#: name -> (rows label, processes); the 33k pair is shown once stored
BUILDS = {
    "build-5k-1": ("5,000", 1),
    "build-5k-2": ("5,000", 2),
    "build-33k-1": ("33,370", 1),
    "build-33k-2": ("33,370", 2),
}
#: (name, rows label, store, processes)
TRAINING = [
    ("train-5k-memory", "5,000", "memory", 1),
    ("train-5k-disk", "5,000", "disk", 1),
    ("train-5k-disk-ddp2", "5,000", "disk", 2),
    ("train-33k-memory", "33,370", "memory", 1),
    ("train-33k-disk", "33,370", "disk", 1),
    ("train-33k-disk-ddp2", "33,370", "disk", 2),
]
_LATER = "not measured yet (run.sh takes it; about 30 min here)"
#: planned rows not measured yet: name -> why (a stored measurement is shown all the same)
PENDING: dict[str, str] = {
    "train-33k-disk-ddp2": _LATER,
    "train-130k": (
        "not measured: a 130k-crystal set (e.g. every structure source in ../shared/data "
        "together) is not assembled yet"
    ),
}


def stored(name: str, processes: int = 1) -> bool:
    suffix = ".rank0" if processes > 1 else ""
    return (HERE / "results" / f"{name}{suffix}.json").is_file()


def load(name: str) -> dict:
    path = HERE / "results" / f"{name}.json"
    if not path.is_file():
        raise SystemExit(
            f"{path}: measurement {name!r} is missing; run benchmarks/data_store/run.sh"
        )
    return json.loads(path.read_text())


def load_ranks(name: str, processes: int) -> list[dict]:
    if processes == 1:
        return [load(name)]
    return [load(f"{name}.rank{r}") for r in range(processes)]


def table() -> str:
    builds = {n: load(n) for n in BUILDS if not n.startswith("build-33k") or stored(n)}
    one = builds["build-5k-1"]
    lines = [
        "Graph store build (ALIGNN graphs of the first rows of the partial "
        "`matbench_mp_e_form` copy, shards of 250; the source loaded before the clock starts):",
        "",
        "| crystals | processes | graphs/s | speed-up | store on disk | peak RSS (parent) |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for name, b in builds.items():
        label, processes = BUILDS[name]
        single = builds[name[:-1] + "1"]
        lines.append(
            f"| {label} | {processes} | {b['graphs_per_second']:.0f} | "
            f"{b['graphs_per_second'] / single['graphs_per_second']:.2f}x | "
            f"{b['store_mb']:.0f} MiB ({b['store_bytes_per_graph'] / 1024:.1f} KiB/graph) | "
            f"{b['peak_rss_mb'] / 1024:.2f} GiB |"
        )
    lines += [
        "",
        "ALIGNN training, batch 64, after the graphs are built (store or cache); peak RSS of "
        "each process over the whole run, data loading included; throughput over 20 steps "
        "after 3 warm-up steps:",
        "",
        "| crystals | graphs | processes | peak RSS per process | peak RSS by the end of "
        "setup | setup | crystals/s | vs in memory |",
        "|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    memory_speed: dict[str, float] = {}
    memory_rss: dict[str, float] = {}
    rows: dict[str, list[dict]] = {}
    for name, label, store, processes in TRAINING:
        if name in PENDING and not stored(name, processes):
            lines.append(f"| {label} | {store} | {processes} | {PENDING[name]} | | | | |")
            continue
        ranks = load_ranks(name, processes)
        rows[name] = ranks
        speed = sum(r["crystals_per_second"] for r in ranks)
        rss = max(r["peak_rss_mb"] for r in ranks) / 1024
        if store == "memory":
            memory_speed[label], memory_rss[label] = speed, rss
        ratio = f"{speed / memory_speed[label]:.2f}x" if label in memory_speed else "-"
        lines.append(
            f"| {label} | {store} | {processes} | {rss:.2f} GiB | "
            f"{max(r['setup_peak_rss_mb'] for r in ranks) / 1024:.2f} GiB | "
            f"{max(r['setup_seconds'] for r in ranks):.0f} s | {speed:.1f} | {ratio} |"
        )
    for name, why in PENDING.items():
        if name not in {t[0] for t in TRAINING}:
            lines.append(f"| {name.split('-')[1]} | - | - | {why} | | | | |")

    def peak(name: str) -> str:
        if name not in rows:
            return "not measured"
        return f"{max(r['peak_rss_mb'] for r in rows[name]) / 1024:.2f} GiB"

    def speed_ratio(label: str, name: str) -> str:
        if name not in rows or label not in memory_speed:
            return "not measured"
        return f"{rows[name][0]['crystals_per_second'] / memory_speed[label]:.2f}x"

    def build_speedup(tag: str) -> float:
        rate = {n: builds[f"build-{tag}-{n}"]["graphs_per_second"] for n in (1, 2)}
        return rate[2] / rate[1]

    build_goal = ", ".join(
        f"{build_speedup(tag):.2f}x at {label}"
        for tag, label in (("5k", "5,000"), ("33k", "33,370"))
        if f"build-{tag}-1" in builds and f"build-{tag}-2" in builds
    )
    environment = one["environment"]
    commits = {
        name: measured["environment"]["commit"]
        for name, measured in [*builds.items(), *((n, r[0]) for n, r in rows.items())]
    }
    others = {n: c for n, c in commits.items() if c != environment["commit"]}
    lines += [
        "",
        f"Goals (issue 29): on-disk peak RSS below 4 GiB and flat in the number of crystals: "
        f"{peak('train-5k-disk')} at 5,000, {peak('train-33k-disk')} at 33,370; throughput "
        f"within 10% of in memory: {speed_ratio('5,000', 'train-5k-disk')} at 5,000, "
        f"{speed_ratio('33,370', 'train-33k-disk')} at 33,370; store built at least 1.8x "
        f"faster on 2 processes: {build_goal}; "
        f"DDP per-rank RSS below the one-process in-memory RSS / 2: "
        + "; ".join(
            f"{label}: {peak(f'train-{tag}-disk-ddp2')} per rank against "
            + (f"{memory_rss[label] / 2:.2f} GiB" if label in memory_rss else "not measured")
            for tag, label in (("5k", "5,000"), ("33k", "33,370"))
        )
        + ". Rates of a 2-process DDP row are the sum over ranks; two processes share the "
        "machine's 2 cores (one thread each).",
        "",
        f"Measured {environment['date'][:10]} at {environment['commit']}"
        + "".join(f" ({name} at {commit})" for name, commit in others.items())
        + ", torch "
        f"{environment['torch']}, {environment['cores']} cores ({environment['cpu']}), one "
        "measurement at a time; `benchmarks/data_store/run.sh`.",
    ]
    return "\n".join(lines)


def summary() -> tuple[str, str, str]:
    """The README row: (matgnn, reference, budget) at the largest size measured."""
    tag, label = next(
        ((t, lab) for t, lab in (("33k", "33,370"), ("5k", "5,000"))
         if stored(f"train-{t}-disk") and stored(f"train-{t}-memory")),
        (None, None),
    )  # fmt: skip
    if tag is None:
        raise SystemExit("no disk/memory training pair is stored; run benchmarks/data_store/run.sh")
    disk, memory = load(f"train-{tag}-disk"), load(f"train-{tag}-memory")
    speed = disk["crystals_per_second"] / memory["crystals_per_second"]
    build = load("build-5k-2")["graphs_per_second"] / load("build-5k-1")["graphs_per_second"]
    return (
        f"ALIGNN on {label} crystals: peak RSS {disk['peak_rss_mb'] / 1024:.1f} GiB from the "
        f"disk store vs {memory['peak_rss_mb'] / 1024:.1f} GiB in memory, at {speed:.2f}x the "
        f"in-memory throughput; store built {build:.2f}x faster on 2 processes (5,000 "
        "crystals)",
        "goals of issue 29: < 4 GiB and flat, throughput within 10%, build >= 1.8x",
        "20 training steps of batch 64 per row",
    )


def collect(_: Path) -> None:
    raise SystemExit("measure.py writes results/ itself; there is nothing to collect")


def main() -> None:
    from catalog import table_script

    table_script(__doc__.split("\n\n")[0], "data-store", collect, table)


if __name__ == "__main__":
    main()
