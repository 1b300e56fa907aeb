"""Data-set files are data: a matminer data set (Matbench, the tensor sets), a local copy in
matminer's own folder, and a structure column of a table are refused, unimported, when a marker
in them names another Python object; a table without the columns a loader reads, or with
repeated ids, is refused by name."""

from __future__ import annotations

import gzip
import json
import sys

import pandas as pd
import pytest
from matminer.utils.io import store_dataframe_as_json

from matgnn.data.records import Records
from matgnn.data.samples import mp_sample_frame, mp_sample_structures
from matgnn.data.sources.matbench import matbench
from matgnn.data.sources.matminer_json import read_matminer_json
from tests.marker_probe import PAYLOADS, PROBE, crafted


def matminer_file(path, frame: pd.DataFrame, payload=None) -> None:
    """``frame`` written as matminer writes a data set; with ``payload`` put into the second
    site's properties of the first row's structure."""
    store_dataframe_as_json(frame, str(path), compression="gz")
    if payload is None:
        return
    with gzip.open(path, "rt") as handle:
        document = json.load(handle)
    document["data"][0][0]["sites"][1]["properties"]["note"] = payload
    path.write_bytes(gzip.compress(json.dumps(document).encode()))


def eform_frame(rows: int = 40) -> pd.DataFrame:
    """Real MP structures with their formation energies, in a Matbench file's two columns."""
    _, structures = mp_sample_structures(rows)
    e_form = mp_sample_frame()["formation_energy_per_atom"].to_numpy()[:rows]
    return pd.DataFrame({"structure": structures, "e_form": e_form})


def test_a_matminer_file_reads_as_matminer_reads_it(tmp_path):
    from matminer.utils.io import load_dataframe_from_json

    frame = eform_frame(5)
    path = tmp_path / "x.json.gz"
    matminer_file(path, frame)
    ours, theirs = read_matminer_json(path), load_dataframe_from_json(str(path), pbar=False)
    assert list(ours.columns) == list(theirs.columns) and list(ours.index) == list(theirs.index)
    assert all(a == b for a, b in zip(ours["structure"], theirs["structure"], strict=True))
    assert ours["e_form"].tolist() == theirs["e_form"].tolist()


@pytest.mark.parametrize("payload", list(PAYLOADS), ids=list(PAYLOADS))
def test_a_matbench_copy_naming_another_object_is_refused_unimported(
    probe, tmp_path, monkeypatch, payload
):
    local = tmp_path / "data"
    local.mkdir()
    matminer_file(local / "matbench_mp_e_form.json.gz", eform_frame(), PAYLOADS[payload])
    with pytest.raises(
        ValueError, match=rf"matbench_mp_e_form.json.gz: /data/0/0/sites/1.*{PROBE}"
    ):
        matbench("matbench_mp_e_form", fold=0, data_dir=local)
    # the file matbench.data_ops.load would read from matminer's folder ($MATMINER_DATA)
    monkeypatch.setenv("MATMINER_DATA", str(local))
    with pytest.raises(ValueError, match=PROBE):
        matbench("matbench_mp_e_form", fold=0, data_dir=None)
    assert not probe.exists() and PROBE not in sys.modules


def test_a_tensor_set_copy_naming_another_object_is_refused_unimported(probe, tmp_path):
    from matgnn.data.sources.tensors import dielectric, elastic_tensor

    (tmp_path / "tensors").mkdir()
    frame = eform_frame(3).assign(material_id=["a", "b", "c"])
    for name in ("dielectric_constant", "elastic_tensor_2015"):
        matminer_file(tmp_path / "tensors" / f"{name}.json.gz", frame, PAYLOADS["class"])
    for loader in (dielectric, elastic_tensor):
        with pytest.raises(ValueError, match=f"names the Python object {PROBE}.X"):
            loader(data_dir=tmp_path)
    assert not probe.exists() and PROBE not in sys.modules


def test_a_structure_column_naming_another_object_is_refused_unimported(probe, tmp_path):
    from matgnn.data.sources.ye2018 import ye2018_garnet

    table = tmp_path / "garnets.csv"
    row = {"mp_id": "mp-x", "status": "ok", "mixed": "none"}
    pd.DataFrame([{**row, "structure": json.dumps(crafted(PAYLOADS["class"]))}]).to_csv(table)
    with pytest.raises(ValueError, match=rf"^ye2018_garnet_unmixed: mp-x: /sites/1.*{PROBE}"):
        ye2018_garnet(table=table, mixed=False)
    assert not probe.exists() and PROBE not in sys.modules


def test_tables_without_the_columns_a_loader_reads_are_refused_by_name(tmp_path):
    from matgnn.data.sources.cdvae import cdvae_perov5
    from matgnn.data.sources.jarvis import SUBSET_FILE, jarvis_dft3d
    from matgnn.data.sources.mp import records_from_frame

    frame = mp_sample_frame().head(3)
    with pytest.raises(ValueError, match=r"^mp has no cif column; columns: \['mp_id'"):
        records_from_frame(frame.drop(columns="cif"), "formation_energy_per_atom", "mp")
    jarvis = tmp_path / SUBSET_FILE
    jarvis.parent.mkdir(parents=True)
    pd.DataFrame({"jid": ["JVASP-1"], "ehull": [0.0]}).to_csv(jarvis, index=False)
    with pytest.raises(ValueError, match=r"has no poscar column"):
        jarvis_dft3d("ehull", tmp_path)
    perov = tmp_path / "cdvae" / "perov_5"
    perov.mkdir(parents=True)
    for split in ("train", "val", "test"):
        pd.DataFrame({"material_id": [1], "heat_ref": [0.1]}).to_csv(perov / f"{split}.csv")
    with pytest.raises(ValueError, match=r"^perov_5: .*train.csv has no cif column"):
        cdvae_perov5("heat_ref", tmp_path)


def test_repeated_ids_are_named():
    _, structures = mp_sample_structures(4)
    with pytest.raises(ValueError, match=r"ids are not unique: 2 repeated \(mp-1, mp-2\)"):
        Records(["mp-1", "mp-2", "mp-1", "mp-2"], structures, {}, name="t")
