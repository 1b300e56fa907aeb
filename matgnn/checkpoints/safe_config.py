"""Model configs as data: validated against the registry before anything is constructed.

A checkpoint's model is a tree of plain values (``None``, ``bool``, ``int``, ``float``,
``str``, lists and string-keyed dicts). A dict with an ``"@class"`` key is an object::

    {"@class": "regression_head", "@version": 1, "@partial": true, "hidden": [128], ...}

``@class`` must be a registered name (:mod:`matgnn.checkpoints.registry`); ``@version`` (default
1) is the version of its arguments when written, brought up to date by the class's migrations;
``@partial: true`` makes a factory (``functools.partial``) instead of an object, for a head that
gets its input width from the backbone.

:func:`validate` walks the whole tree first and refuses, naming the key path, any unregistered
name, any Hydra key (``_target_``, ``_partial_``, ``_args_``, ...), any other ``@`` key, any
value that is not plain data and any version newer than this matgnn knows. Only then does
:func:`build` construct, bottom-up, by looking names up in the registry: no string read from a
file reaches ``hydra.utils.instantiate``, an import or a pickle loader.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from typing import Any

from matgnn.checkpoints import registry

CLASS, VERSION, PARTIAL = "@class", "@version", "@partial"
MARKERS = (CLASS, VERSION, PARTIAL)
#: keys that Hydra's instantiate acts on: never allowed in a checkpoint
HYDRA_KEYS = ("_target_", "_partial_", "_args_", "_recursive_", "_convert_")
#: deeper trees are refused (a crafted file could nest without end)
MAX_DEPTH = 32
#: larger trees are refused: a model config has a few hundred values, and shared references in
#: a crafted file could make a small file a huge tree to walk
MAX_NODES = 100_000


class UnsafeConfigError(ValueError):
    """A config that names something outside the registry, or holds more than plain data."""


def _where(path: str) -> str:
    return path or "<root>"


def check_size(value: Any, path: str = "") -> None:
    """Refuse a tree deeper than :data:`MAX_DEPTH` or with more than :data:`MAX_NODES` values
    (counted as visited, so shared references count every time): run first, before anything
    else walks a tree read from a file."""
    stack = [(value, path, 0)]
    count = 0
    while stack:
        node, where, depth = stack.pop()
        count += 1
        if count > MAX_NODES:
            raise UnsafeConfigError(f"{_where(path)}: more than {MAX_NODES} values")
        if depth > MAX_DEPTH:
            raise UnsafeConfigError(f"{_where(where)}: nested deeper than {MAX_DEPTH} levels")
        if isinstance(node, Mapping):
            stack.extend((v, f"{where}.{k}", depth + 1) for k, v in node.items())
        elif isinstance(node, list | tuple):
            stack.extend((v, f"{where}[{i}]", depth + 1) for i, v in enumerate(node))


def check_plain(value: Any, path: str = "", depth: int = 0, objects: bool = False) -> None:
    """Refuse anything in ``value`` but plain data; with ``objects``, ``@class`` nodes are
    allowed (and checked by :func:`validate`), else every ``@`` key is refused too."""
    if depth > MAX_DEPTH:
        raise UnsafeConfigError(f"{_where(path)}: nested deeper than {MAX_DEPTH} levels")
    if value is None or isinstance(value, bool | int | str):
        return
    if isinstance(value, float):
        if math.isnan(value):  # a NaN in a config is never meant
            raise UnsafeConfigError(f"{_where(path)}: NaN is not a config value")
        return
    if isinstance(value, list | tuple):
        for k, item in enumerate(value):
            check_plain(item, f"{path}[{k}]", depth + 1, objects)
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise UnsafeConfigError(f"{_where(path)}: key {key!r} is not a string")
            here = f"{path}.{key}" if path else key
            if key in HYDRA_KEYS:
                raise UnsafeConfigError(
                    f"{here}: a checkpoint may not carry Hydra's {key!r} (its value "
                    f"{str(item)[:80]!r} would name a callable); objects are named by "
                    f"'@class' from the registry of matgnn classes"
                )
            if key.startswith("@") and not (objects and key in MARKERS):
                raise UnsafeConfigError(f"{here}: unknown marker {key!r}")
            check_plain(item, here, depth + 1, objects)
        return
    raise UnsafeConfigError(
        f"{_where(path)}: {type(value).__module__}.{type(value).__qualname__} is not plain "
        "data (None, bool, int, float, str, list, dict)"
    )


def validate(config: Any, path: str = "", root: str | None = None) -> None:
    """Check the whole tree (see the module docstring); raises :class:`UnsafeConfigError`
    naming the key path of the first problem. ``root``: the registered name the tree's root
    object must have (``crystal_model`` for a model)."""
    check_plain(config, path, objects=True)
    _validate_objects(config, path)
    if root is not None and (not isinstance(config, Mapping) or config.get(CLASS) != root):
        found = config.get(CLASS) if isinstance(config, Mapping) else config
        raise UnsafeConfigError(
            f"{path}.{CLASS}: the root must be a {root!r}, got {str(found)[:80]!r}"
        )


def _validate_objects(node: Any, path: str) -> None:
    if isinstance(node, list | tuple):
        for k, item in enumerate(node):
            _validate_objects(item, f"{path}[{k}]")
        return
    if not isinstance(node, Mapping):
        return
    if CLASS in node:
        name = node[CLASS]
        where = f"{path}.{CLASS}" if path else CLASS
        if not isinstance(name, str):
            raise UnsafeConfigError(f"{where}: must be a registered name, got {name!r}")
        found = registry.entry(name)
        if found is None:
            raise UnsafeConfigError(
                f"{where}: {name[:80]!r} is not a registered matgnn class; a checkpoint may "
                f"only name {sorted(registry.registered())}"
            )
        version = node.get(VERSION, 1)
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise UnsafeConfigError(f"{path}.{VERSION}: must be an integer >= 1, got {version!r}")
        if version > found.version:
            raise UnsafeConfigError(
                f"{_where(path)}: {name} version {version} was written by a newer matgnn "
                f"(this one knows up to version {found.version}); upgrade matgnn"
            )
        missing = [v for v in range(version, found.version) if v not in found.migrations]
        if missing:
            raise UnsafeConfigError(
                f"{_where(path)}: no migration of {name} from version {missing[0]}"
            )
        if not isinstance(node.get(PARTIAL, False), bool):
            raise UnsafeConfigError(f"{path}.{PARTIAL}: must be true or false")
    elif VERSION in node or PARTIAL in node:
        raise UnsafeConfigError(f"{_where(path)}: '@version'/'@partial' without '@class'")
    for key, item in node.items():
        if key not in MARKERS:
            _validate_objects(item, f"{path}.{key}" if path else key)


def arguments(node: Mapping[str, Any]) -> dict[str, Any]:
    """The constructor arguments of an object node, migrated to the class's current version."""
    found = registry.entry(node[CLASS])
    args = {k: v for k, v in node.items() if k not in MARKERS}
    for version in range(int(node.get(VERSION, 1)), found.version):
        args = found.migrations[version](dict(args))
    return args


