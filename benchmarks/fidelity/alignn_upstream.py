"""matgnn's ALIGNN against upstream's ``alignn.models.alignn.ALIGNN``,
``alignn.models.alignn_atomwise.ALIGNNAtomWise`` and its pure-PyTorch rewrite
``alignn.models.alignn_atomwise_pure.ALIGNNAtomWisePure`` with the same weights and the same
graph (issue 25).

    bash benchmarks/setup_reference_codes.sh       # once: alignn 2026.8.11, jarvis-tools, dgl
    python benchmarks/fidelity/alignn_upstream.py --collect run [--update docs/results/fidelity.md]

``--collect run`` measures and stores ``benchmarks/fidelity/results/alignn_upstream.json``; the
docs table is written from that file alone.

* **Models**: upstream ``ALIGNN`` (the published network: BatchNorm, DGL message passing) and
  ``ALIGNNAtomWise`` (``alignn_atomwise``, the network upstream's trainer trains: LayerNorm
  instead, its crystal output ``out``; no forces) and ``ALIGNNAtomWisePure``
  (``alignn_atomwise_pure``: the same network without DGL, its edge-gated ``conv_type``, no
  gradients, so no ZBL term) at the published widths (4 ALIGNN + 4 GCN
  layers, 256 hidden, 64 embedding, 80/40 RBF bins) and matgnn's ``ALIGNN`` (``norm="batch"``
  and ``norm="layer"``), the weights carried over by
  :mod:`matgnn.checkpoints.converters.alignn_upstream` (upstream -> matgnn for random
  weights, matgnn -> upstream for trained ones).
* **Graph**: upstream's own, ``alignn.torch_graph_builder.build_pure_torch_graph(atoms,
  two_body_cutoff=8, max_neighbors=12)`` (the 12 nearest per source atom, line graph of every
  bond pair), fed to upstream as a DGL graph pair (``ALIGNNAtomWisePure``: the builder's
  own batched ``TorchGraph`` pair) and to matgnn as ``edge_index``,
  ``cell_offset`` (upstream's integer shifts, negated: matgnn's edge vectors point the other
  way) and ``lg_edge_index``. matgnn recomputes the bond vectors and angles from positions,
  upstream reads its stored ones.
* **Weights**: random (seeded, with random BatchNorm statistics and random norm affine
  parameters so that no layer is the identity), and trained (matgnn's ALIGNN after
  ``TRAIN_STEPS`` AdamW steps on these crystals' formation energies, then converted to
  upstream).
* **Measured**: the largest absolute difference of the predictions in eval mode and in train
  mode (BatchNorm on batch statistics), and of every parameter's gradient of the summed train-
  mode predictions, relative to the largest gradient of that parameter (floored at 1e-3 of the
  largest gradient of all: the bias of a ``Linear`` right before a train-mode BatchNorm has a
  gradient that is zero in exact arithmetic, and holds rounding noise only).

``dgl==2.1.0`` (the newest DGL wheel on PyPI) ships its ``graphbolt`` data-loading library
only for older torch builds; ALIGNN uses DGL's core message passing alone, so the script
registers an empty ``dgl.graphbolt`` module before importing DGL.
"""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: catalog.py

HERE = Path(__file__).resolve().parent
SITE = HERE.parent / ".reference-site"
RESULTS = HERE / "results" / "alignn_upstream.json"
CRYSTALS = 32
TRAIN_STEPS = 30
HEAD = "formation_energy_per_atom"


