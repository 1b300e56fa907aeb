"""The one check every table loader makes before reading: the columns it reads are there."""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd


def require_columns(
    frame: pd.DataFrame, columns: Iterable[str], where: str, kind: str = "column"
) -> None:
    """Raise ``ValueError("<where> has no <a> or <b> <kind>; columns: [...]")`` naming the
    ``columns`` that ``frame`` lacks (``where``: the source and file, ``kind``: e.g. ``target
    column``), instead of a ``KeyError`` deep in the loader."""
    absent = [c for c in columns if c not in frame.columns]
    if absent:
        raise ValueError(
            f"{where} has no {' or '.join(absent)} {kind}; columns: {list(frame.columns)}"
        )
