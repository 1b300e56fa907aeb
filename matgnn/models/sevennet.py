"""SevenNet-0 as a pretrained backbone (Park et al., J. Chem. Theory Comput. 20, 4857 (2024)).

The installed ``sevenn`` package's network and weights (SevenNet-0, 11 July 2024: a NequIP-style
E(3)-equivariant network of 5 interaction blocks trained on MPtrj) encode each atom; any matgnn
head reads the invariant (``0e``) features of its interaction blocks.

Update rule (SevenNet's own, run by ``sevenn``): atoms one-hot embedded; edges within 5 Å
expanded in Bessel functions (XPLOR cutoff) and spherical harmonics up to l = 2; each block is a
self-connection, a linear, a tensor-product convolution over the edges, a linear and an
equivariant gate. The features of block ``k`` are the atom features after its gate.

SevenNet-0 does not track parity (``is_parity=False``): every channel is labelled even, so its
``1e`` channels mix vectors and pseudovectors, its ``2e`` channels tensors and pseudotensors, and
its features are equivariant under proper rotations only (random tensor heads on block 3's
features break the mirror symmetry of ``-42m`` and ``mm2`` crystals by 1-100% of their largest
component: ``tests/models/test_sevennet.py``). ``split_parity`` restores O(3): the network runs
on the crystal ``S`` and on its inversion image ``-S`` (every edge vector negated), and each
feature ``f`` splits into ``(f(S) + f(-S)) / 2``, inversion-even, and ``(f(S) - f(-S)) / 2``,
inversion-odd. As
``f(RS) = D(R) f(S)`` for every proper rotation ``R``, the even part transforms under an
improper ``-R`` as a true ``l e`` irrep and the odd part as ``l o``: the scalars become
invariants under every isometry (mirror images included) and the even parts of the blocks in
``equivariant_blocks`` (``128x0e + 64x1e + 32x2e`` after each of blocks 0-3) feed matgnn's
tensor heads (dielectric tensors, Born charges: tensors of even parity) with Neumann's
principle exact. The odd parts are not emitted (no head of matgnn reads an odd irrep). Its
features stop at l = 2: no ``4e`` for an elastic tensor.
"""

from __future__ import annotations

from collections.abc import Sequence
from unittest import mock

import numpy as np
import torch
from e3nn.o3 import Irreps
from torch import Tensor, nn
from torch_geometric.data import Data

from matgnn.checkpoints.registry import register
from matgnn.graphs.foundation import FOUNDATION_EXTRA
from matgnn.models.interfaces import Backbone, FeatureSpec, GraphRequirements, NodeFeatures
from matgnn.models.pretrained_blocks import chosen_blocks, warn_on_another_release

#: the sevenn release whose layers and weights this backbone was written and tested against
SEVENN_VERSION = "0.13.0"
#: the pretrained models this backbone is written and tested for (others have other readouts
#: or several modalities, or are downloaded)
PRETRAINED = ("7net-0",)


def _numpy_globals() -> list:
    """What the pretrained SevenNet-0 file holds besides tensors (numpy arrays in its config);
    the file is read with ``torch.load(weights_only=True)`` admitting these and nothing else."""
    core = np._core if hasattr(np, "_core") else np.core  # numpy 2 / 1
    return [
        (core.multiarray._reconstruct, "numpy.core.multiarray._reconstruct"),
        np.ndarray,
        np.dtype,
        *{type(np.dtype(kind)) for kind in ("float32", "float64", "int64", "int32", "bool")},
    ]


#: the modules after the interaction blocks: energy readout and forces, not used here
_READOUT = (
    "reduce_input_to_hidden",
    "reduce_hidden_to_energy",
    "rescale_atomic_energy",
    "reduce_total_enegy",
    "force_output",
)


def import_sevenn():
    """The ``sevenn`` package, or an error that says how to install it."""
    try:
        import sevenn
    except ImportError as exc:
        raise ImportError(
            f"the SevenNet backbone needs the sevenn package: {FOUNDATION_EXTRA}"
        ) from exc
    return sevenn


def _weights_only_load(path, weights_only: bool = False, map_location=None):
    with torch.serialization.safe_globals(_numpy_globals()):
        return torch.load(path, weights_only=True, map_location=map_location)


def load_pretrained_sevennet(name: str):
    """The pretrained SevenNet ``name`` (e.g. ``"7net-0"``) that the installed sevenn package
    ships, built by sevenn's own checkpoint code, with its file read by a weights-only loader
    (sevenn's reads it with a full unpickler)."""
    import_sevenn()
    if name not in PRETRAINED:
        raise ValueError(f"pretrained SevenNet {name!r}: one of {list(PRETRAINED)}")
    import sevenn.checkpoint
    from sevenn.util import load_checkpoint

    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float32)  # sevenn builds in float32 (its weights' dtype)
    try:
        with mock.patch.object(sevenn.checkpoint, "torch_load", _weights_only_load):
            checkpoint = load_checkpoint(name)
            model = checkpoint.build_model()
    finally:
        torch.set_default_dtype(previous)
    return model, checkpoint.config