def build(config: Any, path: str = "", root: str | None = None) -> Any:
    """Validate ``config`` (its root a ``root`` where given), then construct its objects
    bottom-up from the registry."""
    validate(config, path, root)
    return _build(config, path)


def _build(node: Any, path: str) -> Any:
    if isinstance(node, list | tuple):
        return [_build(item, f"{path}[{k}]") for k, item in enumerate(node)]
    if not isinstance(node, Mapping):
        return node
    values = {
        key: _build(item, f"{path}.{key}" if path else key)
        for key, item in (arguments(node) if CLASS in node else node).items()
    }
    if CLASS not in node:
        return values
    cls = registry.entry(node[CLASS]).cls
    if node.get(PARTIAL, False):
        return functools.partial(cls, **values)
    try:
        return cls(**values)
    except TypeError as exc:  # wrong arguments: say where, not deep in a constructor
        raise ValueError(f"{_where(path)}: cannot build {node[CLASS]} ({exc})") from None


def object_node(cls: type, partial: bool = False, **arguments: Any) -> dict[str, Any]:
    """The config node of registered ``cls`` with ``arguments``."""
    name = registry.name_of(cls)
    node: dict[str, Any] = {CLASS: name, VERSION: registry.entry(name).version}
    if partial:
        node[PARTIAL] = True
    return {**node, **arguments}
