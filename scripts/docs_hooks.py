"""mkdocs hook: the figures the benchmark scripts write (``benchmarks/**/results/**/*.png``)
become part of the site at their repository paths, so a docs page shows the stored plot
itself and never a copy that can go stale. A page links a figure by its path in the repository
(``![...](../../benchmarks/<...>.png)`` from ``docs/results/``), which GitHub shows as it is;
for the site the hook rewrites that link to the figure's place there (``../benchmarks/...``).
A link to a figure that no script wrote fails ``mkdocs build --strict``."""

from __future__ import annotations

import functools
import posixpath
import re
from pathlib import Path

from mkdocs.structure.files import File, Files

REPOSITORY = Path(__file__).resolve().parents[1]
FIGURES = ("benchmarks/**/results/**/*.png",)  # ** matches zero folders too


@functools.cache
def stored_figures() -> tuple[str, ...]:
    """The stored figures' paths in the repository, each once, sorted."""
    found = {p.relative_to(REPOSITORY).as_posix() for f in FIGURES for p in REPOSITORY.glob(f)}
    return tuple(sorted(found))


def on_files(files: Files, config) -> Files:
    for relative in stored_figures():
        files.append(
            File(relative, str(REPOSITORY), config["site_dir"], config["use_directory_urls"])
        )
    return files


#: a Markdown link's target: ``](target)`` or ``](target "title")``
LINK = re.compile(r"\]\((?P<target>[^)\s#]+)(?P<rest>[^)]*)\)")


def site_link(target: str, page_path: str) -> str:
    """``target``, a link on the page ``docs/<page_path>``, as the site needs it: a link to a
    stored figure by its repository path (``../../benchmarks/...`` from ``docs/results/``)
    points to the figure's place in the site; every other link is returned unchanged (a link
    out of ``docs/`` to anything else stays broken, and ``--strict`` names it)."""
    if "://" in target or target.startswith("/"):
        return target
    in_repository = posixpath.normpath(posixpath.join("docs", posixpath.dirname(page_path), target))
    if in_repository not in stored_figures():
        return target
    return posixpath.relpath(in_repository, posixpath.dirname(page_path) or ".")


def on_page_markdown(markdown: str, page, config, files) -> str:
    """Point the links to stored figures at their place in the site (see :func:`site_link`)."""
    src = page.file.src_uri
    return LINK.sub(lambda m: f"]({site_link(m.group('target'), src)}{m.group('rest')})", markdown)


#: Sphinx cross-reference roles in the docstrings (``:class:`X```), which mkdocstrings renders
#: as the role's text followed by the code span
SPHINX_ROLE = re.compile(r":(?:py:)?(?:class|func|meth|mod|attr|data|obj|exc|const):(?=<code>)")


def on_page_content(html: str, page, config, files) -> str:
    """Drop the Sphinx role prefix in front of a code span (``:func:`f``` reads as ``f``)."""
    return SPHINX_ROLE.sub("", html)