@register("sevennet")
class SevenNetBackbone(Backbone):
    """SevenNet's pretrained network as an encoder: per atom, the invariant features of the
    chosen interaction blocks, concatenated, and for tensor heads the equivariant features of
    the blocks in ``equivariant_blocks``.

    Args:
        pretrained: the SevenNet model the package ships (``"7net-0"``: 842,623 parameters,
            of which the encoder keeps 834,189 (the energy readout dropped); 89 elements up to
            Pu; cutoff 5 Å).
        blocks: which interaction blocks' ``0e`` features to concatenate (0 = first); default
            every block (5 x 128 = 640 features per atom). Blocks after the last one chosen,
            and the energy readout, are not kept.
        sevenn_version: the ``sevenn`` release this model expects (a checkpoint stores it; a
            different installed release loads with a warning naming both).
        dropout: dropout probability on the invariant atom features after every block (MC
            dropout), inside SevenNet's forward pass (the l > 0 features are left whole, so
            each sample stays equivariant).
        split_parity: run the network on the crystal and its inversion image and keep the
            inversion-even part of each feature (module docstring): scalars invariant under
            mirrors too, and true even parities for the irreps; twice the cost. ``False``
            (default): SevenNet-0's own features (invariant under proper rotations only).
        equivariant_blocks: the blocks (0-3, those with l > 0) whose whole inversion-even
            features ``128x0e + 64x1e + 32x2e`` are also emitted as ``irreps`` for tensor
            heads, concatenated; needs ``split_parity``. Empty (default): invariant features
            only. A task with a tensor output sets ``[3]`` (the last block with l > 0) and
            ``split_parity`` when no block is chosen (:meth:`with_irreps_for`).

    Shapes:
        batch (a radius graph of at least 5 Å; longer edges are not used) -> scalars
        ``[N, 128 * len(blocks)]``, irreps ``[N, 416 * len(equivariant_blocks)]`` or ``None``.
    """

    follows_autocast = False  # e3nn's fx-compiled linears take one dtype: full precision

    def __init__(
        self,
        pretrained: str = "7net-0",
        blocks: Sequence[int] | None = None,
        sevenn_version: str = SEVENN_VERSION,
        dropout: float = 0.0,
        split_parity: bool = False,
        equivariant_blocks: Sequence[int] = (),
    ) -> None:
        super().__init__()
        sevenn = import_sevenn()
        warn_on_another_release("SevenNet", "sevenn", sevenn.__version__, sevenn_version)
        network, config = load_pretrained_sevennet(pretrained)
        count = int(config["num_convolution_layer"])
        self.blocks = chosen_blocks("SevenNet", blocks, count)
        self.equivariant_blocks = (
            chosen_blocks("SevenNet", equivariant_blocks, count) if equivariant_blocks else ()
        )
        self.split_parity = bool(split_parity)
        if self.equivariant_blocks and not self.split_parity:
            raise ValueError(
                "SevenNet equivariant_blocks need split_parity=true: SevenNet-0 tracks no "
                "parity, so its l > 0 features are equivariant under proper rotations only "
                "and a tensor head on them could break a crystal's mirror symmetry"
            )
        last = max(self.blocks + self.equivariant_blocks)
        prefixes = tuple(f"{k}_" for k in range(last + 1, count))
        for key in list(network._modules):
            if key in _READOUT or key.startswith(prefixes):
                network.delete_module_by_key(key)
        network.set_is_batch_data(True)
        network.key_grad = None  # no forces: edge vectors come from the graph, differentiable
        self.network = network.to(torch.get_default_dtype())
        self.cutoff = float(config["cutoff"])
        irreps = [Irreps(i) for i in config["irreps_manual"][1:]]  # the output of each block
        self.scalar_width = [sum(mul for mul, ir in i if ir.l == 0) for i in irreps]
        scalar_only = [k for k in self.equivariant_blocks if irreps[k].lmax == 0]
        if scalar_only:
            with_l = [k for k in range(count) if irreps[k].lmax > 0]
            raise ValueError(
                f"SevenNet equivariant_blocks {scalar_only}: block {scalar_only[0]} emits "
                f"scalars only ({irreps[scalar_only[0]]}); blocks with l > 0: {with_l}"
            )
        emitted = sum((irreps[k] for k in self.equivariant_blocks), Irreps(""))
        known = torch.zeros(int(network.z_to_onehot_tensor.numel()), dtype=torch.bool)
        known[list(network.type_map)] = True
        self.register_buffer("known_elements", known, persistent=False)
        self.dropout = nn.Dropout(dropout)
        self.pretrained, self.sevenn_version = str(pretrained), str(sevenn_version)
        self.requirements = GraphRequirements(radius_cutoff=self.cutoff)
        self.feature_spec = FeatureSpec(
            scalar_features=sum(self.scalar_width[k] for k in self.blocks),
            irreps=str(emitted) if self.equivariant_blocks else None,
        )

    @classmethod
    def with_irreps_for(cls, args: dict, needed: list[str]) -> dict:
        """Without chosen ``equivariant_blocks``, a task with tensor outputs gets block 3's
        (the last with l > 0) and ``split_parity``; irreps SevenNet lacks (``4e``) are left
        for the tensor head to refuse in words."""
        if needed and not args.get("equivariant_blocks"):
            # an explicit split_parity=false stays, for the constructor to refuse in words
            return {
                **args,
                "equivariant_blocks": [3],
                "split_parity": args.get("split_parity", True),
            }
        return args

    def message_passing_layers(self) -> list[nn.Module]:
        """Block k: every module named ``k_...`` (self-connection, linears, convolution)."""
        kept = {int(key.split("_", 1)[0]) for key in self.network._modules if key[0].isdigit()}
        return [
            nn.ModuleList(m for key, m in self.network._modules.items() if key.startswith(f"{k}_"))
            for k in sorted(kept)
        ]

    def check_elements(self, batch: Data) -> None:
        numbers = batch.atomic_numbers
        inside = numbers < self.known_elements.numel()
        unknown = ~inside | ~self.known_elements[numbers.clamp(max=self.known_elements.numel() - 1)]
        if bool(unknown.any()):
            from pymatgen.core import Element

            symbols = sorted({Element.from_Z(int(z)).symbol for z in numbers[unknown]})
            raise ValueError(
                f"SevenNet {self.pretrained} was not trained on {', '.join(symbols)} "
                f"(it knows {int(self.known_elements.sum())} elements)"
            )

    def forward(self, batch: Data) -> NodeFeatures:
        self.check_elements(batch)
        vectors = self.edge_vectors(batch)  # receiver -> sender image, as sevenn's edge_vec
        keep = vectors.norm(dim=-1) <= self.cutoff
        receiver, sender, vectors = (
            batch.edge_index[1][keep],
            batch.edge_index[0][keep],
            vectors[keep],
        )
        numbers, crystals = batch.atomic_numbers, self.crystal_index(batch)
        atoms = numbers.numel()
        if self.split_parity:  # the inversion image as a second copy of every crystal
            receiver = torch.cat([receiver, receiver + atoms])
            sender = torch.cat([sender, sender + atoms])
            vectors = torch.cat([vectors, -vectors])
            numbers = numbers.repeat(2)
            crystals = torch.cat([crystals, crystals + int(batch.lattice.size(0))])
        data = {
            "atomic_numbers": numbers,
            "x": numbers,
            "edge_index": torch.stack([receiver, sender]),  # sevenn: row 0 gathers from row 1
            "edge_vec": vectors,
            "batch": crystals,
        }
        features: dict[int, Tensor] = {}

        def after_block(k: int, out: dict) -> dict:
            x, width = out["x"], self.scalar_width[k]
            if self.dropout.p > 0:  # the scalars only: dropping l > 0 components would rotate
                # one mask per atom, the same for its inversion image (else a sample's even
                # part would average two masks and change under a mirror)
                keep = self.dropout(torch.ones_like(x[:atoms, :width]))
                keep = keep.repeat(2, 1) if self.split_parity else keep
                x = torch.cat([x[:, :width] * keep, x[:, width:]], dim=-1)
            out["x"] = features[k] = x
            return out

        onehot = self.network._modules["onehot_idx_to_onehot"]
        dtype = self.network._modules["onehot_to_feature_x"].linear.weight.dtype

        def in_model_dtype(out: dict) -> dict:  # sevenn's one-hot is float32 whatever the model
            for key in {onehot.key_output, onehot.key_additional_output} - {None}:
                out[key] = out[key].to(dtype)
            return out

        hooks = [
            onehot.register_forward_hook(lambda _module, _args, out: in_model_dtype(out)),
            *(
                self.network._modules[f"{k}_equivariant_gate"].register_forward_hook(
                    lambda _module, _args, out, k=k: after_block(k, out)
                )
                for k in range(max(self.blocks + self.equivariant_blocks) + 1)
            ),
        ]
        try:
            with torch.autocast(batch.lattice.device.type, enabled=False):
                self.network(data)
        finally:
            for hook in hooks:
                hook.remove()
        if self.split_parity:  # the inversion-even parts (the odd ones are not used)
            features = {k: (f[:atoms] + f[atoms:]) / 2 for k, f in features.items()}
        scalars = torch.cat([features[k][:, : self.scalar_width[k]] for k in self.blocks], dim=-1)
        irreps = None
        if self.equivariant_blocks:
            irreps = torch.cat([features[k] for k in self.equivariant_blocks], dim=-1)
        return self.node_features(batch, scalars, irreps)
