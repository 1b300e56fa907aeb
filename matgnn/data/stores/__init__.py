"""Where a data module keeps its graphs: in memory (a list, the default) or in an on-disk
graph store read lazily (``task.data.store=disk``, :mod:`matgnn.data.stores.disk`)."""

from matgnn.data.stores.disk import GraphStore, StoreError
from matgnn.data.stores.subset import LightGraphs, StoredSubset, light

STORE_KINDS = ("memory", "disk")

__all__ = ["STORE_KINDS", "GraphStore", "LightGraphs", "StoreError", "StoredSubset", "light"]
