"""Models: backbones behind one interface (:class:`CrystalModel`)."""

from matgnn.models.alignn import ALIGNN
from matgnn.models.base import CrystalModel
from matgnn.models.cgcnn import CGCNN
from matgnn.models.chgnet import CHGNetBackbone
from matgnn.models.equivariant import EquivariantNetwork
from matgnn.models.interfaces import Backbone, FeatureSpec, GraphRequirements, Head, NodeFeatures
from matgnn.models.matformer import Matformer
from matgnn.models.potnet import PotNet
from matgnn.models.sevennet import SevenNetBackbone
from matgnn.models.site_descriptor_net import SiteDescriptorNetwork

__all__ = [
    "ALIGNN",
    "CGCNN",
    "Backbone",
    "CHGNetBackbone",
    "CrystalModel",
    "EquivariantNetwork",
    "FeatureSpec",
    "GraphRequirements",
    "Head",
    "Matformer",
    "NodeFeatures",
    "PotNet",
    "SevenNetBackbone",
    "SiteDescriptorNetwork",
]
