"""Train iMatGen's networks: ``python -m matgnn.design.train stage=cell|basis
data.source=sample|mp36k|<file>`` for an autoencoder, then ``stage=generator
generator.cell_run=<run> generator.basis_run=<run>`` for the materials generator on their codes;
Hydra composes ``matgnn/configs/imatgen.yaml`` and :func:`matgnn.design.run.fit` assembles and
runs it. Resume an interrupted run with
``resume=<its folder>`` (same overrides)."""

from __future__ import annotations

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from matgnn.config_dir import CONFIG_PATH
from matgnn.design.run import fit


@hydra.main(config_path=CONFIG_PATH, config_name="imatgen", version_base="1.3")
def main(cfg: DictConfig) -> float | None:
    run = fit(cfg, HydraConfig.get().runtime.output_dir)
    return run.metrics["best_val_loss"]


if __name__ == "__main__":
    main()
