"""Sample crystals from a trained iMatGen materials generator: ``python -m matgnn.generate
generator_run=<run> mode=random|fitted|gaussian|slerp count=N`` (``around=[id,...]`` for
gaussian, ``between=[id,id]`` for slerp; ids of the structures the generator's ``codes.pt``
holds; fitted: the Gaussian of the training structures' latent means, its ``split.json``).

Hydra composes ``matgnn/configs/generate.yaml``; :func:`sample` loads the generator and its two
autoencoders (checkpoints read as data; the autoencoders must be the very files its codes came
from, and their image geometry is theirs; basis images decoded at the peak threshold and merge
saddle chosen for the basis autoencoder, or ``peak_threshold`` and ``merge_saddle``), chooses
the latent vectors, decodes them and writes ``generated.csv`` (composition, V oxidation state,
shortest interatomic distance and whether it is below the overlap cut calibrated for the basis
autoencoder (:mod:`matgnn.design.decoding`; 1.5 Å without one), the generator's property
prediction, or why nothing came back)
and one CIF per crystal into the run folder.
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path

import hydra
import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from matgnn.config_dir import CONFIG_PATH
from matgnn.design.decoding import checked_saddle, checked_threshold
from matgnn.design.generate import generate, latents, mark_overlapping, write_generated
from matgnn.design.run import CODES
from matgnn.design.training import load_design_models

log = logging.getLogger(__name__)


def _codes_of(run: Path, ids: list[str]) -> torch.Tensor:
    stored = torch.load(run / CODES, weights_only=True)
    index = {sid: k for k, sid in enumerate(stored["ids"])}
    unknown = [sid for sid in ids if sid not in index]
    if unknown:
        raise ValueError(f"{run / CODES}: no structure {unknown[0]!r} (ids as in split.json)")
    return stored["codes"][[index[sid] for sid in ids]]


def sample(cfg: DictConfig, output_dir: str | Path) -> Path:
    """Generate as ``cfg`` says; returns the table's path."""
    run = Path(cfg.generator_run)
    models = load_design_models(run, cfg.cell_run, cfg.basis_run)
    generator, cell, basis = models.generator, models.cell, models.basis
    if cfg.mode == "fitted":  # the Gaussian of the training structures' latent means
        chosen = list(json.loads((run / "split.json").read_text())["train"])
    else:
        chosen = {"gaussian": list(cfg.around), "slerp": list(cfg.between), "random": []}.get(
            cfg.mode, []
        )
    codes = _codes_of(run, chosen) if chosen else None
    z = latents(generator, cfg.mode, cfg.count, codes, sigma=cfg.sigma, seed=cfg.seed)
    spec = models.spec
    if cfg.get("peak_threshold") is not None:
        threshold = checked_threshold(cfg.peak_threshold, "generate.yaml / command line")
        spec = replace(spec, peak_threshold=threshold)
    if cfg.get("merge_saddle") is not None:
        saddle = None if cfg.merge_saddle == "none" else cfg.merge_saddle
        spec = replace(spec, merge_saddle=checked_saddle(saddle, "generate.yaml / command line"))
    log.info("basis images decoded at a peak threshold of %g, merge saddle %s",
             spec.peak_threshold, spec.merge_saddle)  # fmt: skip
    frame, structures = generate(generator, cell, basis, z, spec)
    frame = mark_overlapping(frame, models.overlap)
    frame.insert(1, "method", cfg.mode)
    if cfg.mode == "gaussian":
        frame.insert(2, "parent", [sid for sid in chosen for _ in range(cfg.count)])
    elif cfg.mode == "slerp":
        frame.insert(2, "parent", " -> ".join(chosen))
    table = write_generated(frame, structures, output_dir)
    made = int(frame["decoded"].sum())
    valid = int(frame["valid_oxidation_state"].sum())
    overlapping = int(frame["overlapping"].sum())
    if models.overlap_cut is None:
        cut = "not calibrated, the default"
    elif spec == models.spec:
        cut = "calibrated"
    else:  # the cut was read from decodings at the chosen setting, not at the one set here
        cut = (f"calibrated for peak threshold {models.spec.peak_threshold:g}, merge saddle "
               f"{models.spec.merge_saddle}, not this decoding")  # fmt: skip
    log.info("%d of %d latents decoded to crystals, %d with V at +2..+5, %d with atoms closer "
             "than %g Å (the overlap cut, %s): %s",
             made, len(frame), valid, overlapping, models.overlap, cut, table)  # fmt: skip
    return table


@hydra.main(config_path=CONFIG_PATH, config_name="generate", version_base="1.3")
def main(cfg: DictConfig) -> None:
    sample(cfg, HydraConfig.get().runtime.output_dir)


if __name__ == "__main__":
    main()
