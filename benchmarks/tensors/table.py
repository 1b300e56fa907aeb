"""Tensor properties with the equivariant heads (issue 14): the e3nn network with a TensorHead
on the dielectric tensors (Petousis 2017), the elastic tensors (de Jong 2015) and the Born
charges, against a scalar model (CGCNN) that predicts the derived scalars directly on the same
rows and split, and against two trivial predictors.

    python benchmarks/tensors/table.py [--collect <runs folder>] [--update docs/results/tensors.md]

``--collect`` copies from ``<runs>/<run>`` (the runs of ``run.sh``; a run not found there keeps
its stored results, a run neither found nor stored stops it) the test predictions to
``results/predictions/<run>.csv.gz`` (and the per-atom ones of the Born-charge run), the logs
to ``results/logs/<run>.csv`` and the budget (epochs, the epoch of the checkpoint tested,
summed epoch time) to ``results/runs.csv``; it checks that each tensor run and its
scalar run have the same test crystals (same rows, same seed: the same split), and stores each
tensor run's training-mean tensor (``results/train_means.json``, from the run's ``split.json``
and the data set in ``paths.data_dir``) for the baseline. Everything below is computed from
these stored files.

Metrics, on the test crystals (one seed, split seed 0):

* component MAE: over the 9 components of a 3x3 tensor, over the 21 independent Voigt
  components ``C_IJ, I <= J`` (GPa) of an elastic tensor;
* relative Frobenius error: mean over crystals of ``||P - T||_F / ||T||_F`` (Cartesian tensors,
  so the same in every frame);
* derived scalars from the predicted tensor: the mean dielectric constant ``trace / 3`` and
  the refractive index ``n = sqrt(trace / 3)`` of the electronic tensor; the Voigt-Reuss-Hill
  ``K_VRH`` and ``G_VRH`` (:func:`matgnn.analysis.elasticity.vrh_moduli`) against the data set's
  stored moduli, also as MAE of ``log10`` (Matbench's ``log_kvrh`` / ``log_gvrh`` metric), on the
  crystals with positive moduli.

Predictors: the e3nn TensorHead; the scalar model as an isotropic tensor (``eps I`` from its
mean dielectric constant; ``lambda d d + mu (d d + d d)`` with ``lambda = K - 2G/3``, ``mu = G``
from its K_VRH and G_VRH); the training-mean tensor; and each test tensor's own isotropic part
(``trace/3 I``; the Voigt-average isotropic tensor): the best any scalar-only prediction can
score on the component metrics, an oracle, not a model.

Also ``results/elastic_parity.png``: predicted against DFT K_VRH and G_VRH (tensor-derived,
e3nn; direct, CGCNN), and ``results/elastic_components.png``: the 21 Voigt components.
"""

from __future__ import annotations

import functools
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from matgnn.analysis.elasticity import cartesian_to_voigt, voigt_to_cartesian, vrh_moduli
from matgnn.config_dir import default_data_dir
from matgnn.data import Records
from matgnn.data.sources import tensors
from matgnn.outputs.tensor import COMPONENTS
from matgnn.training.run_logs import read_logs, training_summary

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: catalog.py
from catalog import table_script

if str(Path(__file__).resolve().parents[2]) not in sys.path:  # the repository: benchmarks.*
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from benchmarks.matbench.leaderboard import LEADERBOARD_JAN_2024

