"""Pretrained models with model cards: ``list_pretrained()`` and ``load_pretrained(name)``.

A pretrained model is a folder ``<name>/`` holding ``card.json`` (the model card) and the
checkpoint the card names. The card gives:
* what was trained: name, task, data and split, test metrics, parameter count;
* how: budget, training time, config;
* the licence of the data;
* the file, with its SHA-256 and, for a large model, a ``url``.

Models are looked up, in order:
1. in the folders of ``MATGNN_PRETRAINED_DIR`` (``os.pathsep``-separated; a local mirror);
2. in the package (``matgnn/resources/pretrained``, the small models).

A card whose file is not there is fetched from its ``url`` into
``~/.cache/matgnn/pretrained/<name>/``. The same code path reads a local file
(``file://...``) and a download. Every file is checked against the card's SHA-256 before it is
loaded, and loaded with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from matgnn.checkpoints.files import model_from_checkpoint, read_checkpoint
from matgnn.graphs.cache import file_sha256

if TYPE_CHECKING:
    from matgnn.models import CrystalModel


PACKAGE_DIR = Path(__file__).parents[1] / "resources" / "pretrained"
CACHE_DIR = Path.home() / ".cache" / "matgnn" / "pretrained"
CARD = "card.json"


@dataclass(frozen=True)
class ModelCard:
    """A pretrained model's card (``card.json``); ``folder`` is where it was found."""

    name: str
    task: str
    data: str
    metric: str
    card: dict[str, Any]
    folder: Path

    @property
    def file(self) -> Path:
        return self.folder / self.card["file"]


def search_path() -> list[Path]:
    """The folders searched for pretrained models, first match wins."""
    local = [Path(p) for p in os.environ.get("MATGNN_PRETRAINED_DIR", "").split(os.pathsep) if p]
    return [*local, PACKAGE_DIR]


#: a card's model name and file name: one path component, no folder, no ``..``
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
#: where a card's ``url`` may point
URL_SCHEMES = ("https", "file")
SHA256 = re.compile(r"^[0-9a-f]{64}$")


def read_card(path: Path) -> dict[str, Any]:
    """A ``card.json``, checked: it is data from whoever made the folder, so its ``name`` and
    ``file`` must be plain names (no path that leaves the folder or the download cache), its
    ``sha256`` a SHA-256 and its ``url`` an https or file URL."""
    try:
        card = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: not a readable model card ({exc})") from None
    problems = [
        f"{key}={card.get(key)!r} is not a plain name"
        for key in ("name", "file")
        if not (isinstance(card.get(key), str) and SAFE_NAME.match(card[key]))
        or ".." in str(card.get(key))
    ]
    for key in ("task", "data", "metric"):
        if not isinstance(card.get(key), str):
            problems.append(f"{key} missing")
    if not (isinstance(card.get("sha256"), str) and SHA256.match(card["sha256"])):
        problems.append("sha256 is not a SHA-256 hex digest")
    url = card.get("url")
    if url is not None and urllib.parse.urlparse(str(url)).scheme not in URL_SCHEMES:
        problems.append(f"url {url!r} is not an https or file URL")
    if problems:
        raise ValueError(f"{path}: refused: " + "; ".join(problems))
    return card


def cards(roots: list[Path] | None = None) -> dict[str, ModelCard]:
    """Every model card in ``roots`` (default: the search path), by name; the first wins."""
    found: dict[str, ModelCard] = {}
    for root in search_path() if roots is None else roots:
        for path in sorted(root.glob(f"*/{CARD}")) if root.is_dir() else []:
            card = read_card(path)
            found.setdefault(
                card["name"],
                ModelCard(
                    name=card["name"],
                    task=card["task"],
                    data=card["data"],
                    metric=card["metric"],
                    card=card,
                    folder=path.parent,
                ),
            )
    return found


def list_pretrained() -> list[dict[str, Any]]:
    """One row per pretrained model: name, task, data, metric, size, training budget and
    whether its file is here."""
    return [
        {
            "name": c.name,
            "task": c.task,
            "data": c.data,
            "metric": c.metric,
            "parameters": c.card.get("parameters"),
            "size_mb": c.card.get("size_mb"),
            "budget": c.card.get("budget", ""),
            "available": c.file.is_file(),
        }
        for c in cards().values()
    ]


def pretrained_file(name: str) -> Path:
    """The checked checkpoint file of pretrained model ``name`` (fetched from the card's url
    when no folder on the search path has it)."""
    known = cards()
    if name not in known:
        raise ValueError(
            f"no pretrained model {name!r}; known: {sorted(known) or 'none'} (search path: "
            f"{[str(p) for p in search_path()]})"
        )
    card = known[name]
    path = card.file
    if not path.is_file():
        url = card.card.get("url")
        if not url:
            raise FileNotFoundError(f"pretrained {name}: {path} is missing and the card has no url")
        path = CACHE_DIR / name / card.card["file"]
        if not path.is_file():  # downloaded, checked, and only then put in place
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_suffix(path.suffix + ".part")
            with urllib.request.urlopen(url) as response, open(partial, "wb") as handle:
                shutil.copyfileobj(response, handle)
            actual = file_sha256(partial)
            if actual != card.card["sha256"]:
                partial.unlink()
                raise ValueError(
                    f"pretrained {name}: the download from {url} has SHA-256 {actual}, the card "
                    f"says {card.card['sha256']}; it is corrupt or not this model (not kept)"
                )
            partial.replace(path)
    actual = file_sha256(path)
    if actual != card.card["sha256"]:
        raise ValueError(
            f"pretrained {name}: {path} has SHA-256 {actual}, the card says "
            f"{card.card['sha256']}; the file is corrupt or not this model"
        )
    return path


def load_pretrained(name: str) -> CrystalModel:
    """The pretrained model ``name`` in eval mode (:func:`list_pretrained` lists them)."""
    model = model_from_checkpoint(read_checkpoint(pretrained_file(name))).eval()
    model.provenance = {**model.provenance, "pretrained": name}
    return model


def resolve_checkpoint(source: str | Path) -> Path:
    """A checkpoint file, or the file of the pretrained model named ``source``."""
    path = Path(source)
    if path.is_file():
        return path
    if str(source) in cards():
        return pretrained_file(str(source))
    raise FileNotFoundError(
        f"{source}: neither a checkpoint file nor a pretrained model (known: {sorted(cards())})"
    )
