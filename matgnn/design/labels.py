"""Model labels for the V-O data set, named as such.

The substituted V-O structures have no DFT energy. :func:`label_with_model` predicts a property
of every structure with a named matgnn pretrained model and returns it in a column that says so
(``<output>__predicted_by__<model>``), next to the MP DFT value of the known V-O structures;
:func:`labeller_check` measures the labeller on those known structures against their DFT
values. A structure the model refuses (overlapping atoms after substitution, say) keeps its row
with the reason and no label: nothing is dropped silently. :func:`save_labels` writes the table
with its provenance in the file's first line.

The default labeller, ``cgcnn_xie2018_formation_energy`` (Xie & Grossman's CGCNN trained on the
2017-04-19 MP snapshot, published test MAE 0.039 eV/atom), most likely saw the known MP V-O
structures in training, so its error on them is a lower bound on its error on the hypothetical
substituted ones, which are unrelaxed and often far from any stable structure.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from matgnn.design.records import read_records, write_records
from matgnn.design.vo_dataset import VODataset

#: the labeller used when none is named
DEFAULT_LABELLER = "cgcnn_xie2018_formation_energy"
DFT_COLUMN = "dft_formation_energy_per_atom"


def label_column(output: str, model: str) -> str:
    """The column of a model label: it names the model, never reads as DFT."""
    return f"{output}__predicted_by__{model}"


def label_with_model(
    data: VODataset, model: str = DEFAULT_LABELLER, batch_size: int = 64
) -> pd.DataFrame:
    """One row per structure: ``id``, ``known_vo``, the DFT formation energy (known V-O only),
    each scalar output of the pretrained ``model`` as a label column, and ``rejected`` (the
    model's reason, empty when labelled)."""
    from matgnn.checkpoints.pretrained import load_pretrained

    network = load_pretrained(model)
    result = network.predict(data.structures, data.ids, batch_size)
    row_of = {name: k for k, name in enumerate(result.names)}
    frame = pd.DataFrame(
        {"id": data.ids, "known_vo": data.known, DFT_COLUMN: data.dft_formation_energy}
    )
    for output in result.outputs:
        values = result.draws[output.name][0]
        if values.ndim != 1:
            continue  # a label is one number per crystal
        frame[label_column(output.name, model)] = [
            float(values[row_of[i]]) if i in row_of else math.nan for i in data.ids
        ]
    frame["rejected"] = [result.rejected.get(i, "") for i in data.ids]
    frame.attrs["labeller"] = model
    return frame


def labeller_check(frame: pd.DataFrame, column: str) -> dict[str, float]:
    """The labeller against DFT on the known V-O rows: ``known`` (rows), ``labelled`` (of
    them), ``mae`` and ``max_error`` (eV/atom)."""
    known = frame[frame["known_vo"]]
    both = known[np.isfinite(known[column].astype(float)) & known[DFT_COLUMN].notna()]
    errors = (both[column].astype(float) - both[DFT_COLUMN].astype(float)).abs()
    return {
        "known": len(known),
        "labelled": len(both),
        "mae": float(errors.mean()) if len(errors) else math.nan,
        "max_error": float(errors.max()) if len(errors) else math.nan,
    }


def save_labels(frame: pd.DataFrame, path: str | Path, provenance: str) -> None:
    """Gzipped CSV whose first line (``# {...}``) holds the provenance and the labeller."""
    header = {"provenance": provenance, "labeller": frame.attrs.get("labeller", "unknown")}
    write_records(frame, path, header)


def read_labels(path: str | Path) -> tuple[pd.DataFrame, dict[str, str]]:
    """The frame and the provenance header of :func:`save_labels`'s file."""
    return read_records(path, booleans=["known_vo"], texts=["rejected"])
