"""iMatGen's Table 1 through the trained autoencoders: each structure's images passed through
the cell and basis autoencoders, the crystal decoded from the reconstructed images and compared
with the original (``matgnn.design.evaluate``).

    bash benchmarks/design/run.sh                      # train both autoencoders, then --run
    python benchmarks/design/autoencoders.py --run --cell RUN --basis RUN [--data FILE]
    python benchmarks/design/autoencoders.py [--update docs/results/inverse-design.md]

``--run`` reads the two runs' best checkpoints and their common split (``split.json``; two
runs with different splits are refused), chooses the decoding of basis images (peak threshold
and merge saddle) on the validation structures and reads the overlap cut from the same
decodings (``matgnn.design.decoding``; stored in the basis run as ``decoding.json``, where the
generator's decoding finds it), reconstructs every test
structure, every held-out known V-O structure and ``--train-rows`` seeded training structures
(then the test structures twice more, each time with one autoencoder alone and the other
image left exact, to show which autoencoder the failures come from), and writes one row per
structure to ``benchmarks/design/results/autoencoders.csv.gz`` with a header line naming the
checkpoints, the epoch of each, each run's training budget and the threshold's choice. The
table is written from that file alone; a missing file fails.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

REPOSITORY = Path(__file__).resolve().parents[2]
if str(REPOSITORY) not in sys.path:
    sys.path.insert(0, str(REPOSITORY))

from benchmarks.catalog import publish  # noqa: E402

RESULTS = REPOSITORY / "benchmarks" / "design" / "results" / "autoencoders.csv.gz"
BLOCK = "imatgen-autoencoders"
#: the paper's fully reconstructed structures (Noh et al. 2019, as issue 27 quotes it)
PAPER_FULL = (10079, 10981)
PARTS = ("train", "test", "held_out")
#: the test structures again with one autoencoder only, the other image left exact (which
#: autoencoder the failures come from): part -> (cell through its network, basis through its)
ALONE = {"test_cell_alone": (True, False), "test_basis_alone": (False, True)}
LABELS = {
    "train": "train",
    "test": "test",
    "held_out": "held out",
    "test_cell_alone": "test, the cell autoencoder alone (basis images exact)",
    "test_basis_alone": "test, the basis autoencoder alone (cell image exact)",
}


def _run_facts(run_dir: Path) -> dict[str, object]:
    import torch

    best = run_dir / "checkpoints" / "best.ckpt"
    if not best.is_file():
        raise FileNotFoundError(f"{best} is missing: has {run_dir} trained?")
    checkpoint = torch.load(best, map_location="cpu", weights_only=True)
    hyper = checkpoint["hyper_parameters"]
    network = hyper["network"]
    from matgnn.design.run import read_metrics

    metrics = read_metrics(run_dir)
    record = run_dir / "result.json"
    budget = json.loads(record.read_text()) if record.is_file() else {}
    # the learning rate as the run's last start set it (its logger's hparams.yaml; the best
    # checkpoint may predate that start) and as it was logged at the last epoch
    starts = sorted(
        (run_dir / "logs").glob("version_*/hparams.yaml"),
        key=lambda f: int(f.parent.name.removeprefix("version_")),
    )
    last_start = yaml.safe_load(starts[-1].read_text()) if starts else hyper
    logged = metrics.dropna(subset=["lr"]) if "lr" in metrics else metrics.iloc[:0]
    return {
        "checkpoint": str(best),
        "epoch": int(checkpoint["epoch"]),
        "lr": last_start.get("lr"),
        "lr_decay": last_start.get("lr_decay"),
        "lr_last": (int(logged["epoch"].iloc[-1]), float(logged["lr"].iloc[-1]))
        if len(logged)
        else None,
        "width": int(network.get("width", 64)),
        "train_rows": int(hyper["provenance"]["train_rows"]),
        "epochs_logged": int(metrics["epoch"].max()) + 1,
        "wall_time_s": budget.get("wall_time_s") or "unknown",
        # Lightning's timer over every start; a start killed before its record is counted
        # there, not in the wall time (matgnn.design.run)
        "train_time_s": budget.get("train_time_s"),
        "starts": budget.get("starts"),
        "unfinished_starts": budget.get("unfinished_starts") or 0,
    }


def _budget(facts: dict[str, object]) -> str:
    """One run's time as its record states it."""
    if facts.get("wall_time_s") not in (None, "unknown"):
        return f"{facts['wall_time_s']} s wall time"
    if facts.get("train_time_s") is not None:
        killed = facts.get("unfinished_starts") or 0
        return (
            f"{facts['train_time_s']:.0f} s of training by Lightning's timer over "
            f"{facts['starts']} starts, {killed} killed before its record: wall time unknown"
        )
    return "wall time unknown"


