"""The documentation site builds strictly: a broken link, a missing page or figure, or an API
object that mkdocstrings cannot find fails the suite (and so CI)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_docs_site_builds_strictly(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "NO_MKDOCS_2_WARNING": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(tmp_path / "site")],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, f"mkdocs build --strict failed:\n{done.stdout}\n{done.stderr}"
    # mkdocs' -q would raise the log level above WARNING and hide what --strict counts
    assert "WARNING" not in done.stderr, done.stderr
    site = tmp_path / "site"
    assert (site / "index.html").is_file()
    # the API reference rendered the docstrings, and the stored figures are part of the site
    graphs = (site / "reference" / "graphs" / "index.html").read_text()
    assert "build_graph" in graphs and "GraphConfig" in graphs
    assert (site / "benchmarks" / "finetune" / "results" / "learning_curve.png").is_file()


def test_readme_links_to_pages_that_exist():
    """The README is the front page on the repository: every relative link in it resolves."""
    import re

    text = (REPO / "README.md").read_text()
    links = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text)
    assert links, "README.md links to no documentation page"
    missing = [link for link in links if "://" not in link and not (REPO / link).exists()]
    assert not missing, f"README.md links to missing files: {missing}"


def test_docs_links_resolve_in_the_repository():
    """Every relative link on a docs page resolves from the page's own folder, as GitHub reads
    it (figures by their repository path, ``../../benchmarks/...``; the site's hook rewrites
    those, see ``scripts/docs_hooks.py``)."""
    import re

    missing = []
    for page in sorted((REPO / "docs").rglob("*.md")):
        text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)  # code, not links
        text = re.sub(r"`[^`\n]*`", "", text)
        for link in re.findall(r"\]\(([^)\s#]+)[^)]*\)", text):
            if "://" not in link and not link.startswith("mailto:"):
                if not (page.parent / link).exists():
                    missing.append(f"{page.relative_to(REPO)}: {link}")
    assert not missing, "links that GitHub cannot follow:\n" + "\n".join(missing)
