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

import numpy as np

HERE = Path(__file__).resolve().parent
REPOSITORY = HERE.parents[1]
sys.path.insert(0, str(REPOSITORY / "benchmarks"))  # catalog.py

#: the memory of the machine the union rows ran on (23 GiB: ``free -g`` there)
UNION_MACHINE_GIB = 23
#: the label of the rows of every structure source together (``measure.py --union``)
UNION = "every source"
#: name -> (rows label, processes); the 33k pair is shown once stored
BUILDS = {
    "build-5k-1": ("5,000", 1),
    "build-5k-2": ("5,000", 2),
    "build-33k-1": ("33,370", 1),
    "build-33k-2": ("33,370", 2),
    "build-union-2": (UNION, 2),
}
#: (name, rows label, store, processes)
TRAINING = [
    ("train-5k-memory", "5,000", "memory", 1),
    ("train-5k-disk", "5,000", "disk", 1),
    ("train-5k-disk-ddp2", "5,000", "disk", 2),
    ("train-5k-sampled-memory", "5,000 sampled", "memory", 1),
    ("train-5k-sampled-disk", "5,000 sampled", "disk", 1),
    ("train-33k-memory", "33,370", "memory", 1),
    ("train-33k-disk", "33,370", "disk", 1),
    ("train-33k-disk-ddp2", "33,370", "disk", 2),
    ("train-union-memory", UNION, "memory", 1),
    ("train-union-disk", UNION, "disk", 1),
]
#: (name, rows label, store, processes) of the runs with training batches capped in feature
#: rows (``--max-batch-rows``, the same cap for every one)
CAPPED = [
    ("train-5k-sampled-disk-capped", "5,000 sampled", "disk", 1),
    ("train-33k-memory-capped", "33,370", "memory", 1),
    ("train-33k-disk-capped", "33,370", "disk", 1),
    ("train-33k-disk-ddp2-capped", "33,370", "disk", 2),
    ("train-union-disk-capped", UNION, "disk", 1),
]
#: a whole epoch of the capped 5,000 sampled crystals from the store, with its validation
#: pass (``--epoch``): the peak of a real epoch, not of 20 steps
EPOCH = "epoch-5k-sampled-disk-capped"
#: planned rows not measured yet: name -> why (a stored measurement is shown all the same)
PENDING: dict[str, str] = {
    "train-union-memory": (
        "not run: in memory the 33,370 crystals held {setup:.1f} GiB by the end of setup and "
        "peaked at {peak:.2f} GiB; four times the rows would need about {setup4:.0f} GiB by the "
        "end of setup alone (an extrapolation, not measured), too close to this machine's {ram} "
        "GiB to attempt"
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


def machine(measured: dict) -> tuple:
    """What a speed depends on: the CPU, its cores and the torch build (not the threads: a
    DDP rank runs one by design)."""
    env = measured["environment"]
    return env["cpu"], env["cores"], env["torch"]


def table() -> str:
    # the 5,000-crystal pair is required; the 33,370 one is shown when both are stored
    pairs = {n for n in BUILDS if stored(n[:-1] + "1") and stored(n[:-1] + "2")}
    builds = {n: load(n) for n in BUILDS if n.startswith("build-5k") or n in pairs}
    builds["build-union-2"] = load("build-union-2")
    lines = [
        "Graph store build (ALIGNN graphs of the first rows of the partial "
        "`matbench_mp_e_form` copy, or of every structure source together, "
        "`benchmarks/data_store/union.py`; shards of 250; the source loaded before the clock "
        "starts):",
        "",
        "| crystals | processes | graphs/s | speed-up | store on disk | peak RSS (parent) | "
        "machine |",
        "|---:|---:|---:|---:|---:|---:|---|",
    ]
    for name, b in builds.items():
        label, processes = BUILDS[name]
        single = builds.get(name[:-1] + "1")
        if single is None:
            speedup = "-"
        elif machine(single) == machine(b):
            speedup = f"{b['graphs_per_second'] / single['graphs_per_second']:.2f}x"
        else:
            speedup = "other machine"
        if label == UNION:
            label = f"{b['graphs']:,} ({UNION})"
        lines.append(
            f"| {label} | {processes} | {b['graphs_per_second']:.0f} | {speedup} | "
            f"{b['store_mb']:.0f} MiB ({b['store_bytes_per_graph'] / 1024:.1f} KiB/graph) | "
            f"{b['peak_rss_mb'] / 1024:.2f} GiB | {b['environment']['cpu']} |"
        )
    cells = load("cell-sizes")
    first_run = load("train-5k-memory")
    timed = first_run["steps"]
    steps = timed + first_run["warmup"]
    first, sampled, everything = (cells[k]["mean_sites"] for k in ("first", "sampled", "all"))
    lines += [
        "",
        "ALIGNN training, batch 64, after the graphs are built (store or cache); peak RSS of "
        "each process over the whole run, data loading included; RSS after a step: the "
        "largest resident size read right after an optimiser step (what the process holds "
        f"between steps), and the batch with the most line-graph edges, over the {steps} steps "
        "(rows measured before this record was kept show '-'); throughput over "
        f"{timed} steps after {steps - timed} warm-up steps:",
        "",
        f"Crystals: the first rows of the partial copy (on average {first:.1f} sites per cell "
        f"in the first 5,000, {everything:.1f} in all 33,370), or 5,000 rows drawn at random "
        f"from all of them (`--sample`, seed 0, {sampled:.1f} sites per cell: the whole set's "
        "mix of cell sizes, so that its peak compares data sizes at the same batch sizes).",
        "",
        "| crystals | graphs | processes | peak RSS per process | peak RSS by the end of "
        "setup | RSS after a step (largest) | largest batch (atoms / angles) | setup | "
        "crystals/s | vs in memory | machine |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    memory: dict[str, list[dict]] = {}
    rows: dict[str, list[dict]] = {}
    for name, label, store, processes in TRAINING:
        if name in PENDING and not stored(name, processes):
            in_memory = load("train-33k-memory")
            why = PENDING[name].format(
                setup=in_memory["setup_peak_rss_mb"] / 1024,
                setup4=4 * in_memory["setup_peak_rss_mb"] / 1024,
                peak=in_memory["peak_rss_mb"] / 1024,
                ram=UNION_MACHINE_GIB,
            )
            lines.append(f"| {label} | {store} | {processes} | {why} | | | | | | | |")
            continue
        ranks = load_ranks(name, processes)
        rows[name] = ranks
        if store == "memory":
            memory[label] = ranks
        shown = _union_label(ranks) if label == UNION else label
        lines.append(
            f"| {shown} | {store} | {processes} | {_peak(ranks)} | "
            f"{max(r['setup_peak_rss_mb'] for r in ranks) / 1024:.2f} GiB | "
            f"{_after_step(ranks)} | {_largest_batch(ranks)} | "
            f"{_seconds(max(r['setup_seconds'] for r in ranks))} | {_speed(ranks):.1f} | "
            f"{_ratio(ranks, memory.get(label))} | {ranks[0]['environment']['cpu']} |"
        )
    unplaced = set(PENDING) - {t[0] for t in TRAINING}
    if unplaced:
        raise SystemExit(f"pending measurements {sorted(unplaced)} have no row in TRAINING")

    capped = _capped_rows(rows)
    epoch = load(EPOCH)
    lines += ["", *capped[0], "", _epoch_line(epoch, capped[1])]
    rows.update(capped[1])
    rows[EPOCH] = [epoch]

    def peak(name: str) -> str:
        if name not in rows:
            return "not measured"
        return f"{_peak(rows[name])} ({rows[name][0]['environment']['cpu']})"

    def speed_ratio(label: str, name: str) -> str:
        if name not in rows or label not in memory:
            return "not measured"
        return _ratio(rows[name], memory[label])

    def build_speedup(tag: str) -> str:
        one, two = (builds[f"build-{tag}-{n}"] for n in (1, 2))
        if machine(one) != machine(two):
            return "other machines"
        return f"{two['graphs_per_second'] / one['graphs_per_second']:.2f}x"

    def half_memory(label: str, name: str) -> str:
        if label not in memory:
            return "not measured"
        if name in rows and machine(rows[name][0]) != machine(memory[label][0]):
            return "a measurement on another machine"
        return f"{max(r['peak_rss_mb'] for r in memory[label]) / 2048:.2f} GiB"

    build_goal = ", ".join(
        f"{build_speedup(tag)} at {label}"
        for tag, label in (("5k", "5,000"), ("33k", "33,370"))
        if f"build-{tag}-1" in builds and f"build-{tag}-2" in builds
    )

    def where(env: dict) -> str:
        return (
            f"{env['date'][:10]} at {env['commit']}, torch {env['torch']}, {env['cores']} "
            f"cores ({env['cpu']})"
        )

    places: dict[str, list[str]] = {}
    for name, measured in [
        *builds.items(), *((n, r[0]) for n, r in rows.items()), ("cell-sizes", cells)
    ]:  # fmt: skip
        places.setdefault(where(measured["environment"]), []).append(name)
    lines += [
        "",
        f"Goals (issue 29): on-disk peak RSS below 4 GiB and flat in the number of crystals: "
        f"{peak('train-5k-disk')} at 5,000 (first rows), {peak('train-5k-sampled-disk')} at "
        f"5,000 sampled, {peak('train-33k-disk')} at 33,370, {peak('train-union-disk')} at "
        f"{_union_label(rows['train-union-disk'])}; with batches capped at "
        f"{rows['train-33k-disk-capped'][0]['max_batch_rows']:,} rows "
        f"{peak('train-5k-sampled-disk-capped')} (a whole epoch with validation: "
        f"{peak(EPOCH)}), {peak('train-33k-disk-capped')} and "
        f"{peak('train-union-disk-capped')}; throughput "
        f"within 10% of in memory: {speed_ratio('5,000', 'train-5k-disk')} at 5,000, "
        f"{speed_ratio('5,000 sampled', 'train-5k-sampled-disk')} at 5,000 sampled, "
        f"{speed_ratio('33,370', 'train-33k-disk')} at 33,370; store built at least 1.8x "
        f"faster on 2 processes: {build_goal}; "
        f"DDP per-rank RSS below the one-process in-memory RSS / 2: "
        + "; ".join(
            f"{label}: {peak(f'train-{tag}-disk-ddp2')} per rank against "
            + half_memory(label, f"train-{tag}-disk-ddp2")
            for tag, label in (("5k", "5,000"), ("33k", "33,370"))
        )
        + f"; 33,370 with capped batches: {peak('train-33k-disk-ddp2-capped')} per rank "
        f"against {half_memory('33,370', 'train-33k-disk-ddp2-capped')} (uncapped in memory) "
        f"and {_half(rows['train-33k-disk-ddp2-capped'], rows['train-33k-memory-capped'])} "
        "(capped in memory)"
        + ". Rates of a 2-process DDP row are the sum over ranks; two processes share the "
        "machine's 2 cores (one thread each). A ratio is only taken between rows of the same "
        "machine (CPU, cores, torch); 'other machine' where they differ.",
        "",
        "Measured, one measurement at a time (`benchmarks/data_store/run.sh`): "
        + "; ".join(f"{', '.join(names)}: {at}" for at, names in places.items())
        + ".",
    ]
    return "\n".join(lines)


def _capped_rows(uncapped: dict[str, list[dict]]) -> tuple[list[str], dict[str, list[dict]]]:
    """The table of the capped runs (each against the uncapped run of the same crystals,
    store and processes), and their measurements by name."""
    rows = {name: load_ranks(name, processes) for name, _, _, processes in CAPPED}
    caps = {r.get("max_batch_rows") for ranks in rows.values() for r in ranks}
    if len(caps) != 1 or None in caps:
        raise SystemExit(
            f"the capped runs {sorted(rows)} need one cap, have {sorted(caps, key=str)}"
        )
    cap = caps.pop()
    lines = [
        f"The same training with batches capped at {cap:,} feature rows (atoms + bonds + "
        "angles; `task.data.max_batch_rows`, `--max-batch-rows`): as many batches per epoch "
        "as needed to keep every batch under the cap, at least as many as batches of 64 "
        "crystals (so at most 64 crystals per batch on average); every epoch the same number "
        "of batches, under DDP split between the processes. Same steps and warm-up as above; "
        "a step now sees fewer crystals, so compare crystals/s:",
        "",
        "| crystals | graphs | processes | batches per epoch (per process) | crystals per batch "
        "(mean) | largest batch (atoms / angles) | peak RSS per process | RSS after a step "
        "(largest) | crystals/s | vs uncapped | machine |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for name, label, store, processes in CAPPED:
        ranks = rows[name]
        steps = [s for r in ranks for s in r["per_step"]]
        biggest = max(s["atoms"] + s["edges"] + s["angles"] for s in steps)
        if biggest > cap:
            raise SystemExit(f"{name}: a batch of {biggest:,} rows, above the cap {cap:,}")
        if len({r["train_batches"] for r in ranks}) != 1:
            raise SystemExit(
                f"{name}: the processes stepped unequally: {[r['train_batches'] for r in ranks]}"
            )
        reference = uncapped.get(name.removesuffix("-capped"))
        shown = _union_label(ranks) if label == UNION else label
        lines.append(
            f"| {shown} | {store} | {processes} | {ranks[0]['train_batches']:,} | "
            f"{np.mean([s['crystals'] for s in steps]):.1f} | {_largest_batch(ranks)} | "
            f"{_peak(ranks)} | {_after_step(ranks)} | {_speed(ranks):.1f} | "
            f"{_ratio(ranks, reference)} | {ranks[0]['environment']['cpu']} |"
        )
    return lines, rows


def _epoch_line(epoch: dict, capped: dict[str, list[dict]]) -> str:
    """The whole-epoch measurement (:data:`EPOCH`) against the 20 steps of the same crystals."""
    steps = capped["train-5k-sampled-disk-capped"][0]
    cap = steps["max_batch_rows"]
    same = ("rows", "sampled", "store", "union", "devices")
    if not epoch.get("epoch") or epoch["max_batch_rows"] != cap or "validation" not in epoch:
        raise SystemExit(
            f"{EPOCH}: not a whole capped epoch with validation at the cap {cap:,} "
            "(measure.py --epoch)"
        )
    if any(epoch[k] != steps[k] for k in same):
        raise SystemExit(f"{EPOCH}: other crystals or store than train-5k-sampled-disk-capped")
    done = epoch["steps"] + epoch["warmup"]
    if done != epoch["train_batches"]:
        raise SystemExit(f"{EPOCH}: {done} steps of an epoch of {epoch['train_batches']}")
    validation = epoch["validation"]
    biggest = max(s["atoms"] + s["edges"] + s["angles"] for s in epoch["per_step"])
    if biggest > cap:
        raise SystemExit(f"{EPOCH}: a batch of {biggest:,} rows, above the cap {cap:,}")
    where = "" if machine(epoch) == machine(steps) else " (another machine than the 20 steps)"
    return (
        f"A whole epoch over the training split of the 5,000 sampled crystals from the store, "
        f"capped ({EPOCH}): {sum(s['crystals'] for s in epoch['per_step']):,} crystals in "
        f"{epoch['train_batches']:,} steps, the largest batch {_largest_batch([epoch])} "
        f"(atoms / angles), then validation on {validation['crystals']:,} crystals in "
        f"{validation['batches']} batches of up to 64 (not capped, no backward pass). Peak RSS "
        f"{validation['peak_rss_before_mb'] / 1024:.2f} GiB by the end of training, "
        f"{validation['peak_rss_after_mb'] / 1024:.2f} GiB after validation, against "
        f"{_peak([steps])} over the 20 steps of the row above; {_speed([epoch]):.1f} "
        f"crystals/s over the epoch after {epoch['warmup']} warm-up steps{where}."
    )


def _half(ranks: list[dict], of: list[dict]) -> str:
    """Half the peak of ``of`` (a one-process run), where ``ranks`` ran on its machine."""
    if machine(ranks[0]) != machine(of[0]):
        return "a measurement on another machine"
    return f"{max(r['peak_rss_mb'] for r in of) / 2048:.2f} GiB"


def _union_label(ranks: list[dict]) -> str:
    return f"{ranks[0]['graphs']:,} ({UNION})"


def _peak(ranks: list[dict]) -> str:
    return f"{max(r['peak_rss_mb'] for r in ranks) / 1024:.2f} GiB"


def _seconds(value: float) -> str:
    return f"{value:.0f} s" if value >= 10 else f"{value:.1f} s"


def _after_step(ranks: list[dict]) -> str:
    """The largest RSS right after a training step (the step's own transient freed): what
    the process holds between steps; "-" for a measurement without the per-step record."""
    steps = [s for r in ranks for s in r.get("per_step", [])]
    return f"{max(s['rss_mb'] for s in steps) / 1024:.2f} GiB" if steps else "-"


def _largest_batch(ranks: list[dict]) -> str:
    steps = [s for r in ranks for s in r.get("per_step", [])]
    if not steps:
        return "-"
    largest = max(steps, key=lambda s: s["angles"])
    return f"{largest['atoms']:,} / {largest['angles']:,}"


def _speed(ranks: list[dict]) -> float:
    return sum(r["crystals_per_second"] for r in ranks)


def _ratio(ranks: list[dict], reference: list[dict] | None) -> str:
    """Throughput against the in-memory row of the same crystals, on the same machine."""
    if reference is None:
        return "-"
    if machine(ranks[0]) != machine(reference[0]):
        return "other machine"
    return f"{_speed(ranks) / _speed(reference):.2f}x"


def _largest_pair(first: str, second: str) -> tuple[dict, dict, str]:
    """The two measurements ``first`` and ``second`` (name patterns, ``{}`` the size tag) at
    the largest size where both are stored, with the size's label; both from one machine."""
    for tag, label in (("33k", "33,370"), ("5k", "5,000")):
        names = first.format(tag), second.format(tag)
        if all(stored(n) for n in names):
            a, b = (load(n) for n in names)
            if machine(a) != machine(b):
                raise SystemExit(f"{names[0]} and {names[1]} come from other machines")
            return a, b, label
    raise SystemExit(f"no {first.format('*')} / {second.format('*')} pair is stored; run "
                     "benchmarks/data_store/run.sh")  # fmt: skip


def summary() -> tuple[str, str, str]:
    """The README row: (matgnn, reference, budget) at the largest size measured."""
    disk, memory, label = _largest_pair("train-{}-disk", "train-{}-memory")
    speed = disk["crystals_per_second"] / memory["crystals_per_second"]
    one, two, build_label = _largest_pair("build-{}-1", "build-{}-2")
    build = two["graphs_per_second"] / one["graphs_per_second"]
    capped, union = load("train-33k-disk-capped"), load("train-union-disk-capped")
    epoch = load(EPOCH)
    return (
        f"ALIGNN on {label} crystals: peak RSS {disk['peak_rss_mb'] / 1024:.1f} GiB from the "
        f"disk store vs {memory['peak_rss_mb'] / 1024:.1f} GiB in memory, at {speed:.2f}x the "
        f"in-memory throughput; with batches capped at {capped['max_batch_rows']:,} feature "
        f"rows {capped['peak_rss_mb'] / 1024:.1f} GiB, and {union['peak_rss_mb'] / 1024:.1f} "
        f"GiB on {union['graphs']:,} crystals (a whole capped epoch with validation on 5,000: "
        f"{epoch['peak_rss_mb'] / 1024:.1f} GiB); store built {build:.2f}x faster on 2 "
        f"processes ({build_label} crystals)",
        "goals of issue 29: < 4 GiB and flat, throughput within 10%, build >= 1.8x",
        "20 training steps of batch 64 (or capped) per row; one whole capped epoch",
    )


def collect(_: Path) -> None:
    raise SystemExit("measure.py writes results/ itself; there is nothing to collect")


def main() -> None:
    from catalog import table_script

    table_script(__doc__.split("\n\n")[0], "data-store", collect, table)


if __name__ == "__main__":
    main()
