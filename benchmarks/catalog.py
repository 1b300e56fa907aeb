"""What the config groups hold, as tables: every model of ``matgnn/configs/model/`` and every
task of ``matgnn/configs/task/``, read from the configs themselves (their header comments,
declared outputs, splits), and the pretrained models' cards. The docs' tables are generated
here (blocks ``models``, ``tasks``, ``pretrained`` of ``benchmarks/blocks.py``), so adding a
model or a task touches only its own files:

    python benchmarks/catalog.py                  # print the model and task tables
    python benchmarks/catalog.py --update docs/concepts/models.md docs/concepts/tasks.md \
        docs/how-to/pretrained-and-fine-tuning.md  # rewrite the blocks each page holds
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from pathlib import Path

from hydra import compose, initialize_config_dir

from matgnn.config_dir import CONFIG_DIR, graph_preset_of, group_options
from matgnn.config_dir import header as config_header

MARKERS = {"models": "models", "tasks": "tasks"}


def header(group: str, name: str, config_dir: str | Path = CONFIG_DIR) -> str:
    """The leading comment block of ``<config_dir>/<group>/<name>.yaml``, table-safe."""
    return config_header(group, name, config_dir).replace("|", "\\|")


def _compose(*overrides: str):
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose(config_name="train", overrides=["paths.output_dir=.", *overrides])


def task_table() -> str:
    from hydra.utils import instantiate

    rows = ["| task | outputs | split | description |", "|---|---|---|---|"]
    for name in group_options("task"):
        cfg = _compose(f"task={name}")
        outputs = [instantiate(c) for c in cfg.task.outputs.values()]
        described = ", ".join(
            f"`{o.name}` ({type(o).__name__.removesuffix('Output').lower()}"
            + (f", {o.units}" if o.units else "")
            + ")"
            for o in outputs
        )
        split = cfg.task.data.split.kind
        rows.append(f"| `{name}` | {described} | {split} | {header('task', name)} |")
    return "\n".join(rows)


def model_table(config_dir: str | Path = CONFIG_DIR) -> str:
    """One row per model config (of ``config_dir``): name, graph preset, description."""
    rows = ["| model | graph | description |", "|---|---|---|"]
    for name in group_options("model", config_dir):
        graph = graph_preset_of(name, config_dir)
        rows.append(f"| `{name}` | `{graph}` | {header('model', name, config_dir)} |")
    return "\n".join(rows)


def element_range(symbols: list[str]) -> str:
    """``"87: H-Pu without Ne, Ar, ..."``: a model card's training elements in a few words."""
    from pymatgen.core import Element

    if not symbols:
        return "not recorded"
    numbers = sorted(Element(s).Z for s in symbols)
    gaps = [
        Element.from_Z(z).symbol
        for z in range(numbers[0], numbers[-1] + 1)
        if z not in set(numbers)
    ]
    span = (
        f"{len(numbers)}: {Element.from_Z(numbers[0]).symbol}-{Element.from_Z(numbers[-1]).symbol}"
    )
    return span + (f" without {', '.join(gaps)}" if gaps else "")


def pretrained_table() -> str:
    """The pretrained models shipped in the package, from their cards."""
    from matgnn.checkpoints.pretrained import PACKAGE_DIR, cards

    lines = [
        "| name | task | data | test metric | trainable parameters | file | training | elements |",
        "|---|---|---|---|---:|---:|---|---|",
    ]
    for model in cards([PACKAGE_DIR]).values():
        card = model.card
        r2 = [v for k, v in card["test_metrics"].items() if k.endswith("_r2")]
        metrics = card["metric"] + (f", R² {r2[0]:.3f}" if r2 else "")
        lines.append(
            f"| `{card['name']}` | {card['task']} | {card['data']} | {metrics} "
            f"| {card['parameters']:,} | {card['size_mb']} MB | {card['budget']} "
            f"| {element_range(card.get('elements', []))} |"
        )
    return "\n".join(lines)


TABLES = {"models": model_table, "tasks": task_table, "pretrained": pretrained_table}


def _markers(name: str) -> tuple[str, str]:
    return f"<!-- {name}:start -->\n", f"<!-- {name}:end -->"


def has_block(text: str, name: str) -> bool:
    """Whether ``text`` has a generated block ``name`` (see :func:`replace_block`)."""
    start, end = _markers(name)
    return start in text and end in text


def replace_block(text: str, name: str, table: str, path: Path) -> str:
    """``text`` with the lines between ``<!-- <name>:start -->`` and ``<!-- <name>:end -->``
    replaced by ``table``; a clear error names ``path`` when the block is missing."""
    start, end = _markers(name)
    if not has_block(text, name):
        raise ValueError(f"{path}: no {start.strip()} ... {end} block")
    before, rest = text.split(start, 1)
    return before + start + table + "\n" + end + rest.split(end, 1)[1]


def write_block(paths: Sequence[str | Path], name: str, table: str) -> None:
    """Replace the block ``name`` of every file in ``paths`` by ``table`` (the benchmark
    scripts' ``--update <docs page>``)."""
    for path in map(Path, paths):
        path.write_text(replace_block(path.read_text(), name, table, path))


def publish(text: str, pages: Sequence[str | Path], block: str) -> None:
    """Print a script's table, and write it into the docs block ``block`` of ``pages``."""
    print(text)
    write_block(pages, block, text)


def table_script(
    description: str,
    block: str,
    collect: Callable[[Path], None],
    table: Callable[[], str],
    after: Callable[[], None] | None = None,
) -> None:
    """The command line of a benchmark table script, ``[--collect <runs folder>] [--update
    <docs page> ...]``: collect stored results from the runs, print the table (then ``after``,
    e.g. a plot) and write it into the docs block ``block``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--collect", type=Path)
    parser.add_argument("--update", nargs="*", default=[])
    args = parser.parse_args()
    if args.collect:
        collect(args.collect)
    text = table()
    print(text)
    if after is not None:
        after()
    write_block(args.update, block, text)


def rendered(path: Path) -> str:
    """The text of ``path`` with each of this module's tables that it holds (between
    ``<!-- <name>:start -->`` and ``<!-- <name>:end -->``) generated anew; a page with none of
    them is an error naming it."""
    new = path.read_text()
    names = [name for name in TABLES if has_block(new, name)]
    if not names:
        raise ValueError(f"{path}: none of the blocks {sorted(TABLES)}")
    for name in names:
        new = replace_block(new, name, TABLES[name](), path)
    return new


def update(path: Path) -> bool:
    """Rewrite the generated tables of ``path``; returns whether the file changed."""
    text = path.read_text()
    new = rendered(path)
    if new != text:
        path.write_text(new)
    return new != text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--update", type=Path, nargs="*", default=[], help="Markdown pages")
    args = parser.parse_args()
    for path in args.update:
        print(f"{path}: {'updated' if update(path) else 'already up to date'}")
    if not args.update:
        print(model_table(), "", task_table(), sep="\n")


if __name__ == "__main__":
    main()
