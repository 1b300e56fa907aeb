"""mkdocs hook: the figures the benchmark scripts write (``benchmarks/**/results/**/*.png``)
become part of the site at their repository paths, so a docs page shows the stored plot
itself (``![...](../benchmarks/<...>.png)`` from ``docs/results/``) and never a copy that can
go stale. A link to a figure that no script wrote fails ``mkdocs build --strict``."""

from __future__ import annotations

import re
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


#: Sphinx cross-reference roles in the docstrings (``:class:`X```), which mkdocstrings renders
#: as the role's text followed by the code span
SPHINX_ROLE = re.compile(r":(?:py:)?(?:class|func|meth|mod|attr|data|obj|exc|const):(?=<code>)")


def on_page_content(html: str, page, config, files) -> str:
    """Drop the Sphinx role prefix in front of a code span (``:func:`f``` reads as ``f``)."""
    return SPHINX_ROLE.sub("", html)
