"""Separate a decoding change from a generator change (issue 27): a generator run's chain
reconstruction (validation and test structures through the autoencoders alone and through the
generator) and its rediscovery (``generation.py``'s: 30 latents around each held-out
structure, sigma 0.1, seed 0), decoded at the basis run's chosen decoding and with its merge
saddle set to each of ``--saddles`` (``none``: no merging); the counts to a JSON file.

    python benchmarks/design/merge_attribution.py --generator RUN --data VO_DATASET.json.gz \\
        [--saddles none 0.6] [--out benchmarks/design/results/merge_attribution.json]

2 cores: about 6 min per saddle. Its stored output backs the prose of
docs/results/inverse-design.md ("What moved"); tests/test_benchmark_tables.py checks it against
the stored generation tables and the kept generator's weights.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[2]
if str(REPOSITORY) not in sys.path:
    sys.path.insert(0, str(REPOSITORY))

OUT = REPOSITORY / "benchmarks" / "design" / "results" / "merge_attribution.json"


def attribute(generator_run: Path, data_file: str, saddles: list[float | None]) -> dict:
    from pymatgen.analysis.structure_matcher import StructureMatcher

    from benchmarks.design.generation import (
        chain_reconstruction,
        matches_parents,
        rediscovery,
        stored_codes,
    )
    from matgnn.checkpoints.digest import state_digest
    from matgnn.design.generate import generate
    from matgnn.design.run import load_vo_dataset
    from matgnn.design.training import load_design_models

    start = time.perf_counter()
    data = load_vo_dataset(data_file, "", "")
    structures = dict(zip(data.ids, data.structures, strict=True))
    models = load_design_models(generator_run)
    split = json.loads((generator_run / "split.json").read_text())
    stored = stored_codes(generator_run, models, data)
    index = {sid: k for k, sid in enumerate(stored["ids"])}
    held = split["held_out"]
    codes = stored["codes"][[index[sid] for sid in held]]
    record: dict = {
        "generator_run": str(generator_run),
        # which weights: the epoch and the SHA-256 of the weights themselves (a slimmed copy of
        # the checkpoint gives the same), and the autoencoders' checkpoints as its provenance says
        "generator_epoch": models.generator.checkpoint_epoch,
        "generator_weights_sha256": state_digest(models.generator),
        "cell_sha256": models.generator.provenance["cell_sha256"],
        "basis_sha256": models.generator.provenance["basis_sha256"],
        "peak_threshold": models.spec.peak_threshold,
        "chosen_merge_saddle": models.spec.merge_saddle,
        "by_saddle": {},
    }
    matcher = StructureMatcher()
    for saddle in saddles:
        chosen = replace(models, spec=replace(models.spec, merge_saddle=saddle))
        chain = chain_reconstruction(chosen, stored, split, data)
        fully = {
            f"{part}/{through}": int(frame["fully_reconstructed"].sum())
            for (part, through), frame in chain.groupby(["part", "through"])
        }
        z, parents = rediscovery(chosen.generator, held, codes)
        _, made = generate(chosen.generator, chosen.cell, chosen.basis, z, chosen.spec)
        hits = matches_parents(made, parents, structures, matcher)
        found = {parent for parent, hit in zip(parents, hits, strict=True) if hit}
        record["by_saddle"]["none" if saddle is None else str(saddle)] = {
            "fully_reconstructed": fully,
            "rediscovered": sorted(found),
        }
        print(saddle, record["by_saddle"], flush=True)
    record["seconds"] = round(time.perf_counter() - start)
    return record


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generator", type=Path, required=True)
    parser.add_argument("--data", default="sample", help="'sample' or a VODataset .json.gz")
    parser.add_argument("--saddles", nargs="+", default=["none", "0.6"])
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    saddles = [None if value == "none" else float(value) for value in args.saddles]
    record = attribute(args.generator, args.data, saddles)
    args.out.write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
