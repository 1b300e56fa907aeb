"""iMatGen's networks (Noh et al., Matter 1, 1370 (2019)): two convolutional autoencoders that
compress the cell image and each basis image, and the materials generator, a VAE on the
compressed vectors whose latent space a property network organises.

Architectures as in the authors' TensorFlow code (kaist-amsg/imatgen; facts only, the code here
is matgnn's): 3D convolutions with 4^3 kernels and no bias, LeakyReLU(0.2) between layers, tanh
on the code, sigmoid on the image. Where matgnn differs, it says so:

* the property network is any matgnn :class:`~matgnn.outputs.Output`'s own head (class or
  scalar, with its loss, metrics and normalisation) on the latent vector, not only the paper's
  stability classifier;
* the generator's encoder and decoder are 1D convolutions over the code axis (the paper's
  ``(1, 4)`` 2D kernels on a ``1 x 200`` strip are the same operation), one channel per basis
  code and one for the cell code zero-padded to the basis code's length, as the paper did;
* the autoencoders normalise each hidden convolution's batch, start the decoder's output at
  the background and learn by binary cross-entropy (:class:`ImageAutoencoder`);
* the sample is ``mu + sigma * eps`` (the authors' code scaled it by 1e-4, which the paper does
  not describe).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from matgnn.checkpoints import safe_config
from matgnn.checkpoints.registry import register
from matgnn.models.interfaces import FeatureSpec, NodeFeatures
from matgnn.outputs import Output


def _conv_stack(
    channels: Sequence[int], final: tuple[int, int, int], transpose: bool, norm: bool
) -> list[nn.Module]:
    """Strided 4^3 convolutions halving (or doubling) the grid, the last one as ``final``
    (kernel, stride, padding); batch normalisation (``norm``) and LeakyReLU(0.2) after every
    convolution but the last."""
    conv = nn.ConvTranspose3d if transpose else nn.Conv3d
    layers: list[nn.Module] = []
    pairs = list(itertools.pairwise(channels))
    for index, (c_in, c_out) in enumerate(pairs):
        last = index == len(pairs) - 1
        kernel, stride, padding = (
            final if (last and not transpose) or (index == 0 and transpose) else (4, 2, 1)
        )
        layers.append(conv(c_in, c_out, kernel, stride, padding, bias=False))
        if not last:
            if norm:
                layers.append(nn.BatchNorm3d(c_out))
            layers.append(nn.LeakyReLU(0.2))
    return layers


class ImageAutoencoder(nn.Module):
    """A 3D convolutional autoencoder of a one-channel ``grid^3`` image: stride-2 convolutions
    down to ``4^3``, then a 4^3 valid convolution to a ``code``-long vector (tanh); the decoder
    mirrors it and ends in one bias (the background's logit) and a sigmoid.

    The images are sparse (an atom's Gaussian fills about 0.2% of a basis image), so the
    decoder's bias starts at ``background_logit`` (sigmoid 0.0025) and the loss is the binary
    cross-entropy summed over an image's voxels (:meth:`loss`): started at sigmoid 0.5
    everywhere, or trained on the mean squared error, the network first learns the empty image
    and stays there for many epochs (measured on the shipped V-O sample; matgnn's choice, with
    the batch normalisation).

    Args:
        grid: image edge (a power of two, at least 8).
        code: length of the compressed vector.
        width: channels of the hidden convolutions.
        norm: batch normalisation after each hidden convolution.
        background_logit: the decoder's initial output bias.
        shape_weight: weight of :meth:`shape_error` in the loss (0: cross-entropy only).

    Shapes:
        image ``[B, 1, grid, grid, grid]`` -> code ``[B, code]`` -> image.
    """

    def __init__(
        self,
        grid: int,
        code: int,
        width: int = 64,
        norm: bool = True,
        background_logit: float = -6.0,
        shape_weight: float = 0.0,
    ) -> None:
        super().__init__()
        self.shape_weight = float(shape_weight)
        if grid < 8 or grid & (grid - 1):
            raise ValueError(f"image grid must be a power of two >= 8, got {grid}")
        self.grid, self.code, self.width = int(grid), int(code), int(width)
        halvings = (grid // 4).bit_length() - 1  # grid -> 4
        down = [1, *[width] * halvings, code]
        self.encoder = nn.Sequential(
            *_conv_stack(down, (4, 1, 0), transpose=False, norm=norm), nn.Tanh()
        )
        self.decoder = nn.Sequential(*_conv_stack(down[::-1], (4, 1, 0), transpose=True, norm=norm))
        self.output_bias = nn.Parameter(torch.tensor(float(background_logit)))
        for module in self.modules():
            if isinstance(module, nn.Conv3d | nn.ConvTranspose3d):
                nn.init.xavier_uniform_(module.weight)

    def encode(self, image: Tensor) -> Tensor:
        return self.encoder(image).flatten(1)

    def decode_logits(self, code: Tensor) -> Tensor:
        return self.decoder(code[:, :, None, None, None]) + self.output_bias

    def decode(self, code: Tensor) -> Tensor:
        return torch.sigmoid(self.decode_logits(code))

    def forward(self, image: Tensor) -> Tensor:
        return self.decode(self.encode(image))

    def loss(self, logits: Tensor, image: Tensor) -> Tensor:
        """Binary cross-entropy of the decoded logits against the image (values in [0, 1]),
        summed over each image's voxels and averaged over the batch; with ``shape_weight``,
        plus that times the squared error of the decoded values' logarithms on the voxels the
        image's Gaussians cover (``image > 0``), summed the same way."""
        bce = nn.functional.binary_cross_entropy_with_logits(logits, image, reduction="sum")
        loss = bce / image.size(0)
        if self.shape_weight:
            loss = loss + self.shape_weight * self.shape_error(logits, image)
        return loss

    @staticmethod
    def shape_error(logits: Tensor, image: Tensor) -> Tensor:
        """``sum over image > 0 of (log sigmoid(logit) - log image)^2``, averaged over the
        batch: the error in the log-values the cell image's inverse reads the lattice from."""
        covered = image > 0
        decoded = nn.functional.logsigmoid(logits[covered])
        return (decoded - torch.log(image[covered])).pow(2).sum() / image.size(0)


def pack_codes(cell_codes: Tensor, basis_codes: Tensor) -> Tensor:
    """A crystal's generator input: its basis codes, one row per element, then its cell code
    zero-padded to the basis code's length.

    Shapes:
        ``[B, cell_code]``, ``[B, elements, length]`` -> ``[B, elements + 1, length]``.
    """
    length = basis_codes.size(-1)
    if cell_codes.size(-1) > length:
        raise ValueError(f"cell code ({cell_codes.size(-1)}) longer than the basis code ({length})")
    padded = nn.functional.pad(cell_codes, (0, length - cell_codes.size(-1)))
    return torch.cat([basis_codes, padded[:, None, :]], dim=1)


def unpack_codes(codes: Tensor, cell_code: int) -> tuple[Tensor, Tensor]:
    """The inverse of :func:`pack_codes`: ``(cell codes [B, cell_code], basis codes)``."""
    return codes[:, -1, :cell_code], codes[:, :-1]


@register("imatgen_cell_autoencoder")
class CellAutoencoder(ImageAutoencoder):
    """The cell image's autoencoder: 32^3 -> 20 (paper: 64-channel convolutions, a 20-long
    code).

    Args:
        grid: cell image edge (``ImageSpec.cell_grid``).
        code: code length.
        width: hidden channels.
        norm: batch normalisation after each hidden convolution.
        background_logit: the decoder's initial output bias.
        shape_weight: weight of the log-value error on the Gaussians in the loss.
    """

    def __init__(
        self,
        grid: int = 32,
        code: int = 20,
        width: int = 64,
        norm: bool = True,
        background_logit: float = -6.0,
        shape_weight: float = 0.0,
    ) -> None:
        super().__init__(grid, code, width, norm, background_logit, shape_weight)


@register("imatgen_basis_autoencoder")
class BasisAutoencoder(ImageAutoencoder):
    """One basis image's autoencoder, shared by every element channel: 64^3 -> 200.

    Args:
        grid: basis image edge (``ImageSpec.basis_grid``).
        code: code length.
        width: hidden channels.
        norm: batch normalisation after each hidden convolution.
        background_logit: the decoder's initial output bias.
        shape_weight: weight of the log-value error on the Gaussians in the loss.
    """

    def __init__(
        self,
        grid: int = 64,
        code: int = 200,
        width: int = 64,
        norm: bool = True,
        background_logit: float = -6.0,
        shape_weight: float = 0.0,
    ) -> None:
        super().__init__(grid, code, width, norm, background_logit, shape_weight)


@register("imatgen_generator")
class MaterialsGenerator(nn.Module):
    """The materials generator: a VAE on the codes of a crystal, with a property network on its
    latent vector.

    Update rule: ``x = [basis codes; cell code padded]`` ``[B, channels, length]``; ``mu,
    log var = Linear(flatten(conv(x)))``; ``z = mu + exp(log var / 2) * eps`` (training) or
    ``mu`` (eval); ``x' = tanh(deconv(Linear(z)))``; the property is ``head(z)``. Loss:
    ``MSE(x', x) + kl_weight * KL + property_weight * output loss``.

    Args:
        channels: number of basis codes (elements) + 1 for the cell.
        length: basis code length (the cell code is padded to it); a multiple of 8.
        cell_code: the cell code's length.
        latent: latent dimension (paper: 500).
        hidden: channels of the 1D convolutions (paper: 100).
        output: the property the latent is organised by (``None``: a plain VAE).
        head_hidden: the hidden layers of the output's head (the paper: one of 500 units).
        head_activation: their activation (a ``torch.nn`` name; the paper: tanh).

    Shapes:
        codes ``[B, channels, length]`` -> reconstruction ``[B, channels, length]``, mu and log
        var ``[B, latent]``, property ``[B, ...]``.
    """

    def __init__(
        self,
        channels: int = 3,
        length: int = 200,
        cell_code: int = 20,
        latent: int = 500,
        hidden: int = 100,
        output: Output | Mapping[str, Any] | None = None,
        head_hidden: Sequence[int] = (500,),
        head_activation: str = "Tanh",
    ) -> None:
        super().__init__()
        if length % 8:
            raise ValueError(f"generator code length must be a multiple of 8, got {length}")
        if cell_code > length:
            raise ValueError(f"cell code ({cell_code}) longer than the basis code ({length})")
        self.channels, self.length, self.cell_code = int(channels), int(length), int(cell_code)
        self.latent, self.hidden = int(latent), int(hidden)
        squeezed = length // 8
        self.encoder = nn.Sequential(
            nn.Conv1d(channels, hidden, 4, 2, 1),
            nn.LeakyReLU(0.2),
            nn.Conv1d(hidden, hidden, 4, 2, 1),
            nn.LeakyReLU(0.2),
            nn.Conv1d(hidden, hidden, 4, 2, 1),
            nn.LeakyReLU(0.2),
            nn.Conv1d(hidden, hidden // 2, 1),
            nn.LeakyReLU(0.2),
            nn.Flatten(),
            nn.Linear(hidden // 2 * squeezed, 2 * latent),
        )
        self.decoder = nn.Sequential(
            nn.Linear(latent, hidden // 2 * squeezed),
            nn.LeakyReLU(0.2),
            nn.Unflatten(1, (hidden // 2, squeezed)),
            nn.ConvTranspose1d(hidden // 2, hidden, 1),
            nn.LeakyReLU(0.2),
            nn.ConvTranspose1d(hidden, hidden, 4, 2, 1),
            nn.LeakyReLU(0.2),
            nn.ConvTranspose1d(hidden, hidden, 4, 2, 1),
            nn.LeakyReLU(0.2),
            nn.ConvTranspose1d(hidden, channels, 4, 2, 1),
            nn.Tanh(),
        )
        if isinstance(output, Mapping):
            output = safe_config.build(dict(output))
        self.output = output
        self.head: nn.Module | None = None
        if output is not None:
            template = {
                "@class": "regression_head",
                "@partial": True,
                "hidden": [int(h) for h in head_hidden],
                "activation": str(head_activation),
            }
            self.head = safe_config.build(output.head_config(template))(
                features=FeatureSpec(scalar_features=latent)
            )

    def pack(self, cell_codes: Tensor, basis_codes: Tensor) -> Tensor:
        """``[B, cell_code]`` and ``[B, channels - 1, length]`` -> ``[B, channels, length]``."""
        return pack_codes(cell_codes, basis_codes)

    def unpack(self, codes: Tensor) -> tuple[Tensor, Tensor]:
        """The inverse of :meth:`pack`: ``(cell codes, basis codes)``."""
        return unpack_codes(codes, self.cell_code)

    def encode(self, codes: Tensor) -> tuple[Tensor, Tensor]:
        mu, log_var = self.encoder(codes).chunk(2, dim=-1)
        return mu, log_var

    def sample(self, mu: Tensor, log_var: Tensor) -> Tensor:
        return mu + torch.exp(0.5 * log_var) * torch.randn_like(mu) if self.training else mu

    def decode(self, z: Tensor) -> Tensor:
        return self.decoder(z)

    def predict_property(self, z: Tensor) -> Tensor:
        """The property head on latent vectors (each one a "crystal" of one node)."""
        if self.head is None:
            raise ValueError("this generator has no property output")
        rows = torch.arange(z.size(0), device=z.device)
        features = NodeFeatures(
            scalars=z, atomic_numbers=torch.zeros_like(rows), batch=rows, num_crystals=z.size(0)
        )
        return self.head(features)

    def forward(self, codes: Tensor) -> dict[str, Tensor]:
        mu, log_var = self.encode(codes)
        z = self.sample(mu, log_var)
        out = {"reconstruction": self.decode(z), "mu": mu, "log_var": log_var, "z": z}
        if self.head is not None:
            out["property"] = self.predict_property(z)
        return out

    @staticmethod
    def kl_divergence(mu: Tensor, log_var: Tensor) -> Tensor:
        """Mean over the batch of ``KL(N(mu, sigma) || N(0, 1))`` summed over the latent."""
        return (0.5 * (log_var.exp() + mu**2 - 1.0 - log_var)).sum(-1).mean()
