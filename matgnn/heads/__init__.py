"""Output heads: regression, classification, vector (DOS) and equivariant tensors."""

from matgnn.heads.atom_tensor import AtomTensorHead
from matgnn.heads.classification import ClassificationHead
from matgnn.heads.normalizer import TargetNormalizer
from matgnn.heads.regression import RegressionHead
from matgnn.heads.tensor import TensorHead
from matgnn.heads.vector import VectorHead

__all__ = [
    "AtomTensorHead",
    "ClassificationHead",
    "RegressionHead",
    "TargetNormalizer",
    "TensorHead",
    "VectorHead",
]
