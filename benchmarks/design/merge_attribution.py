"""Separate a decoding change from a generator change (issue 27): a generator run's chain
reconstruction (validation and test structures through the autoencoders alone and through the
generator) and its rediscovery (``generation.py``'s: 30 latents around each held-out
structure, sigma 0.1, seed 0), decoded at the basis run's chosen decoding and with its merge
saddle set to each of ``--saddles`` (``none``: no merging); the counts to a JSON file.

    python benchmarks/design/merge_attribution.py --generator RUN --data VO_DATASET.json.gz \\
        [--saddles none 0.6] [--out benchmarks/design/results/merge_attribution.json]
    python benchmarks/design/merge_attribution.py --update docs/results/inverse-design.md

2 cores: about 6 min per saddle. The record names the weights (epoch, SHA-256), the
autoencoders, and the run's seed, validation loss and epochs. The kept generator's output backs
the prose of docs/results/inverse-design.md ("What moved"); tests/test_benchmark_tables.py
checks it against the stored generation tables and the kept generator's weights. The outputs of
the same recipe retrained with other seeds (``results/generator_seeds/seed<N>.json``, at the
chosen saddle) and the kept one's make the seed table (``--update``): how much a retraining
moves the chain and the rediscovery.
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

RESULTS = REPOSITORY / "benchmarks" / "design" / "results"
OUT = RESULTS / "merge_attribution.json"
#: the generator retrained with the kept one's recipe and other seeds: one output per seed
SEEDS_DIR = RESULTS / "generator_seeds"
#: the seeds the spread table needs besides the kept generator's (seed 0, ``OUT``)
SEEDS = (1, 2)
SEEDS_BLOCK = "imatgen-generator-seeds"
#: the generator split's sizes (``benchmarks/design/runs/generator/split.json``)
SPLIT = REPOSITORY / "benchmarks" / "design" / "runs" / "generator" / "split.json"


#: the chain's outcomes a record counts, per part and route (the chain table's columns)
COUNTED = ("decoded", "same_composition", "fully_reconstructed", "matches")
#: the recipe a retraining must share with the kept generator (its ``.hydra/config.yaml``)
RECIPE = {
    "lr": ("lr",),
    "batch_size": ("data", "batch_size"),
    "max_epochs": ("trainer", "max_epochs"),
    "latent": ("generator", "latent"),
    "hidden": ("generator", "hidden"),
    "kl_weight": ("generator", "kl_weight"),
    "cell_weight": ("generator", "cell_weight"),
    "property_weight": ("generator", "property_weight"),
    "property_labels": ("generator", "property", "labels"),
    "property_column": ("generator", "property", "column"),
    "property_threshold": ("generator", "property", "threshold"),
    "precision": ("trainer", "precision"),
    "split_seed": ("data", "split_seed"),
}


def saddle_key(saddle: float | None) -> str:
    """A merge saddle as a record's key: ``"none"`` for no merging."""
    return "none" if saddle is None else str(saddle)


def training_facts(generator_run: Path) -> dict:
    """The run's seed and recipe (its ``.hydra/config.yaml``), the SHA-256 of its split and of
    its codes (``codes.pt``), and its best validation loss, epochs and training time (its
    ``result.json``); None for what the folder does not hold."""
    import yaml

    from matgnn.graphs.cache import file_sha256

    path = generator_run / ".hydra" / "config.yaml"
    config = yaml.safe_load(path.read_text()) if path.is_file() else None
    recipe = None
    if config is not None:
        recipe = {}
        for name, keys in RECIPE.items():
            value = config
            for key in keys:
                value = value.get(key) if isinstance(value, dict) else None
            recipe[name] = value
    result = generator_run / "result.json"
    done = json.loads(result.read_text()) if result.is_file() else {}
    codes = generator_run / "codes.pt"  # what it trained on; a kept folder may not hold them
    return {
        "seed": None if config is None else config.get("seed"),
        "recipe": recipe,
        "split_sha256": file_sha256(generator_run / "split.json"),
        "codes_sha256": file_sha256(codes) if codes.is_file() else None,
        **{key: done.get(key) for key in ("best_val_loss", "epochs_run", "train_time_s")},
    }


