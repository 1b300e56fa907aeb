"""Shared helpers for the model tests: compose model configs, build batches, transform cells."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from pymatgen.core import Structure
from scipy.spatial.transform import Rotation
from torch_geometric.data import Batch

from matgnn.graphs import GraphConfig, build_graph
from matgnn.models import CrystalModel

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs"
MODEL_NAMES = ("cgcnn", "alignn", "matformer", "potnet", "e3nn")

# Narrow versions of each default model, for optimisation and training smoke tests
# (a few seconds each).
SMALL = {
    "cgcnn": ["model.backbone.hidden_features=32"],
    "alignn": [
        "model.backbone.hidden_features=64",
        "model.backbone.alignn_layers=2",
        "model.backbone.gcn_layers=2",
    ],
    "matformer": ["model.backbone.hidden_features=64", "model.backbone.num_layers=2"],
    "potnet": ["model.backbone.hidden_features=64", "model.heads.y.hidden=[64]"],
    "e3nn": ["model.backbone.mul=8", "model.backbone.irreps_out=32x0e"],
}


def compose_model_config(name: str, overrides: Sequence[str] = ()):
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base=None):
        return compose(overrides=[f"+model={name}", *overrides]).model


def make_model(name: str, overrides: Sequence[str] = (), seed: int = 0) -> CrystalModel:
    torch.manual_seed(seed)
    model = instantiate(compose_model_config(name, overrides))
    return model.eval()


def batch_of(structures: Sequence[Structure], graph: GraphConfig) -> Batch:
    return Batch.from_data_list([build_graph(s, graph) for s in structures])


def random_rotation(seed: int) -> np.ndarray:
    return Rotation.random(random_state=seed).as_matrix()


def rotated(structure: Structure, rotation: np.ndarray) -> Structure:
    """The same crystal with lattice rows (and so every Cartesian position) rotated."""
    lattice = structure.lattice.matrix @ rotation.T
    return Structure(lattice, structure.species, structure.frac_coords)


def translated(structure: Structure, shift: np.ndarray) -> Structure:
    """Every atom moved by a Cartesian ``shift`` and wrapped back into the cell."""
    moved = structure.copy()
    moved.translate_sites(list(range(len(moved))), shift, frac_coords=False, to_unit_cell=True)
    return moved


def permuted(structure: Structure, seed: int) -> Structure:
    order = np.random.default_rng(seed).permutation(len(structure))
    return Structure(
        structure.lattice,
        [structure.species[i] for i in order],
        structure.frac_coords[order],
    )


def other_cell(structure: Structure) -> Structure:
    """The same crystal in a different (sheared, unimodular) unit cell, atoms wrapped in."""
    basis = np.array([[1, 1, 0], [0, 1, 0], [1, 0, 1]])
    lattice = basis @ structure.lattice.matrix
    cart = structure.cart_coords
    return Structure(lattice, structure.species, cart, coords_are_cartesian=True, to_unit_cell=True)
