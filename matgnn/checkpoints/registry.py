"""The registry of what a checkpoint may name: a stable name -> one matgnn class.

A checkpoint stores its model as data (:mod:`matgnn.checkpoints.safe_config`): every object is
``{"@class": <registered name>, "@version": <int>, **arguments}``. The name is looked up here
and nowhere else, so a checkpoint can only ever construct the classes listed by
:func:`registered`, never an arbitrary callable, and moving a class to another module does not
break a checkpoint (its name stays).

Register a class where it is defined::

    @register("cgcnn")
    class CGCNN(Backbone): ...

``version`` counts changes of a class's constructor arguments; a checkpoint written with an
older version is brought up to date by the functions registered with :func:`migration` (after
matgl's ``@model_version``). Nothing here imports anything named by a file.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

#: what a registered name looks like: lowercase words joined by ``_``
NAME = re.compile(r"^[a-z][a-z0-9_]*$")

#: a class migration: the arguments stored at version ``v`` -> the arguments of ``v + 1``
ArgsMigration = Callable[[dict[str, Any]], dict[str, Any]]


@dataclass
class Entry:
    """One registered class: its stable name, the class, its current version and the
    migrations ``{from_version: function}`` that bring older arguments up to date."""

    name: str
    cls: type
    version: int = 1
    migrations: dict[int, ArgsMigration] = field(default_factory=dict)


_BY_NAME: dict[str, Entry] = {}
_BY_CLASS: dict[type, Entry] = {}


def register(name: str, version: int = 1) -> Callable[[type], type]:
    """Class decorator: ``cls`` may be named ``name`` in a checkpoint.

    Args:
        name: the stable name (``[a-z][a-z0-9_]*``), never reused for another class.
        version: the version of the constructor's arguments (1 for a new class; raise it with
            a :func:`migration` from the previous version when the arguments change).
    """
    if not NAME.match(name):
        raise ValueError(f"registry name {name!r} must match {NAME.pattern}")
    if int(version) < 1:
        raise ValueError(f"registry {name}: version must be >= 1, got {version}")

    def decorate(cls: type) -> type:
        known = _BY_NAME.get(name)
        if known is not None and known.cls.__qualname__ != cls.__qualname__:
            raise ValueError(
                f"registry name {name!r} is taken by {known.cls.__module__}."
                f"{known.cls.__qualname__}; {cls.__module__}.{cls.__qualname__} needs another"
            )
        migrations = known.migrations if known is not None else {}
        entry = Entry(name, cls, int(version), migrations)
        if known is not None:  # a module reloaded (tests): the new class object wins
            _BY_CLASS.pop(known.cls, None)
        _BY_NAME[name] = entry
        _BY_CLASS[cls] = entry
        cls.registry_name = name
        return cls

    return decorate


def migration(name: str, from_version: int) -> Callable[[ArgsMigration], ArgsMigration]:
    """Decorator of a function that turns the stored arguments of ``name`` at
    ``from_version`` into those of ``from_version + 1`` (pure data in, pure data out)."""

    def decorate(function: ArgsMigration) -> ArgsMigration:
        entry = _BY_NAME.get(name)
        if entry is None:
            raise ValueError(f"migration for unregistered name {name!r}")
        entry.migrations[int(from_version)] = function
        return function

    return decorate


@functools.cache
def load_builtin() -> None:
    """Import matgnn's own modules that register classes (fixed imports, nothing from a file),
    so that the registry is complete before a checkpoint is validated."""
    import matgnn.graphs.config
    import matgnn.heads
    import matgnn.models
    import matgnn.outputs  # noqa: F401


def entry(name: str) -> Entry | None:
    """The entry registered as ``name``, or ``None``."""
    load_builtin()
    return _BY_NAME.get(name)


def name_of(cls: type) -> str:
    """The registered name of ``cls``; a class that is not registered is refused in words."""
    found = _BY_CLASS.get(cls)
    if found is None:
        raise ValueError(
            f"{cls.__module__}.{cls.__qualname__} is not a registered matgnn class, so a "
            "checkpoint cannot name it: decorate it with "
            "@matgnn.checkpoints.registry.register('<name>')"
        )
    return found.name


def entry_of(cls: type) -> Entry:
    """The entry of registered class ``cls`` (refused in words, as :func:`name_of`)."""
    return _BY_NAME[name_of(cls)]


def registered() -> dict[str, type]:
    """Every registered name and its class, sorted by name."""
    load_builtin()
    return {name: _BY_NAME[name].cls for name in sorted(_BY_NAME)}
