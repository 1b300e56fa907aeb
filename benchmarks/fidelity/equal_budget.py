"""The same recipe learns as well (issue 25, part 4): matgnn's CGCNN and ALIGNN against the
reference trainers (cgcnn2's ``cgcnn-tr``; upstream alignn's ``train_for_folder``) at an equal
budget, from the runs of ``equal_budget.sh``.

    python benchmarks/fidelity/equal_budget.py [--collect <runs folder>] \
        [--update docs/results/fidelity.md]

``--collect`` reads ``<runs>/<task>/{matgnn,reference,reference_floored}/s<seed>`` (CGCNN; the
last: ``cgcnn-tr`` with its Gaussian tails floored as matgnn's, ``cgcnn_tr_floored.py``) and
``<runs>/alignn/<task>/{matgnn,upstream,matgnn_upstream_graph,
matgnn_layernorm_upstream_graph}/s<seed>`` (ALIGNN; the last two: matgnn's trainer on
upstream's graphs, ``upstream_graphs.py``, with the published BatchNorm network and with
``norm=layer``, upstream ``alignn_atomwise``'s network; and ``<implementation>_huge_pages``:
the same run with ``THP_MEM_ALLOC_ENABLE=1``, PyTorch's transparent huge pages for CPU
tensors, whose speed-up is taken against ``upstream_huge_pages``; and
``<implementation>_retained``: freed memory kept for reuse, matgnn with
``retain_freed_memory=true``, upstream's process with the same glibc settings, against
``upstream_retained``) and stores, in
``results/equal_budget/`` (a run stored earlier that the folder does not hold again is kept,
so a sweep of one arm replaces that arm's runs only):

* ``curves.csv``: per model, run and epoch, the validation RMSE and/or MAE in the target's
  units (matgnn: ``val_<target>_rmse`` and ``_mae`` of its ``metrics.csv``; cgcnn-tr: the
  square root of the ``Valid Loss`` it logs, a mean of per-batch MSEs of the standardised
  target, times the training standard deviation of ``scaling.json``; upstream ALIGNN: its
  logged validation L1 loss, a mean of per-batch MAEs over the full batches of the validation
  set (its loader drops the last partial one), times that standard deviation), and ``wall_s``,
  the epoch's wall time as ``runs.csv`` averages it below (cgcnn-tr's epoch 0: none; runs
  stored before 2026-12-06 whose folders were gone when re-collected: none);
* ``runs.csv``: per run, the test MAE of the best-validation checkpoint (matgnn:
  ``test_metrics.json``; cgcnn-tr: ``test_results.csv``; upstream ALIGNN: ``test_best.csv``,
  its ``best_model.pt`` on its own test graphs, chosen by its validation loss over the full
  batches only; both de-standardised), the epoch of that
  checkpoint (counted from 0 for every implementation, as in every docs table; cgcnn-tr
  logs from 1), the epochs run and the wall time per epoch over all epochs but the first
  (it holds one-off costs): matgnn's ``epoch_wall_time_s`` (training, validation and the
  best-checkpoint save), cgcnn-tr's gaps between consecutive epoch log lines (the same, its
  save of the previous best included), upstream ALIGNN's logged training plus validation time
  (its checkpoint saves excluded), the day it ran (``measured``) and the boot of the machine
  it ran on (``machine_boot``, empty where unknown): epoch times are compared only within one
  day's runs on one machine; and ``processes``, the processes the run ran in (matgnn: its
  log versions, more than one where it was stopped and resumed from its last checkpoint;
  the reference trainers start again instead: 1), marked ``*`` in the table;
* ``test_predictions/<model>_<task>_<implementation>_s<seed>.csv.gz``.

The docs block ``fidelity-equal-budget`` and ``results/equal_budget/curves.png`` (overlaid
validation curves) are written from those files alone, each run's test MAE from its stored
per-crystal predictions (``runs.csv``'s ``test_mae`` is the value at collect time, for
reading); a task whose runs are missing for one side is reported as missing, never filled in.
"""

from __future__ import annotations

import itertools
import json
import re
import shutil
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from matgnn.training.run_logs import read_logs, tested_epoch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: catalog.py
from catalog import table_script

