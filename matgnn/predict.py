"""Predict with a trained checkpoint:
``python -m matgnn.predict ckpt=<path> input=<file or folder> [output=<csv>] [batch_size=64]
[uncertainty=true|false]`` (or the console script ``matgnn-predict``). ``ckpt`` may also name a
pretrained model (``matgnn.checkpoints.pretrained.list_pretrained()``), e.g.
``ckpt=cgcnn_mp2018_eform``.

Reads CIF, POSCAR/CONTCAR, extxyz (anything pymatgen or ASE reads); no id_prop.csv needed.
Every readable, valid structure gets a row with every output of the model, in the columns of
the training run's ``test_predictions.csv`` (``id`` is the file name; per-atom outputs go to
``<output stem>_atoms.csv``); every rejected file is printed with its reason. Exit status: 0
when every file was predicted, 1 when some were rejected, 2 on a usage error.

A checkpoint of a run trained with ``uncertainty=<estimator>`` predicts with its estimator and
calibration by default: the table then has ``std_<name>``, ``aleatoric_std_<name>``,
``epistemic_std_<name>`` (regression) or ``entropy_<name>``, ``mutual_information_<name>``
(classification) columns (:mod:`matgnn.uncertainty`), ``lower_<name>``/``upper_<name>`` when it
was calibrated with a coverage, and ``ood_score`` (the crystal's latent distance to the
training set in units of the median validation one; :mod:`matgnn.uncertainty.latent`);
``uncertainty=false`` predicts with the single model only. A checkpoint that records its
training elements adds ``unseen_elements``: the crystal's elements it never saw (its
prediction is an extrapolation), space-separated, empty when none; they are also printed.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from matgnn.checkpoints.files import read_checkpoint
from matgnn.checkpoints.pretrained import resolve_checkpoint
from matgnn.graphs.elements import describe_unseen
from matgnn.models.inference import predict
from matgnn.uncertainty.model import model_for_prediction

ARGUMENTS = ("ckpt", "input", "output", "batch_size", "uncertainty")


def structure_files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
    return [path]


def parse_arguments(argv: Sequence[str]) -> dict[str, str]:
    """``key=value`` arguments; raises ``ValueError`` for anything else or an unknown key."""
    args = {}
    for item in argv:
        key, sep, value = item.partition("=")
        if not sep or key not in ARGUMENTS:
            raise ValueError(f"unknown argument {item!r}; arguments are {', '.join(ARGUMENTS)}")
        args[key] = value
    missing = [k for k in ("ckpt", "input") if k not in args]
    if missing:
        raise ValueError(f"missing {' and '.join(missing)}")
    if "batch_size" in args and not (args["batch_size"].isdigit() and int(args["batch_size"])):
        raise ValueError(f"batch_size must be a positive integer, got {args['batch_size']!r}")
    if args.get("uncertainty", "true") not in ("true", "false"):
        raise ValueError(f"uncertainty must be true or false, got {args['uncertainty']!r}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = parse_arguments(sys.argv[1:] if argv is None else argv)
        checkpoint = read_checkpoint(resolve_checkpoint(args["ckpt"]))
        try:
            model = model_for_prediction(checkpoint, args.get("uncertainty", "true") == "true")
        except ValueError as exc:
            raise ValueError(f"{args['ckpt']}: {exc}") from None
        source = Path(args["input"])
        if not source.exists():
            raise ValueError(f"input {source} does not exist")
        files = structure_files(source)
        if not files:
            raise ValueError(f"input folder {source} holds no files")
    except (ValueError, FileNotFoundError) as exc:
        print(f"matgnn-predict: {exc}\n\n{__doc__}", file=sys.stderr)
        return 2
    batch_size = int(args.get("batch_size", 64))
    output = Path(args.get("output", "predictions.csv"))
    result = predict(model, files, [f.name for f in files], batch_size, progress=True)
    written = result.to_csv(output)
    print(
        f"predicted {len(result.names)} of {len(files)} files -> "
        + ", ".join(str(p) for p in written)
    )
    for name, reason in result.rejected.items():
        print(f"rejected {name}: {reason}")
    if result.unseen_elements:  # predicted, but extrapolations: say so beside the table
        print(
            "elements the model never saw in training (predictions are extrapolations; "
            f"column unseen_elements): {describe_unseen(result.unseen_elements)}"
        )
    return 1 if result.rejected else 0


def cli() -> None:
    """Console entry point ``matgnn-predict``."""
    sys.exit(main())


if __name__ == "__main__":
    cli()
