"""CHGNet as a pretrained backbone (Deng et al., Nat. Mach. Intell. 5, 1031 (2023)).

The installed ``chgnet`` package's network and weights (CHGNet 0.3.0, trained on MPtrj: the
relaxation frames of the Materials Project, energies, forces, stresses and magnetic moments)
encode each atom; any matgnn head reads the atom features of its interaction blocks.

Update rule (CHGNet's own, run by ``chgnet``): atoms, bonds (within 6 Å) and angles (between
bonds within 3 Å) are embedded; each of the first ``n_conv - 1`` blocks updates the atoms from
their bonds, the bonds from their angles and the angles from both; the last block updates the
atoms only. The features of block ``k`` are the atom features after its atom update.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch_geometric.data import Data

from matgnn.checkpoints.registry import register
from matgnn.graphs.foundation import CHGNET_CUTOFFS, import_chgnet
from matgnn.models.interfaces import Backbone, FeatureSpec, GraphRequirements, NodeFeatures
from matgnn.models.pretrained_blocks import chosen_blocks, warn_on_another_release

#: the chgnet release whose layers and weights this backbone was written and tested against
CHGNET_VERSION = "0.4.2"
#: the pretrained files the chgnet package ships, by ``CHGNet.load``'s model names
PRETRAINED_FILES = {
    "0.3.0": "pretrained/0.3.0/chgnet_0.3.0_e29f68s314m37.pth.tar",
    "r2scan": "pretrained/r2scan/chgnet_r2scan_transfer_learning_e15f36s161m23.pth.tar",
}


def load_pretrained_chgnet(name: str):
    """The pretrained CHGNet ``name`` that the installed chgnet package ships, on the CPU: its
    file read with ``torch.load(weights_only=True)`` (tensors and plain containers only; chgnet's
    own ``CHGNet.load`` unpickles it fully), built by ``CHGNet.from_dict`` as ``CHGNet.load``
    builds it."""
    from pathlib import Path

    chgnet = import_chgnet()
    from chgnet.model import CHGNet

    if name not in PRETRAINED_FILES:
        raise ValueError(f"pretrained CHGNet {name!r}: one of {sorted(PRETRAINED_FILES)}")
    path = Path(chgnet.__file__).parent / PRETRAINED_FILES[name]
    state = torch.load(path, map_location="cpu", weights_only=True)
    with contextlib.redirect_stdout(io.StringIO()):  # CHGNet prints its parameter count
        return CHGNet.from_dict(state["model"], mlp_out_bias=False, version=name)


class _NoEnergy(nn.Module):
    """Stands in for CHGNet's energy readout, which this backbone does not use: zero energy
    per atom, so CHGNet's forward runs unchanged and holds no parameter without a gradient."""

    def forward(self, atom_feas: Tensor) -> Tensor:
        return atom_feas.new_zeros(atom_feas.size(0), 1)


