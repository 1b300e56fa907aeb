"""Capped training batches against batches of 64 at equal epochs: does ``task.data.max_batch_rows``
cost accuracy? Docs block ``data-store-accuracy`` (docs/results/speed.md).

    PYTHONPATH=. .venv/bin/python benchmarks/mp2018_5k.py --models cgcnn --epochs 30 \\
        --seeds 0 1 2 --max-batch-rows 9000 --data-dir ../shared/data \\
        --out runs/mp2018_5k_capped --predictions runs/mp2018_5k_capped/predictions
    python benchmarks/data_store/capped_accuracy.py --collect runs/mp2018_5k_capped \\
        --update docs/results/speed.md

CGCNN on ``mp2018_eform`` with 5,000 training crystals (``benchmarks/mp2018_5k.py``: the seed
draws the split and the initial weights), 30 epochs, fp32, capped at 9,000 feature rows (atoms
+ bonds), chosen to give about as many more steps per epoch as ALIGNN's 150,000-row cap of the
memory table does (the table shows the batches per epoch each run logged). The uncapped runs
are the fp32 runs of the bf16 table (``speed-precision``), paired by seed: the same seed, so
the same split, and the same 625 test crystals (checked here). Every MAE is computed from the
runs' stored test predictions and must agree with the logged one.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE.parent / "results"
sys.path.insert(0, str(HERE.parent))  # benchmarks/: catalog.py, speed_tables.py
from catalog import table_script  # noqa: E402
from speed_tables import span, stored_test_results  # noqa: E402

MODEL = "cgcnn"
CAPPED = RESULTS / "mp2018_5k_cgcnn_capped.csv"
CAPPED_PREDICTIONS = RESULTS / "mp2018_5k_capped_predictions"
UNCAPPED = RESULTS / "mp2018_5k_cgcnn_precision.csv"  # its fp32 rows
#: the capped runs: when, at which commit, where (from their log)
RUN = (
    "2026-12-05, first on f06bc7f with the changes committed as b9e4e79, then again at 071d976 "
    "after f97285d removed the subnormal floats of the radial basis (bitwise the same test "
    "predictions; the times are the second run's, both columns), one run at a time on a 2-core "
    "Intel Xeon; s / epoch is each run's median"
)


def _capped():
    import pandas as pd

    if not CAPPED.is_file():
        raise FileNotFoundError(f"{CAPPED}: not measured (see this script's docstring)")
    frame = pd.read_csv(CAPPED)
    if set(frame["precision"]) != {"32-true"}:
        raise ValueError(f"{CAPPED}: the capped runs must be fp32 (32-true) like the uncapped")
    caps = set(frame["max_batch_rows"])
    if len(caps) != 1 or not all(int(c) > 0 for c in caps):
        raise ValueError(f"{CAPPED}: the runs must share one cap, found {sorted(caps)}")
    return frame, int(caps.pop())


def table() -> str:
    import pandas as pd

    capped, cap = _capped()
    uncapped = pd.read_csv(UNCAPPED)
    uncapped = uncapped[uncapped["precision"] == "32-true"].reset_index(drop=True)
    suffix = f"_cap{cap}"
    capped["mae"], capped["test_ids"] = stored_test_results(
        MODEL, capped, CAPPED_PREDICTIONS, suffix
    )
    uncapped["mae"], uncapped["test_ids"] = stored_test_results(MODEL, uncapped)
    seeds = sorted(capped["seed"])
    if sorted(uncapped["seed"]) != seeds or capped["seed"].duplicated().any():
        raise ValueError(
            f"{CAPPED} seeds {seeds} against the uncapped fp32 seeds {sorted(uncapped['seed'])}"
        )
    if set(capped["epochs"]) != set(uncapped["epochs"]) or capped["epochs"].nunique() != 1:
        raise ValueError("capped and uncapped runs must train for the same number of epochs")
    capped, uncapped = capped.set_index("seed"), uncapped.set_index("seed")
    for seed in seeds:  # a pair shares its split: the same 625 test crystals
        if capped.loc[seed, "test_ids"] != uncapped.loc[seed, "test_ids"]:
            raise ValueError(f"seed {seed}: the capped and uncapped runs test other crystals")
    epochs = int(capped["epochs"].iloc[0])

    def line(label: str, runs, reference=None) -> str:
        maes = runs.loc[seeds, "mae"].to_numpy()
        text = " / ".join(f"{v:.4f}" for v in maes)
        text += f" (mean {maes.mean():.4f}, sd {maes.std(ddof=1):.4f})" if len(maes) > 1 else ""
        paired = ""
        if reference is not None:
            diffs = maes - reference.loc[seeds, "mae"].to_numpy()
            paired = " / ".join(f"{d:+.4f}" for d in diffs) + f" (mean {diffs.mean():+.4f})"
        batches = span(runs.loc[seeds, "batches_per_epoch"].astype(int), "d")
        times = span(runs.loc[seeds, "train_s_per_epoch"])
        return f"| {label} | {batches} | {text} | {paired} | {times} |"

    return "\n".join(
        [
            f"CGCNN, `mp2018_eform`, 5,000 / 625 / 625 crystals, {epochs} epochs, fp32, "
            f"{len(seeds)} seeds ({', '.join(map(str, seeds))}; a seed draws split and "
            "weights, so each pair shares its test crystals); MAEs computed from the stored "
            "test predictions:",
            "",
            "| training batches | batches per epoch | test MAE (eV/atom) by seed | capped - "
            "uncapped by seed | s / epoch |",
            "|---|---:|---|---:|---:|",
            line("64 crystals", uncapped),
            line(f"capped at {cap:,} feature rows", capped, uncapped),
            "",
            f"Capped runs: {RUN}; `{CAPPED.relative_to(HERE.parents[1])}` and "
            f"`{CAPPED_PREDICTIONS.relative_to(HERE.parents[1])}/`; uncapped: the fp32 runs of "
            "the bf16 table (same machine type, one run at a time).",
        ]
    )


def collect(runs: Path) -> None:
    """Copy the capped runs' CSV and predictions out of an ``mp2018_5k.py --out`` folder."""
    shutil.copyfile(runs / "mp2018_5k.csv", CAPPED)
    CAPPED_PREDICTIONS.mkdir(exist_ok=True)
    for path in sorted((runs / "predictions").glob(f"{MODEL}_*_cap*.csv.gz")):
        shutil.copyfile(path, CAPPED_PREDICTIONS / path.name)


def main() -> None:
    table_script(__doc__.split("\n\n")[0], "data-store-accuracy", collect, table)


if __name__ == "__main__":
    main()
