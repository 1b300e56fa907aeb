"""Train/val/test splits: seeded random, the source's own (official folds), a split file, or a
seeded hold-out of whole chemical systems or elements (out-of-distribution tests).

A split is a dict ``{"train": ids, "val": ids, "test": ids}``. Split files are JSON (lists of
ids, or the JARVIS-Leaderboard form ``{"train": {id: target}, ...}``) or CSV with columns
``id,split``. Every run writes the split it used to ``split.json``, which ``kind: file`` reads
back.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

SUBSETS = ("train", "val", "test")
SPLIT_KINDS = ("random", "source", "file", "holdout")
#: what a hold-out split keeps together (:func:`holdout_split`)
HOLDOUT_GROUPS = ("chemsys", "element")


def random_split(ids: Sequence[str], train: float, val: float, seed: int) -> dict[str, list[str]]:
    """Seeded permutation cut into ``train``/``val`` fractions; the rest is ``test``."""
    order = np.random.default_rng(seed).permutation(len(ids))
    n_train = math.floor(train * len(ids))
    n_val = math.floor(val * len(ids))
    cuts = {"train": (0, n_train), "val": (n_train, n_train + n_val)}
    cuts["test"] = (n_train + n_val, len(ids))
    return {k: [ids[i] for i in order[a:b]] for k, (a, b) in cuts.items()}


def holdout_split(
    elements: Mapping[str, Sequence[str]], by: str, test: float, val: float, seed: int
) -> dict[str, list[str]]:
    """A seeded out-of-distribution split (after MatFold, Witman & Schindler 2025): ``test``
    holds whole groups of crystals that training never sees, ``val`` a seeded random ``val``
    fraction of the rest (in distribution, so a calibration fitted on it is the one a user
    would have), ``train`` the remainder.

    Args:
        elements: ``{id: element symbols}`` of every crystal.
        by: ``"chemsys"``: whole chemical systems (every crystal of, e.g., Fe-O) go to test,
            in seeded random order, until at least ``test`` of the crystals are there;
            ``"element"``: every crystal holding a held-out element goes to test, elements
            drawn in seeded random order and one skipped when it would push the test
            fraction past twice ``test`` (oxygen alone is about half of MP).
        test: the least fraction of crystals in test.
        val: the fraction of all crystals in the validation subset.
    """
    if by not in HOLDOUT_GROUPS:
        raise ValueError(f"split.group must be one of {HOLDOUT_GROUPS}, got {by!r}")
    if not 0 < test < 1 or not 0 <= val < 1 - test:
        raise ValueError(
            f"hold-out split: need 0 < test < 1 and 0 <= val < 1 - test, got {test} and {val}"
        )
    ids = list(elements)
    symbols = {i: frozenset(elements[i]) for i in ids}
    rng = np.random.default_rng(seed)
    wanted = math.ceil(test * len(ids))
    held: set[str] = set()
    if by == "chemsys":
        systems: dict[str, list[str]] = {}
        for i in ids:
            systems.setdefault("-".join(sorted(symbols[i])), []).append(i)
        names = sorted(systems)
        for k in rng.permutation(len(names)):
            if len(held) >= wanted:
                break
            held.update(systems[names[k]])
    else:
        pool = sorted(set().union(*symbols.values()))
        for k in rng.permutation(len(pool)):
            if len(held) >= wanted:
                break
            extra = {i for i in ids if pool[k] in symbols[i]} - held
            if len(held) + len(extra) <= 2 * wanted:
                held |= extra
    if len(held) < wanted:
        raise ValueError(
            f"hold-out split by {by}: only {len(held)} of {len(ids)} crystals could be held out "
            f"for test (wanted {wanted})"
        )
    rest = [i for i in ids if i not in held]
    order = rng.permutation(len(rest))
    n_val = math.floor(val * len(ids))
    return {
        "train": [rest[k] for k in order[n_val:]],
        "val": [rest[k] for k in order[:n_val]],
        "test": [i for i in ids if i in held],
    }


def carve_validation(
    split: Mapping[str, Sequence[str]], fraction: float, seed: int
) -> dict[str, list[str]]:
    """Add a seeded ``val`` subset taken from ``train`` when the split has none (Matbench folds
    give only train and test)."""
    result = {k: list(v) for k, v in split.items()}
    if "val" in result:
        return result
    train = result["train"]
    order = np.random.default_rng(seed).permutation(len(train))
    n_val = max(1, math.floor(fraction * len(train))) if fraction > 0 else 0
    result["val"] = [train[i] for i in order[:n_val]]
    result["train"] = [train[i] for i in order[n_val:]]
    return result


def limit_train(split: Mapping[str, Sequence[str]], size: int, seed: int) -> dict[str, list[str]]:
    """Keep ``size`` seeded training ids; ``val`` and ``test`` stay as they are (learning curves).

    The same seed gives nested subsets (the first ``size`` ids of one permutation), so a curve at
    50/100/200 crystals adds crystals rather than redrawing them.
    """
    train = list(split["train"])
    if not 0 < size <= len(train):
        raise ValueError(
            f"split.train_size={size}, but the training split has {len(train)} crystals "
            "(set train_size to null for all of them)"
        )
    order = np.random.default_rng(seed).permutation(len(train))
    return {**{k: list(v) for k, v in split.items()}, "train": [train[i] for i in order[:size]]}


def read_split_file(path: str | Path) -> dict[str, list[str]]:
    """Read a JSON or CSV split file (see the module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"split file {path} not found")
    if path.suffix == ".csv":
        split: dict[str, list[str]] = {}
        with open(path, newline="") as handle:
            for row in csv.DictReader(handle):
                split.setdefault(row["split"], []).append(row["id"])
    else:
        raw = json.loads(path.read_text())
        split = {k: [str(i) for i in v] for k, v in raw.items()}
    check_split(split, str(path))
    return split


def split_json(split: Mapping[str, Sequence[str]]) -> str:
    """The split file's text: ``{"train": [...], "val": [...], "test": [...]}``."""
    return json.dumps({k: list(split[k]) for k in SUBSETS if k in split})


def split_sha256(split: Mapping[str, Sequence[str]]) -> str:
    """SHA-256 of the split file's text (recorded in checkpoints as data provenance)."""
    return hashlib.sha256(split_json(split).encode()).hexdigest()


def write_split_file(split: Mapping[str, Sequence[str]], path: str | Path) -> None:
    Path(path).write_text(split_json(split))


def check_split(split: Mapping[str, Sequence[str]], where: str) -> None:
    """Subsets must be named train/val/test, include train and test, and not overlap."""
    unknown = set(split) - set(SUBSETS)
    if unknown or not {"train", "test"} <= set(split):
        raise ValueError(
            f"{where}: a split needs train and test (and may have val); got {sorted(split)}"
        )
    seen: dict[str, str] = {}
    for subset, members in split.items():
        for sid in members:
            if sid in seen:
                raise ValueError(f"{where}: {sid!r} is in both {seen[sid]} and {subset}")
            seen[sid] = subset
