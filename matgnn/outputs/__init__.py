"""Declared model outputs: each names its head, target, loss, weight, metrics and columns."""

from matgnn.outputs.base import Output
from matgnn.outputs.classification import ClassOutput
from matgnn.outputs.gaussian import GaussianOutput
from matgnn.outputs.scalar import ScalarOutput
from matgnn.outputs.spectrum import SpectrumOutput
from matgnn.outputs.table import prediction_table, write_prediction_tables
from matgnn.outputs.tensor import AtomTensorOutput, ElasticTensorOutput, TensorOutput

__all__ = [
    "AtomTensorOutput",
    "ClassOutput",
    "ElasticTensorOutput",
    "GaussianOutput",
    "Output",
    "ScalarOutput",
    "SpectrumOutput",
    "TensorOutput",
    "prediction_table",
    "write_prediction_tables",
]
