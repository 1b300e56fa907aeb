"""Features of a frozen backbone computed once per crystal, so that a head trains in seconds.

With ``finetune.freeze=backbone`` the backbone is a fixed function: running it every epoch on
every training crystal (CHGNet: about 20 crystals/s on a CPU core) is the whole cost of
training a head on it. :func:`attach_backbone_features` runs it once per crystal, in eval mode,
and puts the per-atom features on each graph (``backbone_scalars`` ``[N, F]``, for an
equivariant backbone ``backbone_irreps`` ``[N, D]``, and ``backbone_fingerprint``);
:meth:`matgnn.models.CrystalModel.backbone_features` reads them instead of running the backbone
when the fingerprint is the model's. Anything else (new structures, another backbone, an
unfrozen one) runs the backbone.

**Fingerprint** (:func:`backbone_fingerprint`): the backbone's config (registry data), every
tensor of its state dict (bytes, dtype, shape:
:mod:`matgnn.checkpoints.digest`), the graph config's fingerprint, the source file
of the backbone's class, and the versions of torch, matgnn and the pretrained-model packages.
Fine-tuned weights, other blocks, another cutoff, edited code or another release give another
fingerprint, never stale features. The LightningModule checks it again when fitting and
testing start (after a checkpoint is loaded: a resumed run's weights are the checkpoint's) and
computes the features again when it changed.

**Precision and device**: the features are computed once, before training, in the backbone's
own dtype (float32) on the device the model is on then (the CPU, before the trainer moves it),
by every DDP process (each writes the same part). Under bf16 mixed precision an uncached
backbone would run in bf16; the cached features are the float32 ones.

**On disk** (``<cache_dir>/backbone_features/<fingerprint>/part-*.pt``, read with
``weights_only=True``): each part holds the features of some crystals, keyed by a hash of the
graph's input fields (the structure and its graph, not its id or targets), so the folds of a
Matbench task, the seeds of a study and another task on the same structures reuse them (the
key leaves out the graph's id, name and targets). A part
that cannot be read or does not fit its crystals is reported with a warning and ignored.

When the features cannot stand for the backbone, caching is off (``cache_features=auto``) or
refused in words (``true``): a backbone with a trainable parameter, a dropout that is active in
training (MC dropout samples the backbone), or graphs kept in an on-disk store (nothing in
memory to attach them to).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import inspect
import json
import logging
import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch_geometric.data import Batch
from tqdm.auto import tqdm

from matgnn import __version__
from matgnn.checkpoints.digest import update_with_state, update_with_tensor

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
#: ``finetune.cache_features`` choices
CACHE_CHOICES = ("auto", "true", "false")
#: the fields :func:`attach_backbone_features` puts on each graph
FEATURE_FIELDS = ("backbone_scalars", "backbone_irreps", "backbone_fingerprint")
#: packages whose release changes what a pretrained backbone computes
_PACKAGES = ("torch", "torch_geometric", "e3nn", "chgnet", "sevenn")


def _installed(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def _source_hash(cls: type) -> str | None:
    """SHA-256 of the file that defines ``cls`` (its forward pass and what it reads)."""
    try:
        return hashlib.sha256(Path(inspect.getfile(cls)).read_bytes()).hexdigest()
    except (OSError, TypeError):
        return None


def backbone_fingerprint(
    backbone: nn.Module, backbone_config: Mapping[str, Any], graph_fingerprint: str
) -> str:
    """SHA-256 of what a backbone's features depend on (see the module docstring)."""
    h = hashlib.sha256()
    described = {
        "format": FORMAT_VERSION,
        "class": f"{type(backbone).__module__}.{type(backbone).__qualname__}",
        "code": _source_hash(type(backbone)),
        "config": backbone_config,
        "graph": graph_fingerprint,
        "matgnn": __version__,
        "packages": {p: _installed(p) for p in _PACKAGES},
    }
    h.update(json.dumps(described, sort_keys=True, default=str).encode())
    update_with_state(h, backbone.state_dict())
    return h.hexdigest()


