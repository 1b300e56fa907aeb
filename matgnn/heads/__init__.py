"""Output heads: regression, classification, vector (DOS) and equivariant tensors."""

from matgnn.heads.classification import ClassificationHead
from matgnn.heads.normalizer import TargetNormalizer
from matgnn.heads.regression import RegressionHead
from matgnn.heads.tensor import TensorHead
from matgnn.heads.vector import VectorHead

__all__ = ["ClassificationHead", "RegressionHead", "TargetNormalizer", "TensorHead", "VectorHead"]
