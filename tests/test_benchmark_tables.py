"""README tables written by the benchmark scripts from their committed results are current: a
README number always comes from a stored result, never from a hand edit."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def script(path: str):
    spec = importlib.util.spec_from_file_location(Path(path).stem, REPO / path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def arise_table() -> str:
    evaluate = script("benchmarks/arise/evaluate.py")
    return evaluate.markdown_table(
        evaluate.read_levels(REPO / "benchmarks" / "arise" / "results" / "levels.csv")
    )


BLOCKS = {
    "finetune-curve": lambda: script("benchmarks/finetune/table.py").table(),
    "uncertainty-phonons": lambda: script("benchmarks/uncertainty/table.py").table(),
    "arise": arise_table,
    "ehull": lambda: script("benchmarks/stability/ehull.py").table(),
}


@pytest.mark.parametrize("name", sorted(BLOCKS))
def test_readme_block_is_the_scripts_table_of_the_committed_results(name):
    from matgnn.catalog import replace_block

    readme = REPO / "README.md"
    text = readme.read_text()
    assert replace_block(text, name, BLOCKS[name](), readme) == text, (
        f"README block {name!r} is stale: rerun its benchmark script with --update README.md"
    )
