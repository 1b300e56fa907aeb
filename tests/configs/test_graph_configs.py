"""Every matgnn/configs/graph/*.yaml composes with Hydra and instantiates a GraphConfig that
builds."""

from __future__ import annotations

import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from matgnn.config_dir import CONFIG_DIR, group_options
from matgnn.data.sources.ye2018 import ye2018_garnet, ye2018_perovskite_sample
from matgnn.graphs import GraphConfig, build_graph

GRAPH_CONFIGS = group_options("graph")


def test_graph_group_is_not_empty() -> None:
    assert {"cgcnn", "alignn", "matformer", "potnet"} <= set(GRAPH_CONFIGS)


@pytest.mark.parametrize("name", GRAPH_CONFIGS)
def test_graph_config_composes_and_builds(name: str, mp_structures) -> None:
    with initialize_config_dir(config_dir=str(CONFIG_DIR / "graph"), version_base="1.3"):
        cfg = compose(config_name=name)
    config = instantiate(cfg)
    assert isinstance(config, GraphConfig)
    assert GraphConfig.from_dict(cfg) == config
    structure = mp_structures[0]
    if config.site_descriptors:  # a labelled crystal of the Ye et al. tasks
        garnet = config.site_descriptors[0].startswith("C")
        structure = (ye2018_garnet if garnet else ye2018_perovskite_sample)(limit=1).structures[0]
    graph = build_graph(structure, config)
    assert ("site_descriptor" in graph) == bool(config.site_descriptors)
    assert graph.edge_index.size(1) > 0
    assert ("lg_edge_index" in graph) == config.line_graph
    assert ("potential_sums" in graph) == bool(config.potentials)
