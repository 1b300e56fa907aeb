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
    reference = _sevenn_reference()
    rows = []
    for structure in structures:
        captured = _sevenn_block_features(reference, structure)
        rows.append(torch.cat([captured[k][:, :128] for k in range(5)], dim=1))
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


def _inverted(structure: Structure) -> Structure:
    """The inversion image of ``structure`` (fractional coordinates negated: ``-S`` moved by
    lattice vectors)."""
    return Structure(structure.lattice, structure.species, -structure.frac_coords)


def _sevenn_reference():
    """sevenn's own SevenNet-0, one crystal per call (its calculator's mode)."""
    reference, _ = load_pretrained_sevennet("7net-0")
    reference.set_is_batch_data(False)
    return reference


def _sevenn_block_features(reference, structure: Structure) -> dict[int, torch.Tensor]:
    """Every feature (all irreps) of each of the 5 blocks of sevenn's own forward pass of
    ``reference`` on its own graph of ``structure`` (its calculator's neighbour list)."""
    captured: dict[int, torch.Tensor] = {}
    hooks = [
        reference._modules[f"{k}_equivariant_gate"].register_forward_hook(
            lambda _m, _a, out, k=k: captured.__setitem__(k, out["x"].detach().clone())
        )
        for k in range(5)
    ]
    atoms = AseAtomsAdaptor.get_atoms(structure)
    # (with gradients: its force output differentiates the energy)
    reference(AtomGraphData.from_numpy_dict(unlabeled_atoms_to_graph(atoms, 5.0)))
    for hook in hooks:
        hook.remove()
    return captured


def test_split_parity_gives_the_even_part_of_sevenns_features():
    """With ``split_parity`` the scalars and the irreps of each equivariant block are
    ``(f(S) + f(-S)) / 2``, ``f`` being sevenn's own features on its own graphs of the crystal
    and of its inversion image (a random triclinic P1 cell and an MP crystal; float32)."""
    from tests.conftest import random_structure

    backbone = SevenNetBackbone(split_parity=True, equivariant_blocks=[1, 3]).eval()
    assert backbone.feature_spec.irreps == "128x0e+64x1e+32x2e+128x0e+64x1e+32x2e"
    structures = [random_structure(3, 5), mp_sample_structures(3)[1][2]]
    with torch.no_grad():
        ours = backbone(batch_of(structures, GraphConfig.preset("sevennet")))
    reference = _sevenn_reference()
    even_scalars, irreps, odd_scalars = [], [], []
    for structure in structures:
        image = _sevenn_block_features(reference, structure)
        mirror = _sevenn_block_features(reference, _inverted(structure))
        even = {k: (image[k] + mirror[k]) / 2 for k in image}
        odd = {k: (image[k] - mirror[k]) / 2 for k in image}
        even_scalars.append(torch.cat([even[k][:, :128] for k in range(5)], dim=1))
        irreps.append(torch.cat([even[1], even[3]], dim=1))
        odd_scalars.append(torch.cat([odd[k][:, :128] for k in range(5)], dim=1))
    torch.testing.assert_close(ours.scalars, torch.cat(even_scalars), rtol=1e-4, atol=1e-4)
    # (float32, the edges summed in another order: 1.3e-4 at most on block 3's features)
    torch.testing.assert_close(ours.irreps, torch.cat(irreps), rtol=1e-4, atol=5e-4)
    # sevenn's own scalars are not invariant under inversion: the chiral P1 cell's have an odd
    # part (up to 0.38, the even part up to 67); this centrosymmetric MP crystal's none
    assert float(odd_scalars[0].abs().max()) > 0.05
    assert float(odd_scalars[1].abs().max()) < 1e-4


def test_equivariant_blocks_without_split_parity_or_without_l_above_0_are_refused_in_words():
    with pytest.raises(ValueError, match=r"need split_parity=true.*mirror symmetry"):
        SevenNetBackbone(equivariant_blocks=[3])
    with pytest.raises(ValueError, match=r"block 4 emits scalars only.*l > 0: \[0, 1, 2, 3\]"):
        SevenNetBackbone(split_parity=True, equivariant_blocks=[4])


