"""matminer's data-set files (``<name>.json.gz``, a pandas frame in ``split`` orientation with
pymatgen objects as marked dicts) read as data.

matminer's own reader (``matminer.utils.io.load_dataframe_from_json``, which ``load_dataset``
and ``matbench.data_ops.load`` call) decodes the whole document with monty's ``MontyDecoder``,
which imports any module a marker names; and ``load_dataset`` checks a file's hash only when it
downloads it, not for a copy already on disk. :func:`read_matminer_json` parses the file
without decoding, refuses any marker but pymatgen's structure classes
(:func:`matgnn.graphs.structure_json.check_markers`), then decodes what is left as matminer
does, so the frame is the one matminer would give.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from matgnn.graphs.structure_json import decode_document, read_json_document
from matgnn.terminal import is_terminal


def read_matminer_json(path: Path | str) -> pd.DataFrame:
    """The frame of a matminer-format JSON file (plain or compressed), its pymatgen objects
    decoded after every marker was checked.

    Raises:
        ValueError: naming ``path``, for a marker of another class (nothing is imported) or a
            document that is not a frame.
    """
    document = read_json_document(path)
    if isinstance(document, dict) and set(document) == {"data", "columns", "index"}:
        rows = document["data"]
        if is_terminal(sys.stderr):
            from tqdm.auto import tqdm

            rows = tqdm(rows, desc=f"decoding {Path(path).name}", leave=False)
        data = [decode_document(row) for row in rows]
        return pd.DataFrame(data=data, index=document["index"], columns=document["columns"])
    if isinstance(document, dict | list):
        return pd.DataFrame(decode_document(document))
    raise ValueError(f"{path}: not a matminer data set (a JSON {type(document).__name__})")


def matminer_file(name: str, data_home: str | Path | None = None) -> Path:
    """The file of matminer's data set ``name`` as ``matminer.datasets.load_dataset`` finds
    it: ``<data_home>/<name>.json.gz`` (``data_home`` None: ``$MATMINER_DATA``, else matminer's
    package folder), downloaded and checked against matminer's hash when it is missing (on a
    connected machine); a copy already there is read as it is (:func:`read_matminer_json`
    checks what it names)."""
    from matminer.datasets.utils import _get_data_home, _load_dataset_dict, _validate_dataset

    datasets = _load_dataset_dict()
    if name not in datasets:
        raise ValueError(f"{name}: not a matminer data set")
    metadata = datasets[name]
    path = Path(_get_data_home(None if data_home is None else str(data_home)))
    path = path / f"{name}.{metadata['file_type']}"
    _validate_dataset(str(path), metadata["url"], metadata["hash"], True)
    return path
