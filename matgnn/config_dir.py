"""Where the Hydra config groups live (``configs/`` next to the package in a source checkout)."""

from __future__ import annotations

from pathlib import Path

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"


def group_options(group: str) -> list[str]:
    """Names of the options of a config group, e.g. ``group_options("graph")``."""
    return sorted(p.stem for p in (CONFIG_DIR / group).glob("*.yaml"))


def option_path(group: str, name: str) -> Path:
    """``configs/<group>/<name>.yaml``; a clear error names the known options."""
    path = CONFIG_DIR / group / f"{name}.yaml"
    if not path.is_file():
        raise ValueError(f"unknown {group} config {name!r}; known: {group_options(group)}")
    return path
