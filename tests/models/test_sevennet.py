"""The SevenNet-0 backbone (``model=sevennet``): the installed sevenn package's pretrained
network behind matgnn's Backbone interface. Its block features are sevenn's own, unknown
elements are refused by name, blocks after the last one read are not kept. (The generic model
tests run it too: invariance, batching, gradients, training, bf16, fine-tuning freezes.)"""

from __future__ import annotations

import pytest
import torch
from pymatgen.core import Lattice, Structure
from pymatgen.io.ase import AseAtomsAdaptor
from sevenn.atom_graph_data import AtomGraphData
from sevenn.train.dataload import unlabeled_atoms_to_graph

from matgnn.data.samples import mp_sample_structures
from matgnn.graphs import GraphConfig
from matgnn.models import SevenNetBackbone
from matgnn.models.sevennet import load_pretrained_sevennet
from tests.models.helpers import batch_of, make_model


def test_block_features_are_sevenns_own():
    """The 0e features of every block equal those of sevenn's own forward pass on its own
    graphs (its neighbour list, as its calculator builds them), crystal by crystal, on 12
    shipped MP crystals and 2 random triclinic P1 cells (chiral: a wrong edge direction would
    mirror them and change their features; the MP ones are all achiral) (float32; the edges are
    summed in another order)."""
    from tests.conftest import random_structure

    structures = [*mp_sample_structures(12)[1], random_structure(3, 5), random_structure(4, 4)]
    model = make_model("sevennet")
    with torch.no_grad():
        ours = model.backbone(batch_of(structures, model.graph_config())).scalars
    reference, _ = load_pretrained_sevennet("7net-0")
    reference.set_is_batch_data(False)
    rows = []
    for structure in structures:
        captured: dict[int, torch.Tensor] = {}
        hooks = [
            reference._modules[f"{k}_equivariant_gate"].register_forward_hook(
                lambda _m, _a, out, k=k, c=captured: c.__setitem__(k, out["x"].clone())
            )
            for k in range(5)
        ]
        atoms = AseAtomsAdaptor.get_atoms(structure)
        # (with gradients: its force output differentiates the energy)
        reference(AtomGraphData.from_numpy_dict(unlabeled_atoms_to_graph(atoms, 5.0)))
        for hook in hooks:
            hook.remove()
        rows.append(torch.cat([captured[k][:, :128] for k in range(5)], dim=1).detach())
    expected = torch.cat(rows)
    assert ours.shape == expected.shape == (sum(len(s) for s in structures), 640)
    torch.testing.assert_close(ours, expected, rtol=1e-4, atol=1e-4)


def test_blocks_after_the_last_one_read_are_not_kept():
    early = SevenNetBackbone(blocks=[0, 1])
    assert early.feature_spec.scalar_features == 256
    assert len(early.message_passing_layers()) == 2
    _, structures = mp_sample_structures(3)
    early(batch_of(structures, GraphConfig.preset("sevennet"))).scalars.square().sum().backward()
    trainable = [p for p in early.parameters() if p.requires_grad]  # not sevenn's constants
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in trainable)
    with pytest.raises(ValueError, match="from 0 to 4"):
        SevenNetBackbone(blocks=[5])


def test_an_element_sevennet_never_saw_is_refused_by_name():
    backbone = SevenNetBackbone(blocks=[0])
    polonium = Structure(Lattice.cubic(3.35), ["Po"], [[0, 0, 0]])
    with pytest.raises(ValueError, match=r"SevenNet 7net-0 was not trained on Po"):
        backbone(batch_of([polonium], GraphConfig.preset("sevennet")))