RESULTS = Path(__file__).parent / "results" / "equal_budget"
TASKS = {
    "mp2018_5k": ("formation_energy_per_atom", "eV/atom", "mp2018 5k (5,000 / 625 / 625)"),
    "matbench_phonons": ("last_phdos_peak", "cm^-1", "matbench_phonons fold 0 (partial copy)"),
}
# arms whose reference validates on other crystals than matgnn (upstream ALIGNN's loader drops
# the last partial batch): their validation curves are not compared number for number
VALIDATES_OTHER_CRYSTALS = {"alignn"}
# model -> (runs sub-folder, the validation metric its loss ranks by, implementations: the
# matgnn one first, then the reference, then any variant of either)
ARMS = {
    "cgcnn": (
        "",
        "rmse",
        {
            "matgnn": "matgnn CGCNN",
            "reference": "cgcnn2 `cgcnn-tr` (reference)",
            "reference_floored": "`cgcnn-tr`, its Gaussian tails below e^-60 set to 0 "
            "(`cgcnn_tr_floored.py`; diagnostic)",
        },
    ),
    "alignn": (
        "alignn",
        "mae",
        {
            "matgnn": "matgnn ALIGNN (BatchNorm; `alignn` graph)",
            "upstream": "alignn 2026.8.11 `train_for_folder` (`alignn_atomwise`: LayerNorm; "
            "its jarvis k-nearest graph)",
            "matgnn_upstream_graph": "matgnn ALIGNN (BatchNorm) on upstream's graphs",
            "matgnn_layernorm_upstream_graph": "matgnn ALIGNN with LayerNorm (`norm=layer`: "
            "`alignn_atomwise`'s network) on upstream's graphs",
            "matgnn_huge_pages": "matgnn ALIGNN (BatchNorm; `alignn` graph), huge pages "
            "(`THP_MEM_ALLOC_ENABLE=1`)",
            "upstream_huge_pages": "alignn 2026.8.11 `train_for_folder`, huge pages "
            "(`THP_MEM_ALLOC_ENABLE=1`)",
            "matgnn_layernorm_upstream_graph_huge_pages": "matgnn ALIGNN with LayerNorm on "
            "upstream's graphs, huge pages (`THP_MEM_ALLOC_ENABLE=1`)",
            "matgnn_retained": "matgnn ALIGNN (BatchNorm; `alignn` graph), freed memory "
            "retained (`retain_freed_memory=true`, bounded)",
            "upstream_retained": "alignn 2026.8.11 `train_for_folder`, freed memory retained "
            "(glibc `mmap_max=0`, `trim_threshold=2147483647` as matgnn's; no resident-memory "
            "bound)",
            "matgnn_layernorm_upstream_graph_retained": "matgnn ALIGNN with LayerNorm on "
            "upstream's graphs, freed memory retained (`retain_freed_memory=true`, bounded)",
        },
    ),
}
#: the suffix of the runs made with PyTorch's transparent huge pages for CPU tensors
#: (``ALIGNN_HUGE_PAGES=1 equal_budget.sh``): their speed-up is against the reference's run with
#: them
HUGE_PAGES = "_huge_pages"
#: the suffix of the runs that keep freed memory for reuse (``ALIGNN_RETAIN=1
#: equal_budget.sh``): matgnn with ``retain_freed_memory=true`` (bounded), upstream's process
#: with the same two glibc settings through ``GLIBC_TUNABLES`` (no resident-memory bound)
RETAINED = "_retained"
#: each variant's suffix and how its lines name it
VARIANTS = {HUGE_PAGES: "huge pages", RETAINED: "freed memory retained"}


def variant_of(implementation: str) -> str:
    """The variant suffix of ``implementation`` (``""`` for a plain run)."""
    return next((v for v in VARIANTS if implementation.endswith(v)), "")


#: the first time stamp of a matgnn (``[2026-12-05 10:24:47,421]``) or cgcnn-tr
#: (``2026-12-05 10:29:30.081 INFO``) log line
_LOG_DATE = re.compile(r"^\[?(\d{4}-\d\d-\d\d) \d\d:\d\d:\d\d", re.MULTILINE)
#: runs whose logs carry no time stamp (upstream ALIGNN's and upstream_graphs.py's print none)
#: and whose folders are gone: the day they ran. These ran in the sweep of 2026-12-03: they
#: read the splits its matgnn runs wrote from 07:12 that day (their logs are dated), and all
#: were committed at 09:03 that day (90f9ea0).
UNDATED = {
    ("alignn", "matbench_phonons", "upstream"): "2026-12-03",
    ("alignn", "matbench_phonons", "matgnn_upstream_graph"): "2026-12-03",
}
#: the file each kind of run writes last, whose time dates a run whose log has no time stamp
RESULT_FILES = ("test_metrics.json", "output/test_best.csv")
_REF_TIME = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)(?:[.,](\d{3}))?")
_REF_EPOCH = re.compile(r"Epoch \[(\d+)/(\d+)\] - Train Loss: (\S+), Valid Loss: ([^,\s]+)")
_REF_BEST = re.compile(r"Best model at epoch (\d+)")