def import_upstream():
    """Upstream's ALIGNN, its config, DGL and its graph builder (from the reference site)."""
    if not SITE.is_dir():
        raise FileNotFoundError(f"{SITE}: run bash benchmarks/setup_reference_codes.sh first")
    sys.path.insert(0, str(SITE))
    sys.modules.setdefault("dgl.graphbolt", types.ModuleType("dgl.graphbolt"))
    import alignn
    import dgl
    from alignn.models.alignn import ALIGNN, ALIGNNConfig
    from alignn.models.alignn_atomwise import ALIGNNAtomWise, ALIGNNAtomWiseConfig
    from alignn.models.alignn_atomwise_pure import ALIGNNAtomWisePure, ALIGNNAtomWisePureConfig
    from alignn.torch_graph_builder import batch_torch_graph_pairs, build_pure_torch_graph
    from jarvis.core.atoms import pmg_to_atoms

    return types.SimpleNamespace(
        networks={
            "alignn": (ALIGNN, ALIGNNConfig),
            "alignn_atomwise": (ALIGNNAtomWise, ALIGNNAtomWiseConfig),
            "alignn_atomwise_pure": (ALIGNNAtomWisePure, ALIGNNAtomWisePureConfig),
        },
        dgl=dgl,
        build=build_pure_torch_graph,
        batch_pairs=batch_torch_graph_pairs,
        pmg_to_atoms=pmg_to_atoms,
        versions={"alignn": alignn.__version__, "dgl": dgl.__version__},
    )


def dgl_pair(dgl, g, lg):
    """Upstream's pure builder's ``TorchGraph`` pair ``(g, lg)`` as the DGL pair its DGL
    networks take: atom features and bond vectors on ``g``, bond cosines ``h`` on ``lg``
    (whose nodes are ``g``'s edges), in float32."""
    dg = dgl.graph((g.src, g.dst), num_nodes=g.num_nodes)
    dg.ndata["atom_features"] = g.ndata["atom_features"].float()
    dg.edata["r"] = g.edata["r"].float()
    dlg = dgl.graph((lg.src, lg.dst), num_nodes=g.src.numel())
    dlg.edata["h"] = lg.edata["h"].float()
    return dg, dlg


def shared_graphs(up, structures, model):
    """(upstream's inputs per network: DGL ``(g, lg, lattice)``, or for
    ``alignn_atomwise_pure`` its batched ``TorchGraph`` pair and lattices; matgnn's batch) of
    upstream's graphs of ``structures``."""
    import torch
    from torch_geometric.data import Batch

    from matgnn.graphs import build_graph

    dgl = up.dgl
    gs, lgs, ours, pairs = [], [], [], []
    for structure in structures:
        g, lg = up.build(up.pmg_to_atoms(structure), two_body_cutoff=8.0, max_neighbors=12)
        pairs.append((g, lg))
        graph = build_graph(structure, model.graph_config())  # atoms, cell, fingerprint
        graph.edge_index = torch.stack([g.src, g.dst]).long()
        graph.cell_offset = -g.edata["images"].round().long()
        graph.edge_type = torch.zeros(g.src.numel(), dtype=torch.long)
        graph.lg_edge_index = torch.stack([lg.src, lg.dst]).long()
        ours.append(graph)
        dg, dlg = dgl_pair(dgl, g, lg)
        gs.append(dg)
        lgs.append(dlg)
    lattice = torch.stack([torch.tensor(s.lattice.matrix, dtype=torch.float32) for s in structures])
    inputs = {"dgl": (dgl.batch(gs), dgl.batch(lgs), lattice),
              "torch": (*up.batch_pairs(pairs), lattice)}  # fmt: skip
    return inputs, Batch.from_data_list(ours)