HERE = Path(__file__).parent
RESULTS = HERE / "results"
PREDICTIONS = RESULTS / "predictions"
DIELECTRIC_SCALARS = ("cgcnn_dielectric_scalars", "e3nn_dielectric_scalars")
ELASTIC_SCALARS = ("cgcnn_elastic_moduli", "e3nn_elastic_moduli")
#: run folder -> (task, model, the scalar runs on the same split)
RUNS = {
    "e3nn_dielectric_electronic": ("dielectric_electronic", "e3nn", DIELECTRIC_SCALARS),
    "e3nn_dielectric_total": ("dielectric_total", "e3nn", DIELECTRIC_SCALARS),
    "e3nn_elastic_tensor": ("elastic_tensor", "e3nn", ELASTIC_SCALARS),
    "e3nn_born_charges": ("born_charges", "e3nn", ()),
    "cgcnn_dielectric_scalars": ("dielectric_scalars", "cgcnn", ()),
    "cgcnn_elastic_moduli": ("elastic_moduli", "cgcnn", ()),
    "e3nn_dielectric_scalars": ("dielectric_scalars", "e3nn", ()),
    "e3nn_elastic_moduli": ("elastic_moduli", "e3nn", ()),
    # issue 26: SevenNet-0 frozen, tensor heads on its block-3 equivariant features
    **{
        f"sevennet{variant}_{task}": (task, "sevennet", ())
        for variant in ("", "_gated")
        for task in ("dielectric_electronic", "dielectric_total", "born_charges")
    },
    # the elastic tensor's 4e made from each atom's tensor square (SevenNet-0 stops at l = 2)
    **{
        f"sevennet{variant}_square_elastic_tensor": ("elastic_tensor", "sevennet", ())
        for variant in ("", "_gated")
    },
}
#: each frozen SevenNet run -> (the e3nn run whose test crystals it must share: same rows and
#: seed, its label's head variant)
FROZEN = {
    **{
        f"sevennet{variant}_{task}": (f"e3nn_{task}", label)
        for variant, label in (("", ""), ("_gated", " + gated layer"))
        for task in ("dielectric_electronic", "dielectric_total", "born_charges")
    },
    **{
        f"sevennet{variant}_square_elastic_tensor": ("e3nn_elastic_tensor", label)
        for variant, label in (("", " + square"), ("_gated", " + gated layer + square"))
    },
}
LABELS = {"cgcnn": "CGCNN", "e3nn": "e3nn"}
FROZEN_LABEL = "SevenNet-0 frozen, {head}{variant}"


def _frozen(partner: str) -> list[tuple[str, str]]:
    """The stored frozen SevenNet runs compared with ``partner``: (run, its label's variant)."""
    runs = _present(tuple(r for r, (p, _) in FROZEN.items() if p == partner))
    return [(run, FROZEN[run][1]) for run in runs]


VOIGT = [f"{a}{b}" for a in range(1, 7) for b in range(a, 7)]
TENSOR_TASKS = ("dielectric_electronic", "dielectric_total", "elastic_tensor", "born_charges")
RUNS_TARGET = {"dielectric_electronic": "e_electronic", "dielectric_total": "e_total"}
# The best Matbench v0.1 leaderboard entries on the scalar moduli (10,987 MP crystals, 5 folds,
# MAE of log10 GPa), from the January 2024 snapshot the Matbench and foundation pages use
MATBENCH = {
    label: LEADERBOARD_JAN_2024[task][0]
    for label, task in (("log10 K_VRH", "matbench_log_kvrh"), ("log10 G_VRH", "matbench_log_gvrh"))
}


# --- collect -------------------------------------------------------------------------------
@functools.cache
def _records(loader: str) -> Records:
    """A tensor data set, read (and frame-checked) once for every run that uses it."""
    return getattr(tensors, loader)(default_data_dir())


def _train_mean(run: Path, task: str) -> list:
    """The mean training tensor of ``run`` (its split.json over the task's data set)."""
    split = json.loads((run / "split.json").read_text())
    train = set(split["train"])
    if task.startswith("dielectric"):
        records, column = _records("dielectric"), RUNS_TARGET[task]
    elif task == "elastic_tensor":
        records, column = _records("elastic_tensor"), "elastic_tensor"
    else:
        records, column = _records("born_charges"), "eps"
    pairs = zip(records.ids, records.targets[column], strict=True)
    values = [np.asarray(v) for i, v in pairs if i in train]
    return np.mean(values, axis=0).tolist()


def _stored_budget() -> dict[str, dict]:
    """The stored ``runs.csv`` rows by run (empty before the first collect)."""
    path = RESULTS / "runs.csv"
    if not path.is_file():
        return {}
    return {row["run"]: row for row in pd.read_csv(path).to_dict("records")}


def _test_ids(runs: Path, name: str) -> list[str]:
    """The test crystals of run ``name``: its split.json in ``runs``, else its stored
    predictions."""
    split = runs / name / "split.json"
    if split.is_file():
        return sorted(str(i) for i in json.loads(split.read_text())["test"])
    return sorted(_read(name)["id"].astype(str))


