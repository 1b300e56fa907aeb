"""Message-passing layers, one per file, each citing its paper and stating its update rule."""

from matgnn.nn.layers.alignn_conv import ALIGNNConv
from matgnn.nn.layers.cgcnn_conv import CGCNNConv
from matgnn.nn.layers.edge_gated_conv import EdgeGatedGraphConv
from matgnn.nn.layers.gate_point_conv import GatePointConv
from matgnn.nn.layers.matformer_conv import MatformerConv
from matgnn.nn.layers.potnet_conv import PotNetConv

__all__ = [
    "ALIGNNConv",
    "CGCNNConv",
    "EdgeGatedGraphConv",
    "GatePointConv",
    "MatformerConv",
    "PotNetConv",
]
