"""Writing converted models as packaged pretrained models, and the converters' command line."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch


def write_packaged(
    name: str,
    checkpoint: Mapping[str, Any],
    card: Callable[[Mapping[str, Any], Path], dict[str, Any]],
    out: Path | None = None,
) -> Path:
    """Write ``<out>/<name>/model.ckpt`` and its ``card.json`` (``card(checkpoint, file)``);
    ``out`` defaults to the package's pretrained folder."""
    from matgnn.checkpoints.pretrained import CARD, PACKAGE_DIR

    folder = (PACKAGE_DIR if out is None else Path(out)) / name
    folder.mkdir(parents=True, exist_ok=True)
    file = folder / "model.ckpt"
    torch.save(dict(checkpoint), file)
    (folder / CARD).write_text(json.dumps(card(checkpoint, file), indent=2) + "\n")
    return folder


def converter_main(
    description: str,
    known: Mapping[str, Any],
    write: Callable[[Any, Path | None, Path | None], Path],
    source_help: str,
    argv: Sequence[str] | None = None,
    source_required: bool = False,
) -> None:
    """``<names...> [--source DIR] [--out DIR]``: convert the named models (default: all of
    ``known``) with ``write(model, source, out)`` and print each folder written."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("names", nargs="*", help=f"default: all of {sorted(known)}")
    parser.add_argument("--source", type=Path, required=source_required, help=source_help)
    parser.add_argument("--out", type=Path, help="default: matgnn/resources/pretrained")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.names) - set(known))
    if unknown:
        parser.error(f"unknown models {unknown}; known: {sorted(known)}")
    for name in args.names or known:
        print(write(known[name], args.source, args.out))