@register("chgnet")
class CHGNetBackbone(Backbone):
    """CHGNet's pretrained network as an encoder: per atom, the features of the chosen
    interaction blocks, concatenated.

    Args:
        pretrained: the CHGNet model the package ships (``CHGNet.load(model_name=...)``);
            ``"0.3.0"`` (412,525 parameters; the encoder keeps the 366,541 that the features of
            all four blocks depend on: the energy readout, the magnetic-moment head, the
            composition model and the last angle update are dropped) or ``"r2scan"``.
        blocks: which interaction blocks' atom features to concatenate (0 = first); default
            every block (4 x 64 = 256 features per atom). Blocks after the last one chosen are
            not kept.
        chgnet_version: the ``chgnet`` release this model expects (a checkpoint stores it; a
            different installed release loads with a warning naming both).
        dropout: dropout probability on the atom features after every block (MC dropout),
            inside CHGNet's forward pass (the next block reads the dropped-out features).

    Shapes:
        batch with ``GraphConfig.foundation_graph="chgnet"`` fields -> scalars ``[N, 64 *
        len(blocks)]``.
    """

    def __init__(
        self,
        pretrained: str = "0.3.0",
        blocks: Sequence[int] | None = None,
        chgnet_version: str = CHGNET_VERSION,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        chgnet = import_chgnet()
        warn_on_another_release("CHGNet", "chgnet", chgnet.__version__, chgnet_version)
        network = load_pretrained_chgnet(pretrained)
        converter = network.graph_converter
        cutoffs = (float(converter.atom_graph_cutoff), float(converter.bond_graph_cutoff))
        if cutoffs != CHGNET_CUTOFFS:
            raise ValueError(
                f"CHGNet {pretrained} builds its graphs with cutoffs {cutoffs}; matgnn's "
                f"CHGNet graph (matgnn.graphs.foundation) uses {CHGNET_CUTOFFS}"
            )
        self.blocks = chosen_blocks("CHGNet", blocks, len(network.atom_conv_layers))
        # what the encoder does not use: the energy readout, magnetic moments, composition, and
        # everything after the last block read: CHGNet then runs blocks 0..last, the last one
        # an atom update only (the angle update before it feeds nothing, as in CHGNet's own
        # last block), so every parameter kept gets a gradient
        last = max(self.blocks)
        network.mlp, network.readout_norm = _NoEnergy(), None
        network.site_wise = network.composition_model = network.graph_converter = None
        network.atom_conv_layers = nn.ModuleList(network.atom_conv_layers[: last + 1])
        network.bond_conv_layers = nn.ModuleList(network.bond_conv_layers[:last])
        network.angle_layers = nn.ModuleList(
            [*network.angle_layers[: max(last - 1, 0)], None][:last]
        )
        self.dropout = nn.Dropout(dropout)
        self.network = network.to(torch.get_default_dtype())
        self.pretrained, self.chgnet_version = str(pretrained), str(chgnet_version)
        width = network.atom_embedding.embedding.embedding_dim
        self.requirements = GraphRequirements(foundation_graph="chgnet")
        self.feature_spec = FeatureSpec(scalar_features=width * len(self.blocks))

    def message_passing_layers(self) -> list[nn.Module]:
        """Block k: its atom convolution, bond convolution and angle update (the last block
        has only the atom convolution)."""
        net = self.network
        layers: list[nn.Module] = []
        for k, atom_conv in enumerate(net.atom_conv_layers):
            parts = [atom_conv]
            for group in (net.bond_conv_layers, net.angle_layers):
                if k < len(group) and group[k] is not None:
                    parts.append(group[k])
            layers.append(nn.ModuleList(parts))
        return layers

    def forward(self, batch: Data) -> NodeFeatures:
        from chgnet.graph.crystalgraph import CrystalGraph as ChgnetGraph
        from chgnet.model.model import BatchedGraph

        crystals = int(batch.lattice.size(0))
        atoms = torch.bincount(self.crystal_index(batch), minlength=crystals).tolist()
        sizes = batch.chgnet_sizes.reshape(crystals, 3)
        directed, undirected, angles = (sizes[:, k].tolist() for k in range(3))
        per_crystal = zip(
            batch.atomic_numbers.split(atoms),
            batch.frac_coords.split(atoms),
            batch.lattice,
            batch.chgnet_atom_graph.split(directed),
            batch.chgnet_image.split(directed),
            batch.chgnet_directed2undirected.split(directed),
            batch.chgnet_undirected2directed.split(undirected),
            batch.chgnet_bond_graph.split(angles),
            strict=True,
        )
        graphs = [
            ChgnetGraph(
                atomic_number=numbers,
                atom_frac_coord=frac,
                atom_graph=atom_graph,
                atom_graph_cutoff=CHGNET_CUTOFFS[0],
                neighbor_image=image.to(frac.dtype),
                directed2undirected=d2u,
                undirected2directed=u2d,
                bond_graph=bond_graph,
                bond_graph_cutoff=CHGNET_CUTOFFS[1],
                lattice=lattice,
            )
            for numbers, frac, lattice, atom_graph, image, d2u, u2d, bond_graph in per_crystal
        ]
        with torch.autocast(batch.lattice.device.type, enabled=False):  # geometry in full
            batched = BatchedGraph.from_graphs(
                graphs,
                bond_basis_expansion=self.network.bond_basis_expansion,
                angle_basis_expansion=self.network.angle_basis_expansion,
            )
        features: dict[int, Tensor] = {}

        def after_block(k: int, out: Tensor) -> Tensor:
            features[k] = out = self.dropout(out)
            return out  # what the next block reads

        hooks = [
            layer.register_forward_hook(lambda _module, _args, out, k=k: after_block(k, out))
            for k, layer in enumerate(self.network.atom_conv_layers)
        ]
        try:
            self.network._compute(batched)  # chgnet's own forward pass; the energy is unused
        finally:
            for hook in hooks:
                hook.remove()
        scalars = torch.cat([features[k] for k in self.blocks], dim=-1)
        return self.node_features(batch, scalars)
