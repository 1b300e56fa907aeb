"""iMatGen's networks (matgnn.design.networks): shapes of the paper's autoencoders and
generator, codes and images in their ranges, the VAE's KL term against torch.distributions, a
property head from any matgnn output, and the generator built from checkpoint data."""

from __future__ import annotations

import pytest
import torch
from torch.distributions import Normal, kl_divergence

from matgnn.checkpoints import safe_config
from matgnn.design.networks import BasisAutoencoder, CellAutoencoder, MaterialsGenerator
from matgnn.outputs import ClassOutput, ScalarOutput


@pytest.mark.parametrize(
    ("network", "grid", "code"), [(CellAutoencoder, 32, 20), (BasisAutoencoder, 64, 200)]
)
def test_autoencoders_have_the_papers_shapes(network, grid, code):
    torch.manual_seed(0)
    model = network()
    image = torch.rand(2, 1, grid, grid, grid)
    codes = model.encode(image)
    assert codes.shape == (2, code) and codes.abs().max() <= 1  # tanh code
    decoded = model.decode(codes)
    assert decoded.shape == image.shape and 0 <= decoded.min() and decoded.max() <= 1
    assert all(m.bias is None for m in model.modules() if isinstance(m, torch.nn.Conv3d))


def test_an_image_grid_that_does_not_halve_to_four_is_refused():
    with pytest.raises(ValueError, match="power of two >= 8, got 48"):
        CellAutoencoder(grid=48)


def test_generator_packs_codes_and_keeps_the_cell_code():
    generator = MaterialsGenerator(channels=3, length=200, cell_code=20, latent=16, hidden=8)
    cell, basis = torch.rand(4, 20), torch.rand(4, 2, 200)
    packed = generator.pack(cell, basis)
    assert packed.shape == (4, 3, 200) and (packed[:, -1, 20:] == 0).all()
    back_cell, back_basis = generator.unpack(packed)
    assert torch.equal(back_cell, cell) and torch.equal(back_basis, basis)


def test_generator_forward_and_its_kl_term():
    torch.manual_seed(0)
    generator = MaterialsGenerator(
        latent=32, hidden=16, output=ClassOutput("stable", target="stable")
    )
    codes = torch.rand(5, 3, 200) * 2 - 1
    out = generator(codes)
    assert out["reconstruction"].shape == codes.shape and out["property"].shape == (5, 2)
    assert out["mu"].shape == out["log_var"].shape == out["z"].shape == (5, 32)
    generator.eval()
    first, second = generator(codes), generator(codes)
    assert torch.equal(first["z"], first["mu"]) and torch.equal(first["z"], second["z"])
    mu, log_var = torch.randn(5, 32), torch.randn(5, 32)
    expected = kl_divergence(Normal(mu, (0.5 * log_var).exp()), Normal(0.0, 1.0)).sum(-1).mean()
    torch.testing.assert_close(MaterialsGenerator.kl_divergence(mu, log_var), expected)


def test_the_property_loss_reaches_the_encoder_and_the_generator_loads_from_registry_data():
    output = ScalarOutput("formation_energy", target="formation_energy")
    config = safe_config.object_node(
        MaterialsGenerator, latent=16, hidden=8, output=output.to_config()
    )
    generator = safe_config.build(config)
    assert isinstance(generator.output, ScalarOutput)
    prediction = generator(torch.rand(3, 3, 200))["property"]
    assert prediction.shape == (3,)  # a scalar output: one value per crystal
    output.compute_loss(prediction, torch.zeros(3), generator.head).backward()
    assert generator.encoder[0].weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="has no property output"):
        MaterialsGenerator(latent=16, hidden=8).predict_property(torch.zeros(1, 16))


def test_the_cell_weight_counts_the_cell_codes_row_that_many_times_in_the_loss():
    from matgnn.design.training import GeneratorTask

    node = safe_config.object_node(MaterialsGenerator, latent=16, hidden=8)
    torch.manual_seed(0)
    batch = {"codes": torch.rand(4, 3, 200) * 2 - 1, "target": torch.full((4,), float("nan"))}
    losses = {}
    for weight in (1.0, 30.0):
        torch.manual_seed(1)  # the same weights and the same sampled latent in both tasks
        task = GeneratorTask(node, kl_weight=0.0, cell_weight=weight)
        torch.manual_seed(2)
        losses[weight] = task._losses(batch)
        out = losses[weight]
    plain, weighted = losses[1.0], losses[30.0]
    torch.testing.assert_close(weighted["reconstruction"], plain["reconstruction"])
    assert weighted["cell_reconstruction"] > 0
    torch.testing.assert_close(
        weighted["loss"], plain["loss"] + 29.0 * plain["cell_reconstruction"]
    )
    # the cell row is the code's last row
    torch.manual_seed(1)
    network = GeneratorTask(node, kl_weight=0.0).network
    torch.manual_seed(2)
    again = network(batch["codes"])["reconstruction"]
    expected = ((again - batch["codes"])[:, -1] ** 2).sum(-1).mean()
    torch.testing.assert_close(out["cell_reconstruction"], expected)
    for bad in ({"cell_weight": 0.0}, {"kl_weight": -1.0}):
        with pytest.raises(ValueError, match="generator weights"):
            GeneratorTask(node, **bad)


def test_a_generator_resumed_with_other_loss_weights_says_so(tmp_path, caplog):
    from matgnn.design.run import _warn_changed_weights
    from matgnn.design.training import GeneratorTask

    node = safe_config.object_node(MaterialsGenerator, latent=16, hidden=8)
    task = GeneratorTask(node, kl_weight=1e-3, cell_weight=30.0)
    path = tmp_path / "last.ckpt"
    # a run from before cell_weight existed: it trained with KL 1 and the cell row once
    torch.save({"hyper_parameters": {"kl_weight": 1.0, "property_weight": 1.0, "lr": 1e-3}}, path)
    with caplog.at_level("WARNING", logger="matgnn.design.run"):
        _warn_changed_weights(task, str(path))
    said = caplog.text
    assert "generator kl_weight 0.001 (its run used 1.0)" in said
    assert "generator cell_weight 30.0 (its run used 1.0)" in said
    assert "property_weight" not in said and " lr " not in said
    caplog.clear()
    same = GeneratorTask(node, kl_weight=1.0, cell_weight=1.0)
    with caplog.at_level("WARNING", logger="matgnn.design.run"):
        _warn_changed_weights(same, str(path))
    assert caplog.text == ""
