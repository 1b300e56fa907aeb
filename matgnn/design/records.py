"""Per-structure tables of inverse design as gzipped CSV whose first line is a JSON header
(``# {...}``: provenance, the checkpoints and settings behind the rows)."""

from __future__ import annotations

import gzip
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd


def write_records(frame: pd.DataFrame, path: str | Path, header: Mapping[str, Any]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt") as handle:
        handle.write(f"# {json.dumps(dict(header))}\n")
        frame.to_csv(handle, index=False, float_format="%.6g")


def read_records(
    path: str | Path, booleans: Sequence[str] = (), texts: Sequence[str] = ()
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The frame and header of :func:`write_records`'s file; ``booleans`` columns as bool,
    ``texts`` columns with empty fields as ``""``. A missing file names the script to run."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: run its script with --run")
    with gzip.open(path, "rt") as handle:
        header = json.loads(handle.readline().removeprefix("# "))
    frame = pd.read_csv(path, skiprows=1, keep_default_na=False, na_values=[""])
    for column in booleans:
        frame[column] = frame[column].astype(str) == "True"
    for column in texts:
        frame[column] = frame[column].fillna("").astype(str)
    return frame, header
