"""A refusal raised inside a model during a training, validation or test step names the crystals
at fault (found by running the batch's graphs one at a time), not only the problem."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf
from pymatgen.core import Lattice, Structure
from torch_geometric.data import Batch

from matgnn.data.samples import mp_sample_structures
from matgnn.graphs import build_graph
from matgnn.models import assembly
from matgnn.outputs import ScalarOutput
from matgnn.training.lit_module import CrystalLitModule
from tests.models.helpers import SMALL, compose_model_config


def test_an_element_outside_the_cgcnn_table_is_named_by_its_crystal():
    config = assembly.assemble(
        assembly.from_hydra(
            OmegaConf.to_container(compose_model_config("cgcnn", SMALL["cgcnn"]), resolve=True)
        ),
        [ScalarOutput("y", target="y")],
        {},
    )
    module = CrystalLitModule(model=config)
    ids, structures = mp_sample_structures(3)
    # mendelevium (Z = 101): past the CGCNN atom-feature table (Z = 1..100)
    odd = Structure(Lattice.cubic(3.5), ["Md", "O"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    graph_config = module.model.graph_config()
    graphs = [build_graph(s, graph_config, name=i) for i, s in zip(ids, structures, strict=True)]
    graphs.insert(1, build_graph(odd, graph_config, name="mp-odd"))
    for graph in graphs:
        graph[module.outputs[0].key] = graph.atomic_numbers[:1].float()
    batch = Batch.from_data_list(graphs)
    module.train()
    with pytest.raises(ValueError, match=r"^mp-odd \(train\): the CGCNN atom-feature table"):
        module._step(batch, "train")
    assert module.model.training  # left in the mode it was in