def collect(runs: Path) -> None:
    """Copy every finished run of ``runs`` into the results; a run that is not in ``runs``
    keeps its stored results (the runs of one sweep need not be repeated for another), and a
    run that is neither stops the script by name."""
    PREDICTIONS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "logs").mkdir(exist_ok=True)
    stored_budget = _stored_budget()
    means_path = RESULTS / "train_means.json"
    stored_means = json.loads(means_path.read_text()) if means_path.is_file() else {}
    budget, means = [], {}
    for name, (task, model, scalar) in RUNS.items():
        run = runs / name
        if not (run / "test_metrics.json").is_file():
            if name in stored_budget and (PREDICTIONS / f"{name}.csv.gz").is_file():
                budget.append(stored_budget[name])
                if name in stored_means:
                    means[name] = stored_means[name]
                continue
            raise SystemExit(f"{name}: no finished run in {run} (test_metrics.json) and none "
                             "stored; the table needs every run of run.sh")  # fmt: skip
        for file in ("test_predictions.csv", "test_predictions_atoms.csv"):
            if (run / file).is_file():
                suffix = "_atoms" if "atoms" in file else ""
                pd.read_csv(run / file).to_csv(
                    PREDICTIONS / f"{name}{suffix}.csv.gz",
                    index=False,
                    compression={"method": "gzip", "mtime": 0},
                )
        frame = read_logs(run)
        if frame is not None:
            frame.to_csv(RESULTS / "logs" / f"{name}.csv", index=False)
        summary = training_summary(run)
        budget.append(
            {
                "run": name,
                "task": task,
                "model": model,
                "epochs": summary["epochs"],
                "best_epoch": summary["best_epoch"],  # of the checkpoint tested
                "train_minutes": round(summary["train_seconds"] / 60, 1),
            }
        )
        for other in (*scalar, *([FROZEN[name][0]] if name in FROZEN else [])):
            if _test_ids(runs, name) != _test_ids(runs, other):
                raise ValueError(f"{name} and {other} have different test crystals")
        if task in TENSOR_TASKS:
            means[name] = _train_mean(run, task)
        shutil.copyfile(run / "test_metrics.json", RESULTS / f"{name}_test_metrics.json")
    pd.DataFrame(budget).to_csv(RESULTS / "runs.csv", index=False)
    means_path.write_text(json.dumps(means))


# --- metrics -------------------------------------------------------------------------------
def _read(name: str, suffix: str = "") -> pd.DataFrame:
    return pd.read_csv(PREDICTIONS / f"{name}{suffix}.csv.gz")


def _tensors(frame: pd.DataFrame, name: str, prefix: str = "") -> np.ndarray:
    return frame[[f"{prefix}{name}_{c}" for c in COMPONENTS]].to_numpy().reshape(-1, 3, 3)


def _voigt(frame: pd.DataFrame, prefix: str = "") -> np.ndarray:
    upper = frame[[f"{prefix}elastic_tensor_{v}" for v in VOIGT]].to_numpy()
    out = np.zeros((len(frame), 6, 6))
    rows, cols = np.triu_indices(6)
    out[:, rows, cols] = upper
    out[:, cols, rows] = upper
    return out


def _frobenius(prediction: np.ndarray, target: np.ndarray) -> float:
    p, t = prediction.reshape(len(target), -1), target.reshape(len(target), -1)
    return float(np.mean(np.linalg.norm(p - t, axis=1) / np.linalg.norm(t, axis=1)))


def _row(task, predictor, budget, mae, frobenius, **scalars) -> dict:
    return {
        "task": task,
        "predictor": predictor,
        "budget": budget,
        "component MAE": mae,
        "rel. Frobenius": frobenius,
        **scalars,
    }


def _budget(name: str) -> str:
    runs = pd.read_csv(RESULTS / "runs.csv").set_index("run")
    r = runs.loc[name]
    return f"{r.epochs} ep ({r.train_minutes:g} min), best {r.best_epoch}"


def _present(runs: tuple[str, ...]) -> list[str]:
    """``runs``, each with stored predictions: a missing one fails the table, never drops
    its rows unseen."""
    missing = [r for r in runs if not (PREDICTIONS / f"{r}.csv.gz").is_file()]
    if missing:
        raise FileNotFoundError(f"{PREDICTIONS}: no stored predictions of {', '.join(missing)}")
    return list(runs)


