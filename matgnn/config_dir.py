"""Where the Hydra config groups live.

``configs/`` at the top of the repository is installed as the package ``matgnn.configs``
(``pyproject.toml`` maps it), so a wheel carries it and Hydra finds it as
``pkg://matgnn.configs`` from any working directory, editable install or not.
"""

from __future__ import annotations

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


def group_options(group: str) -> list[str]:
    """Names of the options of a config group, e.g. ``group_options("model")``: tests,
    benchmarks and the README tables discover models and tasks from here."""
    return sorted(p.stem for p in (CONFIG_DIR / group).glob("*.yaml"))


def option_path(group: str, name: str) -> Path:
    """``configs/<group>/<name>.yaml``; a clear error names the known options."""
    path = CONFIG_DIR / group / f"{name}.yaml"
    if not path.is_file():
        raise ValueError(f"unknown {group} config {name!r}; known: {group_options(group)}")
    return path


def default_data_dir() -> Path:
    """``paths.data_dir`` as ``configs/paths/default.yaml`` resolves it outside a Hydra run
    (``$MATGNN_DATA_DIR``, else ``../shared/data``): for scripts that read data sets directly."""
    return Path(OmegaConf.load(CONFIG_DIR / "paths" / "default.yaml").data_dir)
