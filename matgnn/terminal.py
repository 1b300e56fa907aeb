"""Whether output is shown live, which decides whether a progress bar is drawn: a bar written
into a file, a pipe (``tee``, CI), ``nohup`` or a notebook's stored output is one line per
update. Light on purpose (no Lightning, no torch): data readers ask it too."""

from __future__ import annotations

import importlib.util
import sys
from typing import TextIO


def is_terminal(stream: TextIO | None) -> bool:
    """Whether ``stream`` is a terminal; a stream without ``isatty``, or a closed one, is not."""
    if stream is None:
        return False
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def is_interactive(stream: TextIO | None = None) -> bool:
    """Whether ``stream`` (default ``sys.stdout``, where Lightning's progress bar writes) is
    shown live: a terminal, or a Jupyter kernel's output when ``ipywidgets`` is installed
    (tqdm's bar is then a widget; without it, tqdm prints a text line per step into the
    notebook). A bar that is not tqdm's auto bar (matminer's text bar) should ask
    :func:`is_terminal` instead: in a notebook it would still print a line per update."""
    stream = sys.stdout if stream is None else stream
    if stream is None:
        return False
    if type(stream).__module__.startswith("ipykernel"):
        return importlib.util.find_spec("ipywidgets") is not None
    return is_terminal(stream)