def _schedule(facts: dict[str, object]) -> str:
    """One run's learning rate as its last start set it and its log states it."""
    if facts.get("lr") is None:  # results written before the learning rate was recorded
        return ""
    decay = facts.get("lr_decay")
    if not decay:
        return f", Adam lr {facts['lr']:g} constant"
    text = (
        f", Adam lr {facts['lr']:g} to epoch {decay['start']}, then a half cosine toward "
        f"{decay['min']:g} over {decay['epochs']} epochs"
    )
    if facts.get("lr_last"):
        epoch, lr = facts["lr_last"]
        text += f" ({lr:.2g} at the last epoch run, {epoch})"
    return text


def run(
    cell_run: Path, basis_run: Path, data_file: str, train_rows: int, results: Path = RESULTS
) -> None:
    from matgnn.design.decoding import SADDLES, THRESHOLDS, Decoding, write_decoding
    from matgnn.design.evaluate import reconstruct, sweep_decodings
    from matgnn.design.records import write_records
    from matgnn.design.run import autoencoders_split, load_vo_dataset
    from matgnn.design.training import checkpoint_digest, image_spec_of, load_autoencoder

    shared = autoencoders_split(cell_run, basis_run)
    data = load_vo_dataset(data_file, "", "")
    index = {sid: row for row, sid in enumerate(data.ids)}
    rng = np.random.default_rng(0)
    train = shared["train"]
    chosen = {
        "train": sorted(rng.choice(len(train), min(train_rows, len(train)), replace=False)),
        "test": range(len(shared["test"])),
        "held_out": range(len(shared["held_out"])),
    }
    cell = load_autoencoder(cell_run / "checkpoints" / "best.ckpt", "cell")
    basis = load_autoencoder(basis_run / "checkpoints" / "best.ckpt", "basis")
    spec = image_spec_of(basis)
    if image_spec_of(cell) != spec:
        raise ValueError(f"{cell_run} and {basis_run} were trained on different images")
    start = time.perf_counter()
    # the decoding of the basis images (peak threshold, merge saddle), chosen on the validation
    # structures through both autoencoders and stored in the basis run (what the generator's
    # decoding uses too), with the overlap cut read from the same decodings
    val_rows = [index[sid] for sid in shared["val"]]
    if not val_rows:
        raise ValueError(
            f"{basis_run / 'split.json'}: no validation structures to choose the decoding on"
        )
    settings = [(threshold, saddle) for threshold in THRESHOLDS for saddle in SADDLES]
    sweep = sweep_decodings(data, val_rows, cell, basis, spec, settings)
    chosen_on = f"the {len(val_rows)} validation structures through both autoencoders"
    checkpoints = {
        "basis_sha256": checkpoint_digest(basis_run / "checkpoints" / "best.ckpt"),
        "cell_run": str(cell_run),
        "cell_sha256": checkpoint_digest(cell_run / "checkpoints" / "best.ckpt"),
    }
    decoding = write_decoding(basis_run, sweep, chosen_on, checkpoints)
    spec = Decoding(decoding["peak_threshold"], decoding["merge_saddle"]).applied(spec)
    print(
        f"peak threshold {spec.peak_threshold:g}, merge saddle {spec.merge_saddle}, overlap cut "
        f"{decoding.get('overlap_cut')} ({time.perf_counter() - start:.0f} s)"
    )
    frames = []
    networks = {part: (cell, basis) for part in PARTS}
    networks.update(
        {
            part: (cell if through_cell else None, basis if through_basis else None)
            for part, (through_cell, through_basis) in ALONE.items()
        }
    )
    for part, (cell_network, basis_network) in networks.items():
        source = "test" if part in ALONE else part
        rows = [index[shared[source][k]] for k in chosen[source]]
        frame = reconstruct(data, rows, cell_network, basis_network, spec)
        frame.insert(0, "part", part)
        frames.append(frame)
        print(f"{part}: {len(rows)} structures, {time.perf_counter() - start:.0f} s", flush=True)
    facts = {"cell": _run_facts(cell_run), "basis": _run_facts(basis_run)}
    facts["basis"]["decoding"] = decoding
    write_records(pd.concat(frames), results, facts)
    print(f"wrote {results}")


