"""Datasets: sources of (id, structure, target) records, graph datasets and the data module."""

from matgnn.data.datamodule import CrystalDataModule
from matgnn.data.records import Records

__all__ = ["CrystalDataModule", "Records"]