def graph_key(graph: Any, skip: Iterable[str] = ()) -> str:
    """SHA-256 of a graph's fields except ``skip`` (its targets), its id and cached features:
    the same structure built with the same graph config has the same key in any data set."""
    h = hashlib.sha256()
    ignored = {*skip, "sample_id", "name", *FEATURE_FIELDS}
    for key in sorted(k for k in graph.keys() if k not in ignored):
        value = graph[key]
        h.update(key.encode())
        if isinstance(value, Tensor):
            update_with_tensor(h, value)
        else:
            h.update(repr(value).encode())
    return h.hexdigest()


def stochastic_modules(backbone: nn.Module) -> list[str]:
    """Names of the backbone's dropout layers with a non-zero probability: torch's and any
    other module whose class is a dropout with a ``p`` (e3nn's ``Dropout``, SevenNet's scalar
    dropout); they sample the features in training mode, so one stored copy cannot stand for
    them."""
    found = []
    for name, module in backbone.named_modules():
        is_dropout = isinstance(module, nn.modules.dropout._DropoutNd) or (
            "dropout" in type(module).__name__.lower() and hasattr(module, "p")
        )
        if is_dropout and float(getattr(module, "p", 0.0)) > 0:
            found.append(name or type(backbone).__name__)
    return found


def why_not_cached(backbone: nn.Module, subsets: Mapping[str, Sequence[Any]]) -> str | None:
    """Why this backbone's features cannot be cached for these graphs, in words (``None``: they
    can)."""
    trainable = [n for n, p in backbone.named_parameters() if p.requires_grad]
    if trainable:
        return (
            f"{len(trainable)} backbone tensors are trainable (e.g. {trainable[0]}); features "
            "are cached for a frozen backbone only (finetune.freeze=backbone)"
        )
    dropout = stochastic_modules(backbone)
    if dropout:
        return (
            f"the backbone has active dropout ({', '.join(dropout[:3])}), which samples its "
            "features in training: set its dropout to 0"
        )
    from matgnn.data.stores import StoredSubset

    stored = [name for name, graphs in subsets.items() if isinstance(graphs, StoredSubset)]
    if stored:
        return (
            f"the {', '.join(stored)} graphs are read from an on-disk store "
            "(task.data.store=disk), with nothing in memory to hold the features"
        )
    return None


class FeatureCache:
    """The on-disk features of one backbone fingerprint (see the module docstring).

    Args:
        root: the cache folder (``task.data.cache_dir``); the features go in
            ``<root>/backbone_features/<fingerprint>/``.
        fingerprint: :func:`backbone_fingerprint`.
    """

    def __init__(self, root: str | Path, fingerprint: str) -> None:
        self.fingerprint = fingerprint
        self.folder = Path(root) / "backbone_features" / fingerprint

    def load(self) -> dict[str, tuple[Tensor, Tensor | None]]:
        """``{graph key: (scalars, irreps or None)}`` from every readable part."""
        found: dict[str, tuple[Tensor, Tensor | None]] = {}
        for part in sorted(self.folder.glob("part-*.pt")):
            try:
                found.update(self._read(part))
            except Exception as error:  # any unreadable part is skipped, named
                log.warning("backbone features: %s ignored (%s); recomputed", part, error)
        return found

    def _read(self, part: Path) -> dict[str, tuple[Tensor, Tensor | None]]:
        stored = torch.load(part, map_location="cpu", weights_only=True)
        if stored.get("format") != FORMAT_VERSION or stored.get("fingerprint") != self.fingerprint:
            raise ValueError("written for another backbone or format")
        keys, atoms, scalars = stored["keys"], stored["atoms"], stored["scalars"]
        irreps = stored.get("irreps")
        total = int(atoms.sum())
        if len(keys) != atoms.numel() or scalars.size(0) != total:
            raise ValueError(f"{len(keys)} keys, {atoms.numel()} counts, {scalars.size(0)} rows")
        if irreps is not None and irreps.size(0) != total:
            raise ValueError(f"{irreps.size(0)} irreps rows for {total} atoms")
        sizes = atoms.tolist()
        split_irreps = irreps.split(sizes) if irreps is not None else [None] * len(keys)
        return dict(zip(keys, zip(scalars.split(sizes), split_irreps, strict=True), strict=True))

    def save(self, keys: Sequence[str], features: Sequence[tuple[Tensor, Tensor | None]]) -> Path:
        """Write one part (atomically) with these crystals' features."""
        self.folder.mkdir(parents=True, exist_ok=True)
        irreps = [i for _, i in features]
        content = {
            "format": FORMAT_VERSION,
            "fingerprint": self.fingerprint,
            "keys": list(keys),
            "atoms": torch.tensor([s.size(0) for s, _ in features], dtype=torch.long),
            "scalars": torch.cat([s for s, _ in features]),
            "irreps": None if irreps[0] is None else torch.cat(irreps),  # type: ignore[arg-type]
        }
        name = hashlib.sha256("\n".join(keys).encode()).hexdigest()[:16]
        target = self.folder / f"part-{name}.pt"
        handle, tmp = tempfile.mkstemp(dir=self.folder, prefix=".part-", suffix=".tmp")
        os.close(handle)
        try:
            torch.save(content, tmp)
            os.replace(tmp, target)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return target


