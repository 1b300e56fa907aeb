"""Every generated block of the documentation in one registry: the block's name, the page that
holds it, and the function that writes it from stored results (configs, committed raw outputs
of the benchmark scripts). A page's block lies between ``<!-- <name>:start -->`` and
``<!-- <name>:end -->``; nothing between the markers is written by hand.

    python benchmarks/blocks.py            # which blocks are stale (exit status 1 if any)
    python benchmarks/blocks.py --update   # rewrite every block from the stored results

Each benchmark script writes its own block too (``--update <page>``), after collecting new
runs; this file is what the staleness tests (``tests/test_benchmark_tables.py``) run, so a
number on a page is always the script's output of the committed results.
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import sys
from collections.abc import Callable
from functools import cache
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]
if str(REPOSITORY) not in sys.path:
    sys.path.insert(0, str(REPOSITORY))

from benchmarks.catalog import has_block, replace_block  # noqa: E402

MARKER = re.compile(r"^<!-- ([a-z0-9-]+):start -->$", re.M)  # a whole line, never prose


@cache
def script(path: str):
    """The module of the benchmark script ``path`` (relative to the repository)."""
    # a unique module name (two scripts are called table.py), registered before it runs: a
    # dataclass looks its module up in sys.modules
    name = "_block_script_" + re.sub(r"\W", "_", path)
    spec = importlib.util.spec_from_file_location(name, REPOSITORY / path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _matbench(name: str) -> Callable[[], str]:
    def make() -> str:
        from benchmarks.matbench.leaderboard import blocks

        return blocks(REPOSITORY / "benchmarks" / "matbench")[name]

    return make


def _catalog(name: str) -> Callable[[], str]:
    def make() -> str:
        from benchmarks.catalog import TABLES

        return TABLES[name]()

    return make


def _table(path: str, function: str = "table") -> Callable[[], str]:
    return lambda: getattr(script(path), function)()


def _speed(name: str) -> Callable[[], str]:
    return lambda: script("benchmarks/speed_tables.py").BLOCKS[name]()


#: block name -> (the pages that hold it, the function that writes it)
BLOCKS: dict[str, tuple[tuple[str, ...], Callable[[], str]]] = {
    "models": (("docs/concepts/models.md",), _catalog("models")),
    "tasks": (("docs/concepts/tasks.md",), _catalog("tasks")),
    "pretrained": (("docs/how-to/pretrained-and-fine-tuning.md",), _catalog("pretrained")),
    "matbench-leaderboard": (
        ("docs/results/matbench.md", "benchmarks/matbench/README.md"),
        _matbench("matbench-leaderboard"),
    ),
    "matbench-folds": (("benchmarks/matbench/README.md",), _matbench("matbench-folds")),
    "finetune-curve": (("docs/results/fine-tuning.md",), _table("benchmarks/finetune/table.py")),
    "imatgen-representation": (
        ("docs/results/inverse-design.md",),
        _table("benchmarks/design/representation.py"),
    ),
    "imatgen-labels": (
        ("docs/results/inverse-design.md",),
        _table("benchmarks/design/labels.py"),
    ),
    "imatgen-autoencoders": (
        ("docs/results/inverse-design.md",),
        _table("benchmarks/design/autoencoders.py"),
    ),
    "imatgen-generation": (
        ("docs/results/inverse-design.md",),
        _table("benchmarks/design/generation.py", "block"),
    ),
    "imatgen-generator-seeds": (
        ("docs/results/inverse-design.md",),
        _table("benchmarks/design/merge_attribution.py", "seeds_table"),
    ),
    "foundation-matbench": (
        ("docs/results/foundation.md",),
        _table("benchmarks/foundation/table.py"),
    ),
    "foundation-other": (
        ("docs/results/foundation.md",),
        _table("benchmarks/foundation/table.py", "other_table"),
    ),
    "uncertainty-phonons": (
        ("docs/results/uncertainty.md",),
        _table("benchmarks/uncertainty/table.py"),
    ),
    "uncertainty-ood": (
        ("docs/results/uncertainty.md",),
        _table("benchmarks/uncertainty/ood/table.py"),
    ),
    "arise": (("docs/results/uncertainty.md",), _table("benchmarks/arise/evaluate.py")),
    "ehull": (("docs/results/stability.md",), _table("benchmarks/stability/ehull.py")),
    "ye2018": (("docs/results/stability.md",), _table("benchmarks/stability/ye2018_table.py")),
    "ye2018-published": (
        ("docs/results/stability.md",),
        _table("benchmarks/stability/ye2018_published_model.py"),
    ),
    "chen2021": (("docs/results/phonons.md",), _table("benchmarks/phonons/chen2021_table.py")),
    "tensors": (("docs/results/tensors.md",), _table("benchmarks/tensors/table.py")),
    "fidelity-cgcnn": (
        ("docs/results/fidelity.md",),
        _table("benchmarks/fidelity/cgcnn_xie2018.py"),
    ),
    "fidelity-alignn": (
        ("docs/results/fidelity.md",),
        _table("benchmarks/fidelity/alignn_upstream.py"),
    ),
    "fidelity-equal-budget": (
        ("docs/results/fidelity.md",),
        _table("benchmarks/fidelity/equal_budget.py"),
    ),
    "fidelity-alignn-graphs": (
        ("docs/results/fidelity.md",),
        _table("benchmarks/fidelity/upstream_graphs.py"),
    ),
    **{
        name: (("docs/results/speed.md",), _speed(name))
        for name in (
            "speed-models",
            "speed-alignn",
            "speed-alignn-sampled",
            "speed-trainer",
            "speed-precision",
        )
    },
    "graph-build": (("docs/results/speed.md",), _speed("graph-build")),
    "data-store": (("docs/results/speed.md",), _table("benchmarks/data_store/table.py")),
    "data-store-accuracy": (
        ("docs/results/speed.md",),
        _table("benchmarks/data_store/capped_accuracy.py"),
    ),
    "invariance": (("docs/results/invariance.md",), _table("benchmarks/invariance.py")),
    "invariance-cost": (
        ("docs/results/invariance.md",),
        _table("benchmarks/invariance.py", "cost_table"),
    ),
    "mp2018-5k": (("docs/results/mp2018-5k.md",), _table("benchmarks/mp2018_5k_models/table.py")),
    # the summaries read the blocks above from their pages, so they come last in --update
    "results-summary": (("README.md",), lambda: script("benchmarks/summary.py").table("docs/")),
    "results-overview": (
        ("docs/results/index.md",),
        lambda: script("benchmarks/summary.py").table("../"),
    ),
}


def pages_with_blocks() -> dict[Path, list[str]]:
    """Every Markdown file of the repository's docs, README and benchmark READMEs -> the names
    of the generated blocks it holds."""
    files = [REPOSITORY / "README.md", *sorted((REPOSITORY / "docs").rglob("*.md"))]
    files += sorted((REPOSITORY / "benchmarks").glob("*/README.md"))
    found = {}
    for path in files:
        names = MARKER.findall(path.read_text())
        if names:
            found[path] = names
    return found


def _rendered(name: str) -> list[tuple[Path, str, str | None]]:
    """Each page of block ``name``: its text, and its text with the block written anew from
    the stored results (``None`` when the page lacks the block)."""
    pages, make = BLOCKS[name]
    table = make()
    out = []
    for page in pages:
        path = REPOSITORY / page
        text = path.read_text()
        new = replace_block(text, name, table, path) if has_block(text, name) else None
        out.append((path, text, new))
    return out


def stale(name: str) -> list[Path]:
    """The pages whose block ``name`` is not what its function writes now."""
    return [path for path, text, new in _rendered(name) if new != text]


def update(name: str) -> list[Path]:
    """Rewrite block ``name`` on its pages; returns the pages that changed."""
    changed = []
    for path, text, new in _rendered(name):
        if new is None:
            raise ValueError(f"{path}: no block {name!r} to update")
        if new != text:
            path.write_text(new)
            changed.append(path)
    return changed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--update", action="store_true", help="rewrite stale blocks")
    parser.add_argument("names", nargs="*", help="blocks (default: all)")
    args = parser.parse_args()
    names = args.names or list(BLOCKS)
    unknown = sorted(set(names) - set(BLOCKS))
    if unknown:
        parser.error(f"unknown blocks {unknown}; known: {sorted(BLOCKS)}")
    bad = 0
    for name in names:
        paths = update(name) if args.update else stale(name)
        for path in paths:
            bad += 1
            verb = "updated" if args.update else "stale"
            print(f"{name}: {verb} in {path.relative_to(REPOSITORY)}")
    if not args.update and bad:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