def randomised(module, seed: int) -> None:
    """Random BatchNorm statistics and norm affine parameters (so no normalisation is
    trivial)."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    for layer in module.modules():
        if isinstance(layer, torch.nn.BatchNorm1d):
            n = layer.num_features
            layer.running_mean.copy_(0.3 * torch.randn(n, generator=generator))
            layer.running_var.copy_(0.5 + torch.rand(n, generator=generator))
        if isinstance(layer, torch.nn.BatchNorm1d | torch.nn.LayerNorm):
            n = layer.weight.numel()
            layer.weight.data.copy_(0.8 + 0.4 * torch.rand(n, generator=generator))
            layer.bias.data.copy_(0.1 * torch.randn(n, generator=generator))


def crystal_output(upstream, inputs):
    """Upstream's per-crystal prediction: ``ALIGNN`` returns it, ``ALIGNNAtomWise`` and
    ``ALIGNNAtomWisePure`` a dict whose ``out`` it is."""
    out = upstream(inputs)
    return out["out"] if isinstance(out, dict) else out


def compare(up, upstream, ours, upstream_inputs, batch) -> dict[str, float]:
    """Largest differences of predictions (eval, train mode) and of parameter gradients."""
    from matgnn.checkpoints.converters.alignn_upstream import to_matgnn

    result = {}
    for mode in ("eval", "train"):
        upstream.train(mode == "train")
        ours.train(mode == "train")
        upstream.zero_grad()
        ours.zero_grad()
        theirs = crystal_output(upstream, upstream_inputs).reshape(-1)
        mine = ours(batch)[HEAD].reshape(-1)
        result[f"{mode}_max_abs_difference"] = float((theirs - mine).detach().abs().max())
        result[f"{mode}_max_abs_prediction"] = float(theirs.detach().abs().max())
        if mode == "train":
            theirs.sum().backward()
            mine.sum().backward()
            grads = to_matgnn(
                {k: p.grad for k, p in upstream.named_parameters() if p.grad is not None}, HEAD
            )
            mine_grads = dict(ours.named_parameters())
            sizes = {k: (float((g - mine_grads[k].grad).abs().max()), float(g.abs().max()))
                     for k, g in grads.items()}  # fmt: skip
            largest = max(size for _, size in sizes.values())
            # per tensor, relative to its largest gradient; a tensor whose gradient is zero in
            # exact arithmetic (a bias right before a train-mode BatchNorm) holds rounding
            # noise only, so the scale has a floor of 1e-3 of the largest gradient of all
            relative = {k: d / max(size, 1e-3 * largest) for k, (d, size) in sizes.items()}
            worst = sorted(relative, key=relative.get, reverse=True)[:3]
            result["gradient_max_relative_difference"] = relative[worst[0]]
            result["gradient_max_difference_over_largest_gradient"] = (
                max(d for d, _ in sizes.values()) / largest
            )
            result["gradient_worst_tensors"] = {k: relative[k] for k in worst}
            result["gradients_compared"] = len(grads)
    return result


#: upstream's settings at the published widths, per network (``alignn_atomwise``: its crystal
#: output only, so no gradient terms; the CGCNN atom table, as ``ALIGNN``'s default)
PUBLISHED = {
    "alignn_layers": 4,
    "gcn_layers": 4,
    "hidden_features": 256,
    "embedding_features": 64,
    "edge_input_features": 80,
    "triplet_input_features": 40,
}
NETWORK_SETTINGS = {
    "alignn": {"name": "alignn", **PUBLISHED},
    "alignn_atomwise": {
        "name": "alignn_atomwise",
        **PUBLISHED,
        "atom_input_features": 92,
        "calculate_gradient": False,
        "gradwise_weight": 0.0,
    },
    "alignn_atomwise_pure": {
        "name": "alignn_atomwise_pure",
        **PUBLISHED,
        "atom_input_features": 92,
        "calculate_gradient": False,
        "gradwise_weight": 0.0,
    },
}
#: the graph each upstream network reads
INPUTS = {"alignn": "dgl", "alignn_atomwise": "dgl", "alignn_atomwise_pure": "torch"}


def compare_network(up, network: str, structures, energies) -> dict:
    """Random weights upstream -> matgnn and trained weights matgnn -> upstream, one network."""
    import torch

    from matgnn.checkpoints.converters.alignn_upstream import from_matgnn, model_config, to_matgnn
    from matgnn.models.assembly import build
    from matgnn.outputs import ScalarOutput

    network_class, config_class = up.networks[network]
    settings = NETWORK_SETTINGS[network]
    output = ScalarOutput(HEAD, target=HEAD, units="eV/atom").to_config()
    config = model_config(settings, output)

    torch.manual_seed(0)
    upstream = network_class(config_class(**settings))
    with torch.no_grad():
        randomised(upstream, seed=1)
    ours = build(config)
    state = ours.state_dict()
    state.update(to_matgnn(upstream.state_dict(), HEAD))
    ours.load_state_dict(state)
    inputs, batch = shared_graphs(up, structures, ours)
    upstream_inputs = inputs[INPUTS[network]]
    cases = {
        "random weights, upstream -> matgnn": compare(up, upstream, ours, upstream_inputs, batch)
    }

    # trained: matgnn's ALIGNN trained a little, converted the other way
    torch.manual_seed(2)
    trained = build(config)
    trained.train()
    optimizer = torch.optim.AdamW(trained.parameters(), lr=1e-3)
    losses = []
    for _ in range(TRAIN_STEPS):
        optimizer.zero_grad()
        loss = torch.nn.functional.l1_loss(trained(batch)[HEAD], energies)
        loss.backward()
        optimizer.step()
        losses.append(float(loss))
    converted = network_class(config_class(**settings))
    converted.load_state_dict(from_matgnn(trained.state_dict(), config, network))
    case = compare(up, converted, trained, upstream_inputs, batch)
    case["training_l1_first_last"] = [losses[0], losses[-1]]
    cases["trained weights, matgnn -> upstream"] = case
    return {
        "matgnn_norm": config["backbone"]["norm"],
        "edges": int(batch.edge_index.size(1)),
        "angles": int(batch.lg_edge_index.size(1)),
        "parameters_upstream": sum(p.numel() for p in upstream.parameters()),
        "parameters_matgnn": sum(p.numel() for p in ours.parameters()),
        # upstream's names and shapes at the published widths: CI checks the converter's
        # output against them without installing upstream
        "upstream_state_shapes": {k: list(v.shape) for k, v in upstream.state_dict().items()},
        "cases": cases,
    }


def collect(_: Path) -> None:
    import torch

    from matgnn.data.samples import mp_sample_frame, mp_sample_structures

    torch.set_num_threads(2)
    up = import_upstream()
    _, structures = mp_sample_structures(CRYSTALS)
    energies = torch.tensor(
        mp_sample_frame()["formation_energy_per_atom"].to_numpy()[:CRYSTALS], dtype=torch.float32
    )
    networks = {name: compare_network(up, name, structures, energies) for name in up.networks}
    record = {
        "crystals": CRYSTALS,
        "versions": {**up.versions, "torch": torch.__version__},
        "dtype": "float32",
        "networks": networks,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(record, indent=2) + "\n")


def read() -> dict:
    if not RESULTS.is_file():
        raise FileNotFoundError(f"{RESULTS}: no stored run; run this script with --collect run")
    return json.loads(RESULTS.read_text())


def table() -> str:
    record = read()
    networks = record["networks"]
    first = next(iter(networks.values()))
    count = next(iter(first["cases"].values()))["gradients_compared"]
    lines = [
        "| upstream network (matgnn `norm`) | weights | eval: largest difference (largest "
        "prediction) | train mode: largest difference | gradients: largest difference / "
        "largest gradient | worst tensor: its largest difference / its largest gradient |",
        "|---|---|---:|---:|---:|---|",
    ]
    for network, measured in networks.items():
        for name, case in measured["cases"].items():
            if case["gradients_compared"] != count:
                raise ValueError(f"{RESULTS}: {network} compared {case['gradients_compared']} "
                                 f"gradients, {count} elsewhere")  # fmt: skip
            tensor, relative = next(iter(case["gradient_worst_tensors"].items()))
            lines.append(
                f"| `{network}` (`{measured['matgnn_norm']}`) | {name} "
                f"| {case['eval_max_abs_difference']:.1e} "
                f"({case['eval_max_abs_prediction']:.2f}) eV/atom "
                f"| {case['train_max_abs_difference']:.1e} eV/atom "
                f"| {case['gradient_max_difference_over_largest_gradient']:.1e} "
                f"| {relative:.1e} (`{tensor}`) |"
            )
    versions = ", ".join(f"{k} {v}" for k, v in record["versions"].items())
    parameters = "; ".join(
        f"`{network}` upstream {m['parameters_upstream']:,}, matgnn {m['parameters_matgnn']:,}"
        for network, m in networks.items()
    )
    lines.append("")
    lines.append(
        f"{record['crystals']} MP crystals of the shipped sample, upstream's graph "
        f"({first['edges']:,} edges, {first['angles']:,} angles), {record['dtype']}, "
        f"{count} gradient tensors per case; parameters: {parameters} ({versions})."
    )
    return "\n".join(lines)


def main() -> None:
    from catalog import table_script

    table_script(__doc__.split("\n\n")[0], "fidelity-alignn", collect, table)


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