def _same_targets(run: str, theirs: np.ndarray, ours: np.ndarray) -> None:
    """A run compared row by row with another must hold the same targets in the same order."""
    if not np.allclose(theirs, ours, rtol=1e-6, atol=1e-9):
        raise ValueError(f"{run}: its test targets, aligned by id, differ from the e3nn run's")


def _isotropic(mean: np.ndarray) -> np.ndarray:
    return mean[:, None, None] * np.eye(3)


def dielectric_rows(name: str, column: str, refractive: bool) -> list[dict]:
    task = RUNS[name][0]
    frame = _read(name)
    target = _tensors(frame, column)
    means = json.loads((RESULTS / "train_means.json").read_text())
    true_mean = np.trace(target, axis1=1, axis2=2) / 3
    predictors = {"e3nn TensorHead": (_tensors(frame, column, "predicted_"), _budget(name))}
    for run, variant in _frozen(name):
        frozen = _read(run).set_index("id").loc[frame["id"]]
        _same_targets(run, _tensors(frozen, column), target)
        predictors[FROZEN_LABEL.format(head="TensorHead", variant=variant)] = (
            _tensors(frozen, column, "predicted_"),
            _budget(run),
        )
    for run in _present(RUNS[name][2]):
        scalar = _read(run).set_index("id").loc[frame["id"]]
        predictors[f"{LABELS[RUNS[run][1]]} scalar head x I"] = (
            _isotropic(scalar[f"predicted_{column}_mean"].to_numpy()),
            _budget(run),
        )
    predictors["training-mean tensor"] = (np.broadcast_to(means[name], target.shape), "-")
    predictors["own isotropic part (oracle)"] = (_isotropic(true_mean), "-")
    rows = []
    for label, (prediction, budget) in predictors.items():
        mean = np.trace(prediction, axis1=1, axis2=2) / 3
        scalars = {"mean eps MAE": float(np.abs(mean - true_mean).mean())}
        if refractive:
            n = np.sqrt(np.clip(mean, 0, None))
            scalars["n MAE"] = float(np.abs(n - np.sqrt(true_mean)).mean())
        mae = float(np.abs(prediction - target).mean())
        rows.append(_row(task, label, budget, mae, _frobenius(prediction, target), **scalars))
    return rows


def _isotropic_voigt(bulk: np.ndarray, shear: np.ndarray) -> np.ndarray:
    lame = bulk - 2 * shear / 3
    c = np.zeros((len(bulk), 6, 6))
    c[:, :3, :3] = lame[:, None, None]
    for i in range(3):
        c[:, i, i] = lame + 2 * shear
        c[:, i + 3, i + 3] = shear
    return c


def _own_isotropic_voigt(voigt: np.ndarray) -> np.ndarray:
    moduli = vrh_moduli(voigt)
    return _isotropic_voigt(moduli["K_V"], moduli["G_V"])


