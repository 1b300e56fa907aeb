"""mkdocs hook: the figures the benchmark scripts write (``benchmarks/**/results/**/*.png``)
become part of the site at their repository paths, so a docs page shows the stored plot
itself (``![...](../benchmarks/<...>.png)`` from ``docs/results/``) and never a copy that can
go stale. A link to a figure that no script wrote fails ``mkdocs build --strict``."""

from __future__ import annotations

from pathlib import Path

from mkdocs.structure.files import File, Files

REPOSITORY = Path(__file__).resolve().parents[1]
FIGURES = ("benchmarks/**/results/**/*.png",)  # ** matches zero folders too


def on_files(files: Files, config) -> Files:
    seen = set()
    for pattern in FIGURES:
        for path in sorted(REPOSITORY.glob(pattern)):
            relative = path.relative_to(REPOSITORY).as_posix()
            if relative in seen:
                continue
            seen.add(relative)
            files.append(
                File(relative, str(REPOSITORY), config["site_dir"], config["use_directory_urls"])
            )
    return files
