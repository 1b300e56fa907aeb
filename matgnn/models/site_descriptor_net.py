"""The network of Ye et al., Nat. Commun. 9, 3800 (2018): a small dense network on the
site-occupancy descriptors of a substituted prototype (:mod:`matgnn.graphs.site_descriptors`).

Architecture as in the published Keras models (materialsvirtuallab/garnetdnn ``models/*.h5``,
read for this implementation): inputs standardised with the training set's mean and standard
deviation (their ``StandardScaler``), one hidden ``Dense`` layer with ReLU (perovskite unmixed:
12 units on 4 inputs; perovskite A- or B-mixed: 24 units; garnets: 24), then a linear output
(the head: ``RegressionHead`` with no hidden layer). Their training: Adam, lr 1e-3 (garnet
unmixed 1e-2), MSE loss.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

import torch
from torch import Tensor, nn
from torch_geometric.data import Data

from matgnn.checkpoints.registry import register
from matgnn.models.interfaces import Backbone, FeatureSpec, GraphRequirements, NodeFeatures
from matgnn.nn.mlp import activation as make_activation


@register("ye2018_net")
class SiteDescriptorNetwork(Backbone):
    """Standardise the crystal's site descriptor, then ``Linear -> activation`` layers.

    The crystal's hidden vector is given to each of its atoms, so that every readout of the
    heads (mean, sum divided by the atom count, ...) sees exactly the crystal's features; a
    mean-readout ``RegressionHead`` with ``hidden: []`` is then Ye et al.'s output layer.

    Args:
        num_descriptors: length of ``site_descriptor`` (2 x sites x species per site).
        hidden: widths of the hidden layers (Ye et al.: one layer of 12 or 24).
        activation: ``torch.nn`` activation class name.
        dropout: dropout probability after every hidden layer (MC dropout; Ye et al.: none).

    Shapes:
        ``batch.site_descriptor`` ``[B, num_descriptors]`` -> scalars ``[N, hidden[-1]]``.
    """

    def __init__(
        self,
        num_descriptors: int,
        hidden: Sequence[int] = (12,),
        activation: str = "ReLU",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if not hidden:
            raise ValueError("SiteDescriptorNetwork needs at least one hidden layer")
        self.requirements = GraphRequirements(site_descriptor_length=num_descriptors)
        self.feature_spec = FeatureSpec(scalar_features=int(hidden[-1]))
        self.register_buffer("input_mean", torch.zeros(num_descriptors))
        self.register_buffer("input_std", torch.ones(num_descriptors))
        self.register_buffer("fitted", torch.zeros((), dtype=torch.bool))
        widths = [num_descriptors, *hidden]
        self.layers = nn.ModuleList(
            nn.Sequential(nn.Linear(a, b), make_activation(activation), nn.Dropout(dropout))
            for a, b in pairwise(widths)
        )

    def message_passing_layers(self) -> list[nn.Module]:
        return list(self.layers)

    def fit_to_training_data(self, graphs: Sequence[Data]) -> None:
        """Mean and standard deviation of each descriptor over the training crystals (a
        constant column keeps std 1). Not refitted once fitted (fine-tuning keeps them)."""
        if bool(self.fitted):
            return
        values = torch.cat([g.site_descriptor for g in graphs]).double()
        std = values.std(dim=0, unbiased=False)
        self.input_mean.copy_(values.mean(dim=0))
        self.input_std.copy_(torch.where(std > 1e-12, std, torch.ones_like(std)))
        self.fitted.fill_(True)

    def forward(self, batch: Data) -> NodeFeatures:
        x: Tensor = (batch.site_descriptor - self.input_mean) / self.input_std
        for layer in self.layers:
            x = layer(x)
        index = self.crystal_index(batch)
        return self.node_features(batch, x[index])