def elastic_rows() -> list[dict]:
    name = "e3nn_elastic_tensor"
    frame = _read(name)
    target = _voigt(frame)
    scalars = {
        run: _read(run).set_index("id").loc[frame["id"]] for run in _present(ELASTIC_SCALARS)
    }
    first = next(iter(scalars.values()))
    true_k, true_g = first["K_VRH"].to_numpy(), first["G_VRH"].to_numpy()
    means = json.loads((RESULTS / "train_means.json").read_text())
    mean_voigt = cartesian_to_voigt(np.asarray(means[name]))
    predictors = {"e3nn TensorHead": (_voigt(frame, "predicted_"), _budget(name), None)}
    for run, variant in _frozen(name):
        frozen = _read(run).set_index("id").loc[frame["id"]]
        _same_targets(run, _voigt(frozen), target)
        label = FROZEN_LABEL.format(head="TensorHead", variant=variant)
        predictors[label] = (_voigt(frozen, "predicted_"), _budget(run), None)
    for run, scalar in scalars.items():
        k, g = scalar["predicted_K_VRH"].to_numpy(), scalar["predicted_G_VRH"].to_numpy()
        label = f"{LABELS[RUNS[run][1]]} scalar heads K, G -> isotropic"
        predictors[label] = (_isotropic_voigt(k, g), _budget(run), (k, g))
    predictors["training-mean tensor"] = (np.broadcast_to(mean_voigt, target.shape), "-", None)
    predictors["own isotropic part (oracle)"] = (_own_isotropic_voigt(target), "-", None)
    rows = []
    upper = np.triu_indices(6)
    for label, (prediction, budget, direct) in predictors.items():
        if direct is not None:  # the scalar model's own moduli, not via a tensor
            k, g = direct
        else:
            moduli = vrh_moduli(prediction)
            k, g = moduli["K_VRH"], moduli["G_VRH"]
        positive = (k > 0) & (g > 0) & (true_k > 0) & (true_g > 0)
        rows.append(
            _row(
                "elastic_tensor",
                label,
                budget,
                float(np.abs(prediction - target)[:, upper[0], upper[1]].mean()),
                _frobenius(voigt_to_cartesian(prediction), voigt_to_cartesian(target)),
                **{
                    "K_VRH MAE": float(np.abs(k - true_k).mean()),
                    "G_VRH MAE": float(np.abs(g - true_g).mean()),
                    "log10 K_VRH MAE": float(
                        np.abs(np.log10(k[positive]) - np.log10(true_k[positive])).mean()
                    ),
                    "log10 G_VRH MAE": float(
                        np.abs(np.log10(g[positive]) - np.log10(true_g[positive])).mean()
                    ),
                    "not positive definite": int(
                        sum(np.linalg.eigvalsh(c).min() <= 0 for c in prediction)
                    ),
                },
            )
        )
    return rows


def born_rows() -> list[dict]:
    name = "e3nn_born_charges"
    atoms = _read(name, "_atoms")
    crystals = _read(name)
    becs = _tensors(atoms, "becs")
    eps = _tensors(crystals, "eps")
    means = json.loads((RESULTS / "train_means.json").read_text())
    own = _isotropic(np.trace(becs, axis1=1, axis2=2) / 3)
    #: label -> (run, its per-atom and per-crystal predictions in the e3nn run's row order)
    models = {"e3nn AtomTensorHead": (name, atoms, crystals)}
    for run, variant in _frozen(name):
        frozen_atoms = _read(run, "_atoms").set_index(["id", "atom"])
        frozen_atoms = frozen_atoms.loc[list(zip(atoms["id"], atoms["atom"], strict=True))]
        frozen_crystals = _read(run).set_index("id").loc[crystals["id"]]
        if not np.array_equal(frozen_atoms["Z"].to_numpy(), atoms["Z"].to_numpy()):
            raise ValueError(f"{run}: its atoms are not those of {name} (element order)")
        _same_targets(run, _tensors(frozen_atoms, "becs"), becs)
        _same_targets(run, _tensors(frozen_crystals, "eps"), eps)
        models[FROZEN_LABEL.format(head="AtomTensorHead", variant=variant)] = (
            run,
            frozen_atoms.reset_index(),
            frozen_crystals.reset_index(),
        )
    rows = []
    for label, (run, atom_rows, _) in models.items():
        predicted = _tensors(atom_rows, "becs", "predicted_")
        by_crystal = atom_rows["id"].to_numpy()
        sums = pd.DataFrame(predicted.reshape(len(atom_rows), 9)).groupby(by_crystal).sum()
        rows.append(
            _row(
                "born_charges (Z*, per atom)",
                label,
                _budget(run),
                float(np.abs(predicted - becs).mean()),
                _frobenius(predicted, becs),
                **{"max abs sum over a crystal": float(sums.abs().to_numpy().max())},
            )
        )
    rows += [
        _row(
            "born_charges (Z*, per atom)",
            "zero tensor (the training mean, by the sum rule)",
            "-",
            float(np.abs(becs).mean()),
            1.0,
        ),
        _row(
            "born_charges (Z*, per atom)",
            "own isotropic part (oracle)",
            "-",
            float(np.abs(own - becs).mean()),
            _frobenius(own, becs),
        ),
    ]
    for label, (run, _, crystal_rows) in models.items():
        eps_predicted = _tensors(crystal_rows, "eps", "predicted_")
        rows.append(
            _row(
                "born_charges (eps_inf)",
                label.replace("AtomTensorHead", "TensorHead"),
                _budget(run),
                float(np.abs(eps_predicted - eps).mean()),
                _frobenius(eps_predicted, eps),
            )
        )
    rows.append(
        _row(
            "born_charges (eps_inf)",
            "training-mean tensor",
            "-",
            float(np.abs(np.asarray(means[name]) - eps).mean()),
            _frobenius(np.broadcast_to(means[name], eps.shape), eps),
        )
    )
    return rows


