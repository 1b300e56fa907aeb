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

BUILDS = {"build-5k-1": 1, "build-5k-2": 2}
#: (name, rows label, store, processes)
TRAINING = [
    ("train-5k-memory", "5,000", "memory", 1),
    ("train-5k-disk", "5,000", "disk", 1),
    ("train-33k-memory", "33,370", "memory", 1),
    ("train-33k-disk", "33,370", "disk", 1),
    ("train-33k-disk-ddp2", "33,370", "disk", 2),
]
#: planned rows not measured yet: name -> why
PENDING: dict[str, str] = {
    "train-130k": (
        "a 130k-crystal set (e.g. every structure source in ../shared/data together) is not "
        "assembled yet"
    ),
}


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
    builds = {name: load(name) for name in BUILDS}
    one, two = builds["build-5k-1"], builds["build-5k-2"]
    lines = [
        "Graph store build (ALIGNN graphs of the first 5,000 rows of the partial "
        "`matbench_mp_e_form` copy; the source loaded before the clock starts):",
        "",
        "| processes | graphs/s | speed-up | store on disk | peak RSS (parent) |",
        "|---:|---:|---:|---:|---:|",
    ]
    for name, processes in BUILDS.items():
        b = builds[name]
        lines.append(
            f"| {processes} | {b['graphs_per_second']:.1f} | "
            f"{b['graphs_per_second'] / one['graphs_per_second']:.2f}x | "
            f"{b['store_mb']:.0f} MiB ({b['store_bytes_per_graph'] / 1024:.1f} KiB/graph) | "
            f"{b['peak_rss_mb'] / 1024:.2f} GiB |"
        )
    lines += [
        "",
        "ALIGNN training, batch 64, after the graphs are built (store or cache); peak RSS of "
        "each process over the whole run, data loading included; throughput over 20 steps "
        "after 3 warm-up steps:",
        "",
        "| crystals | graphs | processes | peak RSS per process | setup | crystals/s | "
        "vs in memory |",
        "|---:|---|---:|---:|---:|---:|---:|",
    ]
    memory_speed = {}
    memory_rss = {}
    rows = {}
    for name, label, store, processes in TRAINING:
        ranks = load_ranks(name, processes)
        rows[name] = ranks
        speed = (
            sum(r["crystals_per_second"] for r in ranks)
            if processes > 1
            else ranks[0]["crystals_per_second"]
        )
        rss = max(r["peak_rss_mb"] for r in ranks) / 1024
        if store == "memory":
            memory_speed[label], memory_rss[label] = speed, rss
        ratio = f"{speed / memory_speed[label]:.2f}x" if label in memory_speed else "-"
        lines.append(
            f"| {label} | {store} | {processes} | {rss:.2f} GiB | "
            f"{max(r['setup_seconds'] for r in ranks):.0f} s | {speed:.1f} | {ratio} |"
        )
    for name, why in PENDING.items():
        lines.append(f"| {name.split('-')[1]} | - | - | not measured: {why} | | | |")
    disk = [
        max(r["peak_rss_mb"] for r in rows[n]) / 1024
        for n, _, s, p in TRAINING
        if s == "disk" and p == 1
    ]
    ddp = max(r["peak_rss_mb"] for r in rows["train-33k-disk-ddp2"]) / 1024
    environment = one["environment"]
    lines += [
        "",
        f"Goals (issue 29): on-disk peak RSS below 4 GiB: largest {max(disk):.2f} GiB; flat in "
        f"the number of crystals: {disk[0]:.2f} GiB at 5,000, {disk[1]:.2f} GiB at 33,370; "
        f"build on 2 processes at least 1.8x: "
        f"{two['graphs_per_second'] / one['graphs_per_second']:.2f}x; DDP per-rank RSS below "
        f"the in-memory RSS / 2 ({memory_rss['33,370'] / 2:.2f} GiB): {ddp:.2f} GiB.",
        "",
        f"Measured {environment['date'][:10]} at {environment['commit']}, torch "
        f"{environment['torch']}, {environment['cores']} cores ({environment['cpu']}), one "
        "measurement at a time; `benchmarks/data_store/run.sh`.",
    ]
    return "\n".join(lines)


def summary() -> tuple[str, str, str]:
    """The README row: (matgnn, reference, budget)."""
    disk = max(r["peak_rss_mb"] for r in load_ranks("train-33k-disk", 1)) / 1024
    memory = load("train-33k-memory")
    speed = load("train-33k-disk")["crystals_per_second"] / memory["crystals_per_second"]
    build = load("build-5k-2")["graphs_per_second"] / load("build-5k-1")["graphs_per_second"]
    return (
        f"ALIGNN on 33,370 crystals: peak RSS {disk:.1f} GiB from the disk store vs "
        f"{memory['peak_rss_mb'] / 1024:.1f} GiB in memory, at {speed:.2f}x the in-memory "
        f"throughput; store built {build:.2f}x faster on 2 processes",
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