def _stamp(text: str, pattern: re.Pattern) -> datetime | None:
    """The time stamp cgcnn2's logger puts at the start of a line."""
    match = pattern.match(text)
    if match is None:
        return None
    millis = match.group(2) or "000"
    return datetime.strptime(f"{match.group(1)}.{millis}", "%Y-%m-%d %H:%M:%S.%f")


def matgnn_run(run: Path, task: str, monitor: str) -> tuple[dict, pd.DataFrame, pd.DataFrame]:
    """``monitor``: the validation metric the run's loss ranks by (``rmse`` for an MSE loss,
    ``mae`` for an L1 loss): its minimum is the tested checkpoint's epoch."""
    target = TASKS[task][0]
    metrics = read_logs(run)  # every version: a resumed run logs its later epochs anew
    if metrics is None:
        raise SystemExit(f"{run}: no logged metrics (logs/version_*/metrics.csv)")
    val = metrics.dropna(subset=[f"val_{target}_{monitor}"]).groupby("epoch").last()
    wall = metrics.dropna(subset=["epoch_wall_time_s"]).groupby("epoch")["epoch_wall_time_s"].last()
    if len(wall) != len(val):
        raise SystemExit(f"{run}: {len(val)} validated epochs but {len(wall)} timed ones")
    test = json.loads((run / "test_metrics.json").read_text())
    predictions = pd.read_csv(run / "test_predictions.csv")
    best = tested_epoch(run)  # of the checkpoint tested, from 0 (as every docs table)
    if best is None:
        raise SystemExit(f"{run}: no tested checkpoint (best.ckpt) and no validation logged")
    curve = pd.DataFrame(
        {"epoch": val.index, "val_rmse": val[f"val_{target}_rmse"],
         "val_mae": val[f"val_{target}_mae"], "wall_s": wall.reindex(val.index).to_numpy()}
    )  # fmt: skip
    row = {
        "test_mae": float(test[f"test_{target}_mae"]),
        "best_epoch": best,
        "epochs": len(val),
        "wall_per_epoch_s": float(wall.iloc[1:].mean()),
        "n_test": len(predictions),
        # a copied log alone counts as one
        "processes": max(1, len(_process_starts(run))),
    }
    out = pd.DataFrame(
        {"id": predictions["id"], "true": predictions[target],
         "predicted": predictions[f"predicted_{target}"]}
    )  # fmt: skip
    return row, curve, out


def reference_run(run: Path, seed: int) -> tuple[dict, pd.DataFrame, pd.DataFrame]:
    scaling = json.loads((run / "scaling.json").read_text())
    lines = (run / "train.log").read_text().splitlines()
    epochs, times, best, planned = [], [], None, None
    for line in lines:
        match = _REF_EPOCH.search(line)
        if match:
            epochs.append((int(match.group(1)) - 1, float(match.group(4))))  # from 0
            times.append(_stamp(line, _REF_TIME))
            planned = int(match.group(2))
        found = _REF_BEST.search(line)
        if found:
            best = int(found.group(1)) - 1  # cgcnn-tr counts epochs from 1
    if not epochs or best is None or len(epochs) != planned or None in times:
        raise SystemExit(f"{run}/train.log: {len(epochs)} of {planned} epochs logged with a "
                         "time stamp, or no best-model line (did cgcnn-tr finish?)")  # fmt: skip
    results = pd.read_csv(run / f"output_s{seed}" / "test_results.csv")
    for column in ("true", "pred"):
        results[column] = results[column] * scaling["std"] + scaling["mean"]
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(times)]
    curve = pd.DataFrame(
        {"epoch": [e for e, _ in epochs],
         "val_rmse": [np.sqrt(v) * scaling["std"] for _, v in epochs],
         "wall_s": [float("nan"), *gaps]}
    )  # fmt: skip
    row = {
        "test_mae": float(np.abs(results["pred"] - results["true"]).mean()),
        "best_epoch": best,
        "epochs": len(epochs),
        "wall_per_epoch_s": float(np.mean(gaps)) if gaps else float("nan"),
        "n_test": len(results),
        "processes": 1,  # a killed run starts again from scratch (equal_budget.sh)
    }
    out = results.rename(columns={"cif_id": "id", "pred": "predicted"})
    return row, curve, out[["id", "true", "predicted"]]


