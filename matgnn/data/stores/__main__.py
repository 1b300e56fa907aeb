"""Build a task's on-disk graph store ahead of training, e.g. once before a multi-node job:

    python -m matgnn.data.stores model=alignn task=mp_eform task.data.store_workers=2

Takes the overrides of ``python -m matgnn.train`` (the store depends on the model's graph config
and the task's source); ``task.data.store=disk`` is implied. A killed build resumes where it
stopped; a complete store is only verified. Prints where the store is and what it holds.
"""

from __future__ import annotations

import logging
import sys
import time

from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from matgnn.config_dir import CONFIG_DIR
from matgnn.graphs import GraphConfig


def main(argv: list[str] | None = None) -> int:
    from matgnn.training.run import model_config, task_outputs

    overrides = sys.argv[1:] if argv is None else argv
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(
            config_name="train",
            overrides=["paths.output_dir=.", "task.data.store=disk", *overrides],
        )
    outputs = task_outputs(cfg)
    graph = GraphConfig.from_dict(model_config(cfg, outputs)["graph"])
    start = time.perf_counter()
    data = instantiate(cfg.task.data)(graph=graph, outputs=outputs)
    data.setup("fit")
    store = data.graph_store
    sizes = {k: len(v) for k, v in data.subsets.items()}
    print(
        f"graph store {store.directory}: {len(store)} graphs in {len(store.shards)} shards, "
        f"{sum(int(s.offsets[-1]) for s in store.shards) / 2**20:.1f} MiB; split {sizes}; "
        f"{len(data.rejected)} rejected; {time.perf_counter() - start:.1f} s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