def _format(value) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (int, np.integer)):
        return str(value)
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    return f"{value:.3g}"


def _markdown(rows: list[dict]) -> str:
    columns = list(dict.fromkeys(k for r in rows for k in r))
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_format(r.get(c)) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def table() -> str:
    runs = pd.read_csv(RESULTS / "runs.csv")
    counts = {name: len(_read(name)) for name in _present(tuple(RUNS))}
    parts = [
        "Dielectric tensors (matminer `dielectric_constant`, Petousis 2017; test crystals: "
        f"{counts['e3nn_dielectric_electronic']}):",
        "",
        _markdown(
            dielectric_rows("e3nn_dielectric_electronic", "e_electronic", True)
            + dielectric_rows("e3nn_dielectric_total", "e_total", False)
        ),
        "",
        f"Elastic tensors (matminer `elastic_tensor_2015`, de Jong 2015; GPa; test crystals: "
        f"{counts['e3nn_elastic_tensor']}):",
        "",
        _markdown(elastic_rows()),
        "",
        f"Born effective charges (e) and epsilon-infinity (test crystals: "
        f"{counts['e3nn_born_charges']}, atoms: {len(_read('e3nn_born_charges', '_atoms'))}):",
        "",
        _markdown(born_rows()),
        "",
        "Matbench v0.1 on the scalar moduli (10,987 MP crystals, 5 folds; not our data or "
        "split), best leaderboard entries (January 2024 snapshot): "
        + "; ".join(f"{k} MAE {v[1]} ({v[0]})" for k, v in MATBENCH.items())
        + f". Budget: {int(runs.epochs.sum())} epochs in "
        f"{runs.train_minutes.sum():.0f} min of training on 2 CPU cores, one seed.",
    ]
    return "\n".join(parts)


def plots() -> None:
    from matplotlib.figure import Figure

    frame = _read("e3nn_elastic_tensor")
    scalar = _read(ELASTIC_SCALARS[0]).set_index("id").loc[frame["id"]]
    moduli = vrh_moduli(_voigt(frame, "predicted_"))
    fig = Figure(figsize=(9, 4.5), dpi=120)
    for ax, key in zip(fig.subplots(1, 2), ("K_VRH", "G_VRH"), strict=True):
        true = scalar[key].to_numpy()
        ax.scatter(true, moduli[key], s=8, alpha=0.6, label="e3nn tensor -> VRH")
        ax.scatter(true, scalar[f"predicted_{key}"], s=8, alpha=0.6, label="CGCNN direct")
        high = float(max(true.max(), np.nanmax(moduli[key])))
        ax.plot([0, high], [0, high], color="0.5", lw=1)
        ax.set_xlabel(f"DFT {key} (GPa)")
        ax.set_ylabel(f"predicted {key} (GPa)")
        ax.legend()
    fig.tight_layout()
    fig.savefig(RESULTS / "elastic_parity.png")
    target, predicted = _voigt(frame), _voigt(frame, "predicted_")
    rows, cols = np.triu_indices(6)
    fig = Figure(figsize=(4.5, 4.5), dpi=120)
    ax = fig.subplots()
    ax.scatter(target[:, rows, cols].ravel(), predicted[:, rows, cols].ravel(), s=4, alpha=0.4)
    high = float(target.max())
    ax.plot([target.min(), high], [target.min(), high], color="0.5", lw=1)
    ax.set_xlabel("DFT C_IJ (GPa)")
    ax.set_ylabel("e3nn C_IJ (GPa)")
    fig.tight_layout()
    fig.savefig(RESULTS / "elastic_components.png")


if __name__ == "__main__":
    table_script(__doc__.splitlines()[0], "tensors", collect, table, plots)