_UPSTREAM_ROW = re.compile(r"^\s+(\d+)\s+(\S+)(?:\s+\S+){5}\s+(\S+)")


def upstream_alignn_run(run: Path) -> tuple[dict, pd.DataFrame, pd.DataFrame]:
    """One run of upstream ALIGNN's trainer: its printed per-epoch losses and times
    (``Train Loss:``/``Val Loss:`` headers, each followed by ``epoch total graph atom grad
    stress addn. time``, a validation row ending in ``Saving model`` where it wrote
    ``best_model.pt``) and ``test_best.csv`` (``equal_budget_alignn.py``)."""
    scaling = json.loads((run / "scaling.json").read_text())
    planned = json.loads((run / "output" / "upstream_config.json").read_text())["epochs"]
    train, val, saved, section = {}, {}, [], None
    for line in (run / "train.log").read_text().splitlines():
        if line.startswith("Train Loss:"):
            section = train
        elif line.startswith("Val Loss:"):
            section = val
        elif section is not None and (match := _UPSTREAM_ROW.match(line)):
            section[int(match.group(1))] = (float(match.group(2)), float(match.group(3)))
            if section is val and line.rstrip().endswith("Saving model"):
                saved.append(int(match.group(1)))  # best_model.pt written at this epoch
            section = None
    if len(train) != planned or sorted(val) != sorted(train) or not saved:
        raise SystemExit(f"{run}/train.log: {len(train)} training and {len(val)} validation "
                         f"epochs logged of {planned}, {len(saved)} saves of best_model.pt "
                         "(did the upstream run finish?)")  # fmt: skip
    epochs = sorted(val)
    losses = [val[e][0] for e in epochs]
    results = pd.read_csv(run / "output" / "test_best.csv")
    for column in ("true", "predicted"):
        results[column] = results[column] * scaling["std"] + scaling["mean"]
    results["id"] = results["id"].str.removesuffix(".cif")
    curve = pd.DataFrame(
        {"epoch": list(epochs), "val_mae": [v * scaling["std"] for v in losses],
         "wall_s": [train[e][1] + val[e][1] for e in epochs]}
    )  # fmt: skip
    row = {
        "test_mae": float(np.abs(results["predicted"] - results["true"]).mean()),
        "best_epoch": saved[-1],  # the last save of best_model.pt, the tested weights
        "epochs": len(epochs),
        "wall_per_epoch_s": float(np.mean([train[e][1] + val[e][1] for e in epochs[1:]])),
        "n_test": len(results),
        "processes": 1,  # a killed run starts again from scratch (equal_budget.sh)
    }
    return row, curve, results[["id", "true", "predicted"]]


def measured(log: Path, run: Path | None = None) -> str | None:
    """The day (UTC) a run ran: its log's first time stamp, else (upstream ALIGNN's and
    ``upstream_graphs.py``'s logs have none) the time its test results were written, if its
    folder is at hand."""
    found = _LOG_DATE.search(log.read_text()) if log.is_file() else None
    if found:
        return found.group(1)
    for name in RESULT_FILES if run is not None else ():
        if (run / name).is_file():
            stamp = datetime.fromtimestamp((run / name).stat().st_mtime, tz=UTC)
            return stamp.strftime("%Y-%m-%d")
    return None


def _process_starts(run: Path) -> list[Path]:
    """One file per process of a matgnn run: each log version's ``hparams.yaml``, written as
    the process's fit or test starts (a process killed before its first metrics flush leaves
    no ``metrics.csv`` but has this)."""
    return sorted(run.glob("logs/version_*/hparams.yaml"))


def machine_boot(run: Path, implementation: str) -> str | None:
    """The boot (UTC, to the minute) of the machine that ran ``run``, if it ran on this one:
    this machine's boot time when the run's result file (:func:`_result_file`) was written
    after it (a machine of this workplace can be replaced within a day, and a new machine is
    a new boot) and, for a matgnn run resumed from its checkpoint, every process of it
    started after it (each log version's ``hparams.yaml``, written as each fit and test of
    the process starts: a run resumed on a new machine ran on two), else None (unknown).
    Read from ``/proc/stat`` (Linux); None elsewhere. (A run folder copied here without its
    files' times would be taken for this boot's.)"""
    try:
        line = next(x for x in Path("/proc/stat").read_text().splitlines() if x.startswith("btime"))
    except (OSError, StopIteration):
        return None
    boot = int(line.split()[1])
    result = _result_file(run, implementation)
    if not result.is_file() or result.stat().st_mtime < boot:
        return None
    if any(start.stat().st_mtime < boot for start in _process_starts(run)):
        return None  # a process of it ran before this boot
    return datetime.fromtimestamp(boot, tz=UTC).strftime("%Y-%m-%d %H:%M")