def attribute(
    generator_run: Path,
    data_file: str,
    saddles: list[float | None] | None = None,
    per_structure: int | None = None,
    sigma: float | None = None,
) -> dict:
    """The record of one generator run: its weights, autoencoders, training, and per merge
    saddle (default: none and the chosen one) the chain's counts and the rediscovery."""
    from pymatgen.analysis.structure_matcher import StructureMatcher

    from benchmarks.design.generation import (
        PER_STRUCTURE,
        SIGMA,
        chain_reconstruction,
        codes_of,
        load_run,
        matches_parents,
        rediscovery,
    )
    from matgnn.checkpoints.digest import state_digest
    from matgnn.design.generate import generate

    start = time.perf_counter()
    data, structures, models, split, stored = load_run(generator_run, data_file)
    if saddles is None:
        saddles = list(dict.fromkeys([None, models.spec.merge_saddle]))
    per_structure = PER_STRUCTURE if per_structure is None else per_structure
    sigma = SIGMA if sigma is None else sigma
    held = split["held_out"]
    codes = codes_of(stored, held)
    record: dict = {
        "generator_run": str(generator_run),
        # which weights: the epoch and the SHA-256 of the weights themselves (a slimmed copy of
        # the checkpoint gives the same), and the autoencoders' checkpoints as its provenance says
        "generator_epoch": models.generator.checkpoint_epoch,
        "generator_weights_sha256": state_digest(models.generator),
        "cell_sha256": models.generator.provenance["cell_sha256"],
        "basis_sha256": models.generator.provenance["basis_sha256"],
        "training": training_facts(generator_run),
        "peak_threshold": models.spec.peak_threshold,
        "chosen_merge_saddle": models.spec.merge_saddle,
        "rediscovery": {"per_structure": per_structure, "sigma": sigma},
        "by_saddle": {},
    }
    matcher = StructureMatcher()
    for saddle in saddles:
        chosen = replace(models, spec=replace(models.spec, merge_saddle=saddle))
        chain = chain_reconstruction(chosen, stored, split, data)
        counts = {
            f"{part}/{through}": {column: int(frame[column].sum()) for column in COUNTED}
            for (part, through), frame in chain.groupby(["part", "through"])
        }
        z, parents = rediscovery(chosen.generator, held, codes, per_structure, sigma)
        _, made = generate(chosen.generator, chosen.cell, chosen.basis, z, chosen.spec)
        hits = matches_parents(made, parents, structures, matcher)
        record["by_saddle"][saddle_key(saddle)] = {
            "chain": counts,
            "rediscovery_decoded": sum(crystal is not None for crystal in made),
            "rediscovered": sorted({p for p, hit in zip(parents, hits, strict=True) if hit}),
        }
        print(saddle, record["by_saddle"], flush=True)
    record["seconds"] = round(time.perf_counter() - start)
    return record


def refresh_training(generator_run: Path, out: Path) -> None:
    """Rewrite the training facts of the record ``out`` from ``generator_run`` (what the
    record's run folder says of its seed and recipe), refused unless the run's best checkpoint
    holds the very weights the record names."""
    from matgnn.checkpoints.digest import state_digest
    from matgnn.design.training import load_generator

    record = json.loads(out.read_text())
    weights = state_digest(load_generator(generator_run / "checkpoints" / "best.ckpt"))
    if weights != record["generator_weights_sha256"]:
        raise SystemExit(f"{generator_run}: not the weights {out} records")
    record["training"] = training_facts(generator_run)
    out.write_text(json.dumps(record, indent=1) + "\n")
    print(f"rewrote the training facts of {out}")


def seed_records(seeds_dir: Path = SEEDS_DIR, kept: Path = OUT) -> list[dict]:
    """The kept generator's record and one per retraining seed of :data:`SEEDS`, checked to be
    of the same autoencoders, decoding and recipe; a missing one fails in words."""
    records = [json.loads(kept.read_text())]
    for seed in SEEDS:
        path = seeds_dir / f"seed{seed}.json"
        assert path.is_file(), (
            f"{path} is missing: retrain the generator with seed={seed} (benchmarks/design/runs/"
            f"README.md) and run merge_attribution.py --generator RUN --saddles 0.6 --out {path}"
        )
        records.append(json.loads(path.read_text()))
    first = records[0]
    same = ("cell_sha256", "basis_sha256", "peak_threshold", "chosen_merge_saddle", "rediscovery")
    assert first["training"]["recipe"] is not None, f"{kept}: the run's recipe is not recorded"
    for record in records[1:]:
        seed = record["training"]["seed"]
        for key in same:
            assert record[key] == first[key], f"seed {seed}: another {key} than the kept run's"
        for key in ("recipe", "split_sha256", "codes_sha256", "epochs_run"):
            assert record["training"][key] == first["training"][key], (
                f"seed {seed}: another training {key} than the kept run's"
            )
    seeds = [record["training"]["seed"] for record in records]
    assert seeds == [0, *SEEDS], f"the records' seeds are {seeds}, not {[0, *SEEDS]}"
    from matgnn.graphs.cache import file_sha256

    split = file_sha256(SPLIT)
    assert first["training"]["split_sha256"] == split, f"the records' split is not {SPLIT}"
    chosen = saddle_key(first["chosen_merge_saddle"])
    for record in records:
        assert chosen in record["by_saddle"], (
            f"seed {record['training']['seed']}: not decoded at the chosen merge saddle {chosen}"
        )
    return records


