"""Which elements a set of graphs holds, and which of them a model never saw in training
(``model.provenance["elements"]``, recorded by every training run)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
from pymatgen.core import Element

from matgnn.graphs.data import CrystalGraph


def elements_of(graphs: Iterable[CrystalGraph]) -> list[str]:
    """The element symbols present in ``graphs``, by atomic number."""
    numbers: set[int] = set()
    for graph in graphs:
        numbers.update(int(z) for z in torch.unique(graph.atomic_numbers))
    return [Element.from_Z(z).symbol for z in sorted(numbers)]


def symbols_of(atomic_numbers: Iterable[int]) -> list[str]:
    """The element symbols of some atomic numbers, each once, by atomic number."""
    return [Element.from_Z(z).symbol for z in sorted({int(z) for z in atomic_numbers})]


def unseen_per_graph(seen: Sequence[str], graphs: Iterable[CrystalGraph]) -> list[list[str]]:
    """Per graph, its elements not in ``seen``, by atomic number."""
    known = set(seen)
    return [[e for e in elements_of([graph]) if e not in known] for graph in graphs]


def by_element(names: Iterable[str], per_graph: Iterable[list[str]]) -> dict[str, list[str]]:
    """``{element: names of the graphs holding it}`` from each named graph's elements
    (:func:`unseen_per_graph`), by atomic number."""
    found: dict[str, list[str]] = {}
    for name, elements in zip(names, per_graph, strict=True):
        for element in elements:
            found.setdefault(element, []).append(str(name))
    return dict(sorted(found.items(), key=lambda item: Element(item[0]).Z))


def unseen_elements(
    seen: Sequence[str], named_graphs: Iterable[tuple[str, CrystalGraph]]
) -> dict[str, list[str]]:
    """``{element: names of the graphs holding it}`` for the elements not in ``seen``, by
    atomic number."""
    named = list(named_graphs)
    return by_element([n for n, _ in named], unseen_per_graph(seen, [g for _, g in named]))


def describe_unseen(found: dict[str, list[str]], shown: int = 3) -> str:
    """``"Ne (2 structures: a, b); Ar (1 structures: c)"``."""
    return "; ".join(
        f"{element} ({len(names)} structures: {', '.join(names[:shown])}"
        f"{', ...' if len(names) > shown else ''})"
        for element, names in found.items()
    )