def _result_file(run: Path, implementation: str) -> Path:
    """The file a finished run of ``implementation`` has written last."""
    if implementation.startswith("matgnn"):
        return run / "test_metrics.json"
    if implementation.startswith("upstream"):
        return run / "output" / "test_best.csv"
    return run / f"output_s{int(run.name[1:])}" / "test_results.csv"


def _finished(run: Path, implementation: str) -> bool:
    return _result_file(run, implementation).is_file()


def collect(runs: Path) -> None:
    (RESULTS / "test_predictions").mkdir(parents=True, exist_ok=True)
    rows, curves, present = [], [], []
    for model, (folder, monitor, implementations) in ARMS.items():
        for task, implementation in itertools.product(TASKS, implementations):
            folders = (runs / folder / task / implementation).glob("s*")
            # (train_run.sh keeps each run's log next to its folder: s0.log)
            for run in sorted(r for r in folders if r.is_dir() and r.name[1:].isdigit()):
                seed = int(run.name[1:])
                present.append((model, task, implementation, seed))
                if not _finished(run, implementation):
                    print(f"skipped unfinished {run}")
                    continue
                if implementation.startswith("matgnn"):
                    row, curve, predictions = matgnn_run(run, task, monitor)
                elif implementation.startswith("upstream"):
                    row, curve, predictions = upstream_alignn_run(run)
                else:
                    row, curve, predictions = reference_run(run, seed)
                key = {"model": model, "task": task, "implementation": implementation, "seed": seed}
                rows.append({**key, **row, "measured": measured(run / "train.log", run),
                             "machine_boot": machine_boot(run, implementation)})  # fmt: skip
                curves.append(curve.assign(**key))
                name = f"{model}_{task}_{implementation}_s{seed}"
                predictions.to_csv(RESULTS / "test_predictions" / f"{name}.csv.gz", index=False)
                shutil.copyfile(run / "train.log", RESULTS / f"{name}.log")
    if not rows:
        raise SystemExit(f"no finished run under {runs}")
    found, curves = pd.DataFrame(rows), pd.concat(curves)
    # runs stored earlier that this folder does not hold (finished or not) are kept: a sweep
    # that re-runs one arm replaces that arm's runs only; their logs and predictions stay too
    kept, kept_curves = _stored_except(present)
    if len(kept):
        print(f"kept {len(kept)} stored run(s) not under {runs}: "
              + ", ".join(sorted({f"{r.model}/{r.task}/{r.implementation}"
                                  for r in kept.itertuples()})))  # fmt: skip
    runs = pd.concat([kept, found])
    # an integer count, blank where unknown (runs collected before it existed)
    runs["processes"] = runs["processes"].astype("Int64")
    runs.to_csv(RESULTS / "runs.csv", index=False)
    pd.concat([kept_curves, curves]).to_csv(RESULTS / "curves.csv", index=False)