def seeds_table(seeds_dir: Path = SEEDS_DIR, kept: Path = OUT) -> str:
    """Markdown: the chain and rediscovery counts of each retraining seed, and their spread."""
    import numpy as np

    records = seed_records(seeds_dir, kept)
    sizes = {part: len(ids) for part, ids in json.loads(SPLIT.read_text()).items()}
    saddle = saddle_key(records[0]["chosen_merge_saddle"])
    rows, tests, found = [], [], []
    for record in records:
        counts = record["by_saddle"][saddle]
        rediscovered = counts["rediscovered"]
        fully = {route: n["fully_reconstructed"] for route, n in counts["chain"].items()}
        training = record["training"]
        tests.append(fully["test/generator"])
        found.append(len(rediscovered))
        names = ", ".join(name.removesuffix(":known") for name in rediscovered)
        rows.append(
            f"| {training['seed']}{' (kept)' if record is records[0] else ''} "
            f"| {record['generator_epoch']} ({training['epochs_run']} run) "
            f"| {training['best_val_loss']:.3f} "
            f"| {fully['val/generator']} | {fully['test/generator']} "
            f"({fully['test/generator'] / sizes['test']:.1%}) "
            f"| {len(rediscovered)} | {names} |"
        )
    alone = {record["by_saddle"][saddle]["chain"]["test/autoencoders"]["fully_reconstructed"]
             for record in records}  # fmt: skip
    assert len(alone) == 1, f"the autoencoders alone differ between the records: {alone}"
    n = len(records)
    spread = (
        f"Over the {n} seeds (mean ± sample standard deviation, every seed counted): test "
        f"structures through the generator {np.mean(tests):.0f} ± {np.std(tests, ddof=1):.0f} "
        f"({np.mean(tests) / sizes['test']:.1%}; through the autoencoders alone "
        f"{alone.pop()}), rediscovered {np.mean(found):.1f} ± {np.std(found, ddof=1):.1f} of "
        f"{sizes['held_out']}."
    )
    recipe, draw = records[0]["training"]["recipe"], records[0]["rediscovery"]
    same_codes = records[0]["training"]["codes_sha256"] is not None
    return "\n".join(
        [
            f"Generator retrained with the kept one's recipe ({recipe['max_epochs']} epochs, "
            f"KL weight {recipe['kl_weight']:g}, cell weight {recipe['cell_weight']:g}, latent "
            f"{recipe['latent']}, Adam {recipe['lr']:g}, batch {recipe['batch_size']}; "
            f"{'the same codes (SHA-256), ' if same_codes else ''}autoencoders and split), one "
            "row per training seed, decoded at the chosen decoding (peak threshold "
            f"{records[0]['peak_threshold']:g}, merge saddle {saddle}); the best checkpoint's "
            "epoch (from 0); structures fully reconstructed through the generator's latent "
            f"mean ({sizes['val']} validation, {sizes['test']} test); rediscovered: a match "
            f"among {draw['per_structure']} latents (sigma {draw['sigma']:g}) around each of "
            f"the {sizes['held_out']} held-out structures. Only seed 0's weights are kept; the "
            "others' SHA-256 are in `benchmarks/design/results/generator_seeds/`.",
            "",
            "| seed | best epoch | validation loss | val through generator | test through "
            "generator | rediscovered | which |",
            "|---|---|---|---|---|---|---|",
            *rows,
            "",
            spread,
        ]
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generator", type=Path)
    parser.add_argument("--data", default="sample", help="'sample' or a VODataset .json.gz")
    parser.add_argument(
        "--saddles",
        nargs="+",
        help="merge saddles ('none': no merging); default: none and the basis run's chosen one",
    )
    parser.add_argument("--per-structure", type=int, help="rediscovery latents per structure")
    parser.add_argument("--sigma", type=float, help="the rediscovery latents' spread")
    parser.add_argument(
        "--training-only", action="store_true",
        help="rewrite only the training facts of the record --out holds, from --generator (its "
        "weights checked against the record's SHA-256), without decoding again",
    )  # fmt: skip
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument(
        "--update", type=Path, nargs="*", help="write the seed table into these pages"
    )
    args = parser.parse_args(argv)
    if args.update is not None:
        from benchmarks.catalog import publish

        publish(seeds_table(), args.update, SEEDS_BLOCK)
        return
    if args.generator is None:
        parser.error("--generator RUN is needed (or --update PAGE for the seed table)")
    if args.training_only:
        refresh_training(args.generator, args.out)
        return
    from matgnn.design.decoding import checked_saddle

    saddles = None
    if args.saddles is not None:
        saddles = [
            None if value == "none" else checked_saddle(float(value), "--saddles")
            for value in args.saddles
        ]
    record = attribute(args.generator, args.data, saddles, args.per_structure, args.sigma)
    args.out.write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