@torch.no_grad()
def compute_features(
    backbone: nn.Module, graphs: Sequence[Any], batch_size: int = 32, show_progress: bool = False
) -> list[tuple[Tensor, Tensor | None]]:
    """Per crystal, the backbone's ``(scalars [N, F], irreps [N, D] or None)`` on the CPU, in
    eval mode (the mode restored after), in the backbone's own precision."""
    was_training = backbone.training
    backbone.eval()
    device = next(iter(backbone.parameters()), torch.empty(0)).device
    out: list[tuple[Tensor, Tensor | None]] = []
    starts = range(0, len(graphs), batch_size)
    try:
        for start in tqdm(starts, desc="backbone features", disable=not show_progress):
            chunk = graphs[start : start + batch_size]
            batch = Batch.from_data_list([_without_features(g) for g in chunk]).to(device)
            features = backbone(batch)
            atoms = [int(g.num_nodes) for g in chunk]
            scalars = features.scalars.cpu().split(atoms)
            irreps = (
                features.irreps.cpu().split(atoms)
                if features.irreps is not None
                else [None] * len(chunk)
            )
            out.extend(
                (s.clone(), None if i is None else i.clone())
                for s, i in zip(scalars, irreps, strict=True)
            )
    finally:
        backbone.train(was_training)
    return out


def _drop_features(graph: Any) -> None:
    """Remove any backbone features from ``graph`` (in place)."""
    for key in FEATURE_FIELDS:
        if key in graph:
            del graph[key]


def _without_features(graph: Any) -> Any:
    """``graph``, or a copy of it without backbone features when it has some."""
    if not any(k in graph for k in FEATURE_FIELDS):
        return graph
    graph = graph.clone()
    _drop_features(graph)
    return graph


def attach_backbone_features(
    model: Any,
    subsets: Mapping[str, Sequence[Any]],
    backbone_config: Mapping[str, Any],
    cache_dir: str | Path | None = None,
    show_progress: bool = False,
) -> str:
    """Compute (or read from ``cache_dir``) the frozen backbone's features of every graph in
    ``subsets``, put them on the graphs and tell ``model`` to use them; returns the
    fingerprint. The caller has checked :func:`why_not_cached`."""
    fingerprint = backbone_fingerprint(model.backbone, backbone_config, model.graph_fingerprint)
    skip = {o.key for o in model.outputs}
    graphs = [g for graphs in subsets.values() for g in graphs]
    keys = [graph_key(g, skip) for g in graphs]
    cache = FeatureCache(cache_dir, fingerprint) if cache_dir is not None else None
    known = cache.load() if cache is not None else {}
    missing: dict[str, Any] = {}
    for key, graph in zip(keys, graphs, strict=True):
        if key not in known or known[key][0].size(0) != graph.num_nodes:
            missing.setdefault(key, graph)
    if missing:
        computed = compute_features(
            model.backbone, list(missing.values()), show_progress=show_progress
        )
        known.update(zip(missing, computed, strict=True))
        if cache is not None:
            cache.save(list(missing), computed)
    log.info(
        "backbone features of %d crystals: %d computed, %d read from %s",
        len(set(keys)),
        len(missing),
        len(set(keys)) - len(missing),
        cache.folder if cache is not None else "memory",
    )
    for key, graph in zip(keys, graphs, strict=True):
        scalars, irreps = known[key]
        _drop_features(graph)  # another backbone's, from an earlier run in this process
        graph.backbone_scalars = scalars
        if irreps is not None:
            graph.backbone_irreps = irreps
        graph.backbone_fingerprint = fingerprint
    model.cached_features_fingerprint = fingerprint
    return fingerprint