def _stored_except(present: list[tuple]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The stored runs (``runs.csv``) and curves (``curves.csv``) of every run whose
    ``(model, task, implementation, seed)`` is not in ``present``; empty where nothing is
    stored."""
    runs_file, curves_file = RESULTS / "runs.csv", RESULTS / "curves.csv"
    if not runs_file.is_file():
        return pd.DataFrame(), pd.DataFrame()
    stored = pd.read_csv(runs_file)
    stored_curves = pd.read_csv(curves_file) if curves_file.is_file() else pd.DataFrame()
    key = ["model", "task", "implementation", "seed"]
    new = set(present)
    keep = [k not in new for k in stored[key].itertuples(index=False, name=None)]
    kept = _dated(stored[keep])
    if stored_curves.empty:
        return kept, stored_curves
    keep_curves = [k not in new for k in stored_curves[key].itertuples(index=False, name=None)]
    return kept, stored_curves[keep_curves]


def _dated(runs: pd.DataFrame) -> pd.DataFrame:
    """``runs`` with every ``measured`` day filled: from the stored log (``<name>.log``), else
    from :data:`UNDATED`; a run with neither is an error naming it."""
    runs = runs.copy()
    if "measured" not in runs.columns:
        runs["measured"] = None
    runs["measured"] = runs["measured"].astype(object)
    for i, r in runs.iterrows():
        if isinstance(r["measured"], str):
            continue
        name = f"{r['model']}_{r['task']}_{r['implementation']}_s{r['seed']}"
        day = measured(RESULTS / f"{name}.log") or UNDATED.get(
            (r["model"], r["task"], r["implementation"])
        )
        if day is None:
            raise SystemExit(f"{RESULTS / 'runs.csv'}: no day known for run {name}")
        runs.at[i, "measured"] = day
    return runs


#: boots closer than this are one boot of one machine (:func:`_one_day`); a replaced machine
#: boots at the start of a later session, hours apart
BOOT_JITTER = pd.Timedelta(minutes=5)


def _one_day(ours: pd.DataFrame, theirs: pd.DataFrame) -> str | None:
    """The day both sets of runs were measured on, if it is one day on one machine and they
    cover the same seeds: only then is a ratio of their times a speed-up, never across
    sweeps. One machine: every run's ``machine_boot`` (collected since 2026-12-06) is the same
    boot, or none of them has one (the sweeps before, each one machine's day: a day held one
    boot until a machine was replaced on 2026-12-06); a known boot beside an unknown one or
    another boot is another machine. Boots within :data:`BOOT_JITTER` of each other are one
    boot: the kernel's boot time is the clock minus the uptime, and this machine's clock moved
    by 27 s against its uptime within 5 hours of 2026-12-06 (``uptime -s`` 08:28:51, then
    08:29:18), which carried the boot across a minute."""
    days = set(ours["measured"]) | set(theirs["measured"])
    same_seeds = len(ours) and set(ours["seed"]) == set(theirs["seed"])
    both = pd.concat([ours, theirs])
    boots = both["machine_boot"] if "machine_boot" in both.columns else pd.Series([None])
    one_machine = boots.isna().all() or (
        boots.notna().all()
        and pd.to_datetime(boots).max() - pd.to_datetime(boots).min() <= BOOT_JITTER
    )
    return days.pop() if len(days) == 1 and same_seeds and one_machine else None


def _paired(ours: pd.DataFrame, theirs: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """``ours`` and ``theirs`` narrowed to the seeds both ran whose two runs were measured on
    one day and machine (:func:`_one_day` of each seed's pair: a ratio of epoch times is taken
    over the same seeds under the same conditions, never across two sets), and a note naming
    those seeds where either side ran others (`` (seed 0)``), else ``""``."""
    seeds = [
        seed
        for seed in sorted(set(ours["seed"]) & set(theirs["seed"]))
        if _one_day(ours[ours["seed"] == seed], theirs[theirs["seed"] == seed])
    ]
    narrowed = ours[ours["seed"].isin(seeds)], theirs[theirs["seed"].isin(seeds)]
    if not seeds or set(ours["seed"]) == set(theirs["seed"]) == set(seeds):
        return (*narrowed, "")
    return (*narrowed, f" (seed{'s' * (len(seeds) > 1)} {', '.join(map(str, seeds))})")


def _compared(
    ours: pd.DataFrame, theirs: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame, str, str | None] | None:
    """:func:`_paired` (both narrowed to the seeds whose pair ran on one day and machine, and
    the note naming them) and the one day all those pairs share (:func:`_one_day`), None where
    they span days or machines; None without such a pair. A ratio of mean epoch times needs
    that day; the pairs of several days give per-seed ratios only."""
    ours, theirs, note = _paired(ours, theirs)
    if ours.empty:
        return None
    return ours, theirs, note, _one_day(ours, theirs)


def _speed_up(ours: pd.DataFrame, theirs: pd.DataFrame) -> tuple[str, str] | None:
    """``theirs``' epoch time over ``ours``' on the seeds whose pair ran on one day and
    machine (:func:`_compared`, the seeds named where either side ran others), and the day(s):
    the ratio of the mean times where all those pairs share one day and machine, else the
    mean of the per-seed ratios (said so); None without such a pair."""
    compared = _compared(ours, theirs)
    if compared is None:
        return None
    ours, theirs, note, day = compared
    if day:
        ratio = theirs["wall_per_epoch_s"].mean() / ours["wall_per_epoch_s"].mean()
        return f"{ratio:.2f}x{note}", day
    per_seed = (
        theirs.groupby("seed")["wall_per_epoch_s"].mean()
        / ours.groupby("seed")["wall_per_epoch_s"].mean()
    )
    days = ", ".join(sorted(set(ours["measured"]) | set(theirs["measured"])))
    seeds = ", ".join(map(str, per_seed.index))
    return f"{per_seed.mean():.2f}x (mean of per-seed ratios, seeds {seeds})", days


def _pm(values: pd.Series, digits: int) -> str:
    """Mean ± sample std; a run without the value (NaN) is not averaged away: it fails."""
    if values.isna().any():
        raise ValueError(f"{RESULTS / 'runs.csv'}: {int(values.isna().sum())} run(s) without "
                         f"{values.name}; collect them again")  # fmt: skip
    text = f"{values.mean():.{digits}f}"
    return text + (f" ± {values.std(ddof=1):.{digits}f}" if len(values) > 1 else "")


def test_errors(runs: pd.DataFrame) -> pd.DataFrame:
    """``runs`` with ``test_mae`` and ``n_test`` computed from each run's stored per-crystal
    predictions (``test_predictions/<model>_<task>_<implementation>_s<seed>.csv.gz``); a run
    without its predictions file is an error naming it."""
    runs = runs.copy()
    maes, counts = [], []
    for r in runs.itertuples():
        path = (
            RESULTS / "test_predictions" / f"{r.model}_{r.task}_{r.implementation}_s{r.seed}.csv.gz"
        )
        if not path.is_file():
            raise SystemExit(f"{path} missing: --collect the run again")
        frame = pd.read_csv(path)
        if frame[["true", "predicted"]].isna().any().any():
            raise ValueError(f"{path}: empty values")
        maes.append(float((frame["predicted"] - frame["true"]).abs().mean()))
        counts.append(len(frame))
    runs["test_mae"], runs["n_test"] = maes, counts
    return runs


def _variant_lines(runs: pd.DataFrame) -> list[str]:
    """Per task and variant (huge pages, retained memory), each implementation's epoch time
    without and with it (runs of the same day and machine, on the seeds both ran): what the
    allocator setting changes for each trainer."""
    lines = []
    for variant, words in VARIANTS.items():
        for (model, task), here in runs.groupby(["model", "task"], sort=False):
            parts = []
            for implementation in ARMS[model][2]:
                if variant_of(implementation):
                    continue
                plain = here[here["implementation"] == implementation]
                other = here[here["implementation"] == implementation + variant]
                if other.empty or plain.empty:
                    continue
                compared = _compared(plain, other)
                if compared is None or compared[3] is None:
                    parts.append(f"{implementation}: - (other day, machine or seeds)")
                    continue
                plain, other, note, _ = compared
                before, after = plain["wall_per_epoch_s"].mean(), other["wall_per_epoch_s"].mean()
                parts.append(
                    f"{implementation} {before:.1f} -> {after:.1f} s ({before / after:.2f}x){note}"
                )
            if parts:
                joined = "; ".join(parts)
                lines += ["", f"{model}, {TASKS[task][2]}: wall s per epoch without -> with "
                          f"{words}, same trainer, day, machine and seeds: {joined}."]  # fmt: skip
    return lines


def _seed(run) -> str:
    """A run's seed, marked ``\\*`` where it ran in more than one process (resumed from its
    checkpoint: its epoch times come from each process, the first epoch after a resume
    included); runs collected before 9540843 have no count and no mark."""
    processes = getattr(run, "processes", float("nan"))
    # escaped: Python-Markdown (the docs site) pairs two bare * in a cell into emphasis
    return f"{run.seed}\\*" if processes == processes and processes > 1 else str(run.seed)


def table() -> str:
    path = RESULTS / "runs.csv"
    if not path.is_file():
        raise SystemExit(f"{path} missing: run equal_budget.sh and --collect first")
    runs = pd.read_csv(path)
    if "model" not in runs.columns:
        raise SystemExit(f"{path} predates the ALIGNN arm (no model column): --collect again")
    runs = test_errors(_dated(runs))  # MAE from the per-crystal predictions; every run dated
    lines = [
        "| model | task | implementation | seeds | test MAE (mean ± std over seeds) | "
        "tested epoch (from 0) | epochs | wall s / epoch | measured | matgnn speed-up |",
        "|---|---|---|---:|---:|---:|---:|---:|---|---:|",
    ]
    for model, (_, _, implementations) in ARMS.items():
        reference = list(implementations)[1]
        for task, (_, units, label) in TASKS.items():
            here = runs[(runs["model"] == model) & (runs["task"] == task)]
            for implementation, name in implementations.items():
                # a run of a variant is compared with the reference's run of that variant
                versus = reference + variant_of(implementation)
                r = here[here["implementation"] == implementation]
                if r.empty and variant_of(implementation):
                    continue  # a variant, not a row of the comparison: listed where it ran
                if r.empty:
                    lines.append(
                        f"| {model} | {label} | {name} | 0 | not run | - | - | - | - | - |"
                    )
                    continue
                days = sorted(set(r["measured"]))
                speed = "-"
                theirs = here[here["implementation"] == versus]
                if (
                    implementation.startswith("matgnn")
                    and versus in implementations
                    and len(theirs)
                ):
                    ratio = _speed_up(r, theirs)
                    speed = ratio[0] if ratio else "- (other day, machine or seeds)"
                lines.append(
                    f"| {model} | {label} | {name} | "
                    f"{len(r)} ({', '.join(_seed(s) for s in r.itertuples())}) | "
                    f"{_pm(r['test_mae'], 4 if units == 'eV/atom' else 1)} {units} | "
                    f"{_pm(r['best_epoch'], 0)} | {r['epochs'].max()} | "
                    f"{_pm(r['wall_per_epoch_s'], 1)} | {', '.join(days)} | {speed} |"
                )
    if "processes" in runs.columns and (runs["processes"] > 1).any():
        lines += ["", "\\* resumed from its last checkpoint in a later process (the run was "
                  "stopped): each epoch timed in the process that ran it."]  # fmt: skip
    floored = runs[runs["implementation"] == "reference_floored"]
    for task, part in floored.groupby("task", sort=False):
        ours = runs[(runs["model"] == "cgcnn") & (runs["task"] == task)
                    & (runs["implementation"] == "matgnn")]  # fmt: skip
        ratio = _speed_up(ours, part)
        if ratio:
            lines.append("")
            lines.append(
                f"cgcnn, {TASKS[task][2]}: matgnn's speed-up over `cgcnn-tr` with its Gaussian "
                f"tails floored (epoch time ratio, {ratio[1]}): {ratio[0]}."
            )
    lines += _variant_lines(runs)
    curves_file = RESULTS / "curves.csv"
    if curves_file.is_file():
        curves = pd.read_csv(curves_file)
        for model, (_, monitor, implementations) in ARMS.items():
            reference = list(implementations)[1]
            part = curves[curves["model"] == model]
            if part.empty:
                continue
            paired = part.pivot_table(
                index=["task", "seed", "epoch"], columns="implementation", values=f"val_{monitor}"
            )
            if not {"matgnn", reference} <= set(paired.columns):
                continue
            paired = paired[["matgnn", reference]].dropna()
            if paired.empty or model in VALIDATES_OTHER_CRYSTALS:
                continue
            relative = (paired["matgnn"] / paired[reference] - 1).abs()
            medians = relative.groupby(level=["task", "seed"]).median()
            lines.append("")
            lines.append(
                f"{model}: validation {monitor.upper()}, same seed, matgnn vs {reference}: median "
                f"relative difference per run {100 * medians.min():.1f}-"
                f"{100 * medians.max():.1f}% over {len(medians)} runs (largest single epoch "
                f"{100 * relative.max():.0f}%)."
            )
    return "\n".join(lines)


def plot() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = RESULTS / "curves.csv"
    if not path.is_file():
        return
    curves = pd.read_csv(path)
    panels = [
        (model, task)
        for model in ARMS
        for task in TASKS
        if not curves[(curves["model"] == model) & (curves["task"] == task)].empty
    ]
    fig, axes = plt.subplots(1, len(panels), figsize=(5.0 * len(panels), 4), squeeze=False)
    for ax, (model, task) in zip(axes[0], panels, strict=True):
        _, monitor, implementations = ARMS[model]
        colors = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown")
        for implementation, color in zip(implementations, colors, strict=False):
            part = curves[
                (curves["model"] == model)
                & (curves["task"] == task)
                & (curves["implementation"] == implementation)
            ]
            for seed, run in part.groupby("seed"):
                label = (
                    textwrap.fill(implementations[implementation], 42)
                    if seed == part["seed"].min()
                    else None
                )
                ax.plot(run["epoch"], run[f"val_{monitor}"], color=color, alpha=0.8, label=label)
        ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.set_ylabel(f"validation {monitor.upper()} ({TASKS[task][1]})")
        ax.set_title(f"{model}: {TASKS[task][2]}", fontsize=10)
        ax.legend(fontsize=6, loc="upper right")
    fig.tight_layout()
    fig.savefig(RESULTS / "curves.png", dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    table_script(__doc__.split("\n\n")[0], "fidelity-equal-budget", collect, table, after=plot)