@pytest.fixture(scope="module")
def gyrotropic_dielectric_crystals():
    """Crystals of the shipped dielectric sample in the point groups -42m and mm2 (mirrors but
    no inversion, where a rank-2 pseudotensor part would show): ZnCl2 (I-42d), Rb2S3 (Cmc2_1)."""
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

    from matgnn.data.sources.tensors import dielectric_sample

    wanted = {("ZnCl2", "I-42d"), ("Rb2S3", "Cmc2_1")}
    picked = {}
    for structure in dielectric_sample(limit=None, frame_tolerance=None).structures:
        formula = structure.composition.reduced_formula
        if formula not in {w[0] for w in wanted} or len(structure) > 10:
            continue
        symbol = SpacegroupAnalyzer(structure, symprec=1e-3).get_space_group_symbol()
        if (formula, symbol) in wanted:
            picked[(formula, symbol)] = structure
    assert set(picked) == wanted
    return list(picked.values())


def test_tensor_heads_on_sevennet_rotate_and_keep_the_crystals_mirror_symmetry(
    gyrotropic_dielectric_crystals,
):
    """A dielectric (``ij=ji``) and a Born-charge (``ij``, per atom) head on SevenNet-0's block
    3 with ``split_parity``: rotations rotate both (assert_equivariant, float64), and each
    crystal's own operations, mirrors included, leave them unchanged (Neumann's principle);
    without the split the same heads break it by more than 1% on both crystals."""
    from matgnn.heads import AtomTensorHead, TensorHead
    from matgnn.testing import assert_crystal_symmetric, assert_equivariant
    from matgnn.testing.invariance import crystal_symmetry_residuals

    model = make_model(
        "sevennet", ["+model.backbone.equivariant_blocks=[3]", "+model.backbone.split_parity=true"]
    )
    spec = model.backbone.feature_spec
    model.heads["eps"] = TensorHead(spec, formula="ij=ji").eval()
    model.heads["becs"] = AtomTensorHead(spec, formula="ij").eval()
    for structure in gyrotropic_dielectric_crystals:
        assert_equivariant(model, structure, rtol=1e-7, atol=1e-7, seeds=(0,))
        assert assert_crystal_symmetric(model, structure) >= 4
        residuals, _ = crystal_symmetry_residuals(model, structure)
        assert max(residuals.values()) < 1e-5  # 1.7e-7 at most here
    # the same heads on SevenNet-0's own features (the split bypassed) break the mirrors: by
    # 1.4% (ZnCl2) and 15% (Rb2S3) of the dielectric tensor's largest component, 39% and 108%
    # of the Born charges'
    model.backbone.split_parity = False
    for structure in gyrotropic_dielectric_crystals:
        residuals, _ = crystal_symmetry_residuals(model, structure)
        assert min(residuals.values()) > 1e-2, residuals


def test_a_tensor_task_gives_sevennet_its_equivariant_block_and_refuses_an_elastic_one():
    """Assembly: a tensor output turns on block 3's equivariant features with split_parity;
    an elastic tensor (4e) is refused in words, SevenNet-0's features stopping at l = 2,
    unless its head is given a tensor square (``task.heads``), which reaches 4e, rotates by
    the 4th-rank rule on a real crystal and keeps the crystal's own operations."""
    from matgnn.models.assembly import assemble, build, from_hydra
    from matgnn.outputs import ElasticTensorOutput, TensorOutput
    from tests.models.helpers import compose_model_config

    config = from_hydra(compose_model_config("sevennet"))
    dielectric = assemble(config, [TensorOutput(target="eps", symmetric=True)])
    assert dielectric["backbone"]["equivariant_blocks"] == [3]
    assert dielectric["backbone"]["split_parity"] is True
    assert build(dielectric).backbone.feature_spec.irreps.startswith("128x0e+64x1e+32x2e")
    elastic = assemble(config, [ElasticTensorOutput(target="c")])
    with pytest.raises(ValueError, match=r"4e.*SevenNet-0's features stop at l = 2"):
        build(elastic)
    head = {"@class": "tensor_head", "@partial": True, "formula": "ijkl=jikl=klij"}
    squared = assemble(config, [ElasticTensorOutput(target="c")], {"c": {**head, "square": "4x4e"}})
    model = build(squared).eval()
    from matgnn.testing import assert_crystal_symmetric, assert_equivariant

    structure = mp_sample_structures(1)[1][0]
    assert_equivariant(model, structure, rtol=1e-6, atol=1e-6, seeds=(0,))
    assert assert_crystal_symmetric(model, structure) > 2  # its mirrors and rotations too


