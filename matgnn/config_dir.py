"""Where the Hydra config groups live.

The config groups are the package ``matgnn.configs`` (``matgnn/configs/``, found by
``packages.find`` with its YAML as package data), so a wheel carries them and Hydra finds them
as ``pkg://matgnn.configs`` from any working directory, editable install or not.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources
from pathlib import Path

from omegaconf import OmegaConf

CONFIG_PACKAGE = "matgnn.configs"
#: Hydra's search path of the config groups (``@hydra.main(config_path=...)``).
CONFIG_PATH = f"pkg://{CONFIG_PACKAGE}"
CONFIG_DIR = Path(str(resources.files(CONFIG_PACKAGE)))

# ${matgnn.or:a,b}: a unless it is null or empty, else b (oc.select returns a null value as is)
OmegaConf.register_new_resolver(
    "matgnn.or", lambda value, default: default if value in (None, "") else value, replace=True
)


def group_options(group: str, config_dir: str | Path = CONFIG_DIR) -> list[str]:
    """Names of the options of a config group, e.g. ``group_options("model")``: tests,
    benchmarks and the docs tables discover models and tasks from here (``config_dir``: a
    config folder of your own, a copy of this one with your additions)."""
    return sorted(p.stem for p in (Path(config_dir) / group).glob("*.yaml"))


def compose_option(
    group: str, name: str, overrides: Sequence[str] = (), config_dir: str | Path = CONFIG_DIR
):
    """The composed config node of one option of a group, its defaults applied (a model config
    takes its graph preset): ``instantiate(compose_option("model", "alignn"))`` is the model."""
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(config_dir), version_base="1.3"):
        return compose(overrides=[f"+{group}={name}", *overrides])[group]


#: the model options that are pretrained foundation backbones (their own benchmarks)
FOUNDATION_MODELS = ("chgnet", "sevennet")


def plain_structure_options(group: str, config_dir: str | Path = CONFIG_DIR) -> list[str]:
    """The options of ``group`` (``model`` or ``graph``) whose graph takes any structure and
    that train from scratch: not those that read prototype site descriptors (``ye2018_net``,
    graph ``ye2018_perovskite``), which only the structures of the ``ye2018_*`` tasks carry,
    nor the pretrained foundation backbones (:data:`FOUNDATION_MODELS`), which have
    benchmarks of their own. What a benchmark or a sweep over every model runs on plain
    MP structures."""
    if group not in ("model", "graph"):
        raise ValueError(f"group={group!r}: model or graph")
    kept = []
    for name in group_options(group, config_dir):
        node = compose_option(group, name, config_dir=config_dir)
        graph = node.get("graph") if group == "model" else node
        graph = graph or {}
        pretrained = name in FOUNDATION_MODELS or graph.get("foundation_graph")
        if not graph.get("site_descriptors") and not pretrained:
            kept.append(name)
    return kept


def header(group: str, name: str, config_dir: str | Path = CONFIG_DIR) -> str:
    """The leading comment block of ``<config_dir>/<group>/<name>.yaml`` as one paragraph: a
    model's or task's own description (docs tables, a Matbench submission's text)."""
    lines = []
    for line in (Path(config_dir) / group / f"{name}.yaml").read_text().splitlines():
        if not line.startswith("#"):
            break
        lines.append(line.lstrip("#").strip())
    return " ".join(x for x in lines if x)


def graph_preset_of(model: str, config_dir: str | Path = CONFIG_DIR) -> str | None:
    """The graph preset a model config composes (``- /graph@graph: <name>`` in its defaults)."""
    defaults = OmegaConf.load(Path(config_dir) / "model" / f"{model}.yaml").get("defaults") or []
    for entry in defaults:
        if OmegaConf.is_dict(entry) or isinstance(entry, dict):
            for key, value in dict(entry).items():
                if str(key).startswith("/graph@"):
                    return str(value)
    return None


def option_path(group: str, name: str) -> Path:
    """``matgnn/configs/<group>/<name>.yaml``; a clear error names the known options."""
    path = CONFIG_DIR / group / f"{name}.yaml"
    if not path.is_file():
        raise ValueError(f"unknown {group} config {name!r}; known: {group_options(group)}")
    return path


def default_data_dir() -> Path:
    """``paths.data_dir`` as ``matgnn/configs/paths/default.yaml`` resolves it outside a Hydra run
    (``$MATGNN_DATA_DIR``, else ``../shared/data``): for scripts that read data sets directly."""
    return Path(OmegaConf.load(CONFIG_DIR / "paths" / "default.yaml").data_dir)