def table(results: Path = RESULTS) -> str:
    from matgnn.design.evaluate import PARAMETERS, summarise

    if not results.is_file():
        raise FileNotFoundError(f"{results} is missing: run python {Path(__file__).name} --run")
    from matgnn.design.records import read_records

    flags = ("decoded", "same_composition", "fully_reconstructed", "known_vo")
    frame, facts = read_records(results, booleans=flags, texts=["reason"])
    if "matches" in frame:  # rows written before the StructureMatcher column have none
        frame["matches"] = frame["matches"].astype(str) == "True"
    lines = [
        "| | structures | decoded | RMSE a / b / c (Å) | RMSE α / β / γ (°) "
        "| position RMSE (Å, structures) | fully reconstructed |"
        + (" matched by StructureMatcher |" if "matches" in frame else ""),
        "|---|---:|---:|---:|---:|---:|---:|" + ("---:|" if "matches" in frame else ""),
    ]

    def row(part: str) -> str:
        s = summarise(frame[frame["part"] == part])
        lengths = " / ".join(f"{s[f'rmse_{p}']:.3g}" for p in PARAMETERS[:3])
        angles = " / ".join(f"{s[f'rmse_{p}']:.3g}" for p in PARAMETERS[3:])
        return (
            f"| {LABELS[part]} | {s['structures']} | {s['decoded']} | {lengths} "
            f"| {angles} | {s['position_rmse']:.3g} ({s['same_composition']}) "
            f"| {s['fully_reconstructed']} ({100 * s['fully_reconstructed_fraction']:.1f}%) |"
            + (f" {s['matches']} |" if "matches" in s else "")
        )

    lines += [row(part) for part in PARTS]
    full, total = PAPER_FULL
    lines.append(
        f"| paper (train and test) | {total:,} | | | | | {full:,} ({100 * full / total:.1f}%) |"
        + (" |" if "matches" in frame else "")
    )
    # results written before the one-autoencoder rows have none
    lines += [row(part) for part in ALONE if (frame["part"] == part).any()]
    budget = "; ".join(
        f"{kind} autoencoder: width {f['width']}, best checkpoint epoch {f['epoch']} "
        f"({f['epochs_logged']} epochs run, {f['train_rows']:,} training structures, "
        f"{_budget(f)}{_schedule(f)})"
        for kind, f in facts.items()
    )
    return "\n".join(lines) + f"\n\nCheckpoints: {budget}.\n\n" + _decoding(facts["basis"])


def _decoding(basis: dict) -> str:
    """The decoding the rows were decoded at, and the validation counts it was chosen on
    (results written before the choice: the images' default threshold, 0.3; before merging
    was compared: thresholds alone)."""
    from matgnn.design.images import ImageSpec

    decoding = basis.get("decoding")
    if not decoding:
        default = ImageSpec().peak_threshold
        return f"Decoded at the image geometry's peak threshold, {default:g} (chosen on no data)."
    saddle = decoding.get("merge_saddle")
    merged = (
        "no maximum merged"
        if saddle is None
        else f"a maximum merged into a higher one of its channel where the straight path "
        f"between them stays above {saddle:g} of its height"
    )
    lines = [
        f"Decoded at a peak threshold of {decoding['peak_threshold']:g} in the basis images "
        f"(an exact image's atom peaks are at least 0.74 high), {merged}, chosen on "
        f"{decoding['chosen_on']} ({decoding['criterion']}; the basis run's `decoding.json`). "
        "Fully reconstructed / matched by StructureMatcher (every atom back), per setting:",
        "",
    ]
    grid: dict[str, dict[str, str]] = {}
    for name, counts in decoding["counts"].items():
        threshold, _, saddle_name = name.partition("/")
        cell = (
            f"{counts['fully_reconstructed']} / {counts['matches']} ({counts['same_composition']})"
        )
        grid.setdefault(threshold, {})[saddle_name or "none"] = cell
    # no merging first, then from the least merging (highest saddle) down
    found = {k for row in grid.values() for k in row}
    saddles = sorted(found, key=lambda k: -2.0 if k == "none" else -float(k))
    lines.append("| peak threshold | " + " | ".join(f"merge saddle {k}" for k in saddles) + " |")
    lines.append("|---:|" + "---:|" * len(saddles))
    for threshold, row in grid.items():
        lines.append(f"| {threshold} | " + " | ".join(row.get(k, "") for k in saddles) + " |")
    if decoding.get("overlap_cut") is not None:
        o = decoding["overlap"]
        lines += [
            "",
            f"Overlap cut for generated crystals: **{decoding['overlap_cut']:g} Å**, below "
            f"which {o['below_cut']} of the {o['matched_crystals']} validation crystals decoded "
            f"at this setting and matched to their original have two atoms (the "
            f"{100 * o['quantile']:g}% quantile, floored to 0.01 Å; shortest "
            f"{o['shortest_matched']:.2f} Å, median {o['median_matched']:.2f} Å).",
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", action="store_true")
    parser.add_argument("--cell", type=Path)
    parser.add_argument("--basis", type=Path)
    parser.add_argument("--data", default="sample", help="'sample' or a VODataset .json.gz")
    parser.add_argument("--train-rows", type=int, default=500)
    parser.add_argument("--update", type=Path, nargs="*", default=[])
    parser.add_argument("--results", type=Path, default=RESULTS, help="per-structure rows")
    args = parser.parse_args(argv)
    if args.run:
        if args.cell is None or args.basis is None:
            parser.error("--run needs --cell and --basis run folders")
        run(args.cell, args.basis, args.data, args.train_rows, args.results)
    publish(table(args.results), args.update, BLOCK)


if __name__ == "__main__":
    main()