def test_a_tensor_task_fine_tuned_from_a_scalar_sevennet_checkpoint_gets_its_equivariant_block():
    """``finetune.from`` a scalar-task SevenNet model: the run takes the checkpoint's backbone
    widened for its tensor head (block 3's equivariant features, split_parity), and the
    checkpoint's weights transfer into it strictly (the same sevenn layers)."""
    from omegaconf import OmegaConf

    from matgnn.models.assembly import assemble, build, from_hydra, with_source
    from matgnn.outputs import ScalarOutput, TensorOutput
    from matgnn.training.finetune import transfer
    from tests.models.helpers import compose_model_config

    # plain data, as the training run composes it (matgnn.training.run.model_config)
    config = from_hydra(OmegaConf.to_container(compose_model_config("sevennet"), resolve=True))
    scalar = assemble(config, [ScalarOutput("band_gap", target="band_gap")])
    assert not scalar["backbone"].get("equivariant_blocks")
    dielectric = [TensorOutput(target="eps", symmetric=True)]
    run = with_source(assemble(config, dielectric), scalar, "scalar.ckpt", outputs=dielectric)
    assert run["backbone"]["equivariant_blocks"] == [3]
    assert run["backbone"]["split_parity"] is True
    # without tensor outputs: the scalar backbone as stored
    unchanged = with_source(assemble(config, dielectric), scalar, "scalar.ckpt", outputs=[])
    assert unchanged["backbone"] == scalar["backbone"]
    torch.manual_seed(0)
    source = build(scalar)
    with torch.no_grad():
        for parameter in source.backbone.parameters():
            parameter.add_(0.01 * torch.randn_like(parameter))  # "fine-tuned" weights
    model = build(run)
    done = transfer(model, source)
    assert done.new_heads == ["eps"]
    ours = model.backbone.state_dict()
    assert ours.keys() == source.backbone.state_dict().keys()
    for name, theirs in source.backbone.state_dict().items():
        assert torch.equal(theirs, ours[name]), name
    assert model.backbone.feature_spec.irreps.startswith("128x0e+64x1e+32x2e")


def test_an_mc_dropout_sample_with_split_parity_is_mirror_invariant():
    """With dropout, one sample drops the same atoms' scalars in the crystal and in its
    inversion image, so the sample of a crystal equals the same-seeded sample of its inversion
    image (the two copies swap places); with a mask per copy they would differ."""
    structure = mp_sample_structures(3)[1][1]
    backbone = SevenNetBackbone(blocks=[0, 1], split_parity=True, dropout=0.3).train()
    graph = GraphConfig.preset("sevennet")
    samples = []
    for crystal in (structure, _inverted(structure)):
        torch.manual_seed(5)
        with torch.no_grad():
            samples.append(backbone(batch_of([crystal], graph)).scalars)
    torch.manual_seed(6)
    with torch.no_grad():
        other = backbone(batch_of([structure], graph)).scalars
    assert not torch.allclose(samples[0], other, atol=1e-3)  # dropout acts
    torch.testing.assert_close(samples[0], samples[1], rtol=1e-4, atol=1e-4)
