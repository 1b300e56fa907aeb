"""Our vectorised physics helpers against pymatgen's, on the real samples shipped in the package
(issue: the physics helpers re-implement what pymatgen maintains; keep a vectorised version
only where it matters). Each row times the same inputs to the same outputs:

* ``voigt_to_cartesian`` / ``cartesian_to_voigt`` (stiffness, and the compliance ``C^-1`` with
  its factors) on the ``[150, 6, 6]`` tensors of ``elastic_sample.json.gz``, batched and one
  tensor at a time (as the data loader calls it), against ``ElasticTensor.from_voigt``,
  ``ComplianceTensor.from_voigt`` and ``.voigt``, one tensor at a time;
* ``vrh_moduli`` (all six moduli) against ``ElasticTensor.from_voigt`` and its ``k_voigt``,
  ``k_reuss``, ``k_vrh``, ``g_voigt``, ``g_reuss``, ``g_vrh``;
* ``heat_capacity`` at 300 K of the 400 DOS of ``phdos_sample.csv.gz`` (51 bins) against
  ``PhononDos(THz, DOS normalised to 3 modes).cv(300)``, one DOS at a time;
* the frame check's rotations (every symmetry operation of the first 40 elastic crystals applied
  to its tensor): the numpy ``einsum`` that ``elasticity.rotate`` used before against
  ``SymmOp.transform_tensor`` (what ``rotate`` and ``tensor_symmetry.transformed`` call now), with
  the spglib call (``cartesian_rotations``) of the same crystals for scale.

Times are the best of ``--repeat`` runs, per item (tensor, DOS or operation); ``ratio`` is
pymatgen's time over ours, measured in the same process. One thread (``torch.set_num_threads(1)``).

    PYTHONPATH=. .venv/bin/python benchmarks/physics_helpers.py [--repeat 5] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections.abc import Callable
from importlib.metadata import version

import numpy as np
import torch
from pymatgen.core import Structure
from pymatgen.core.elasticity import ComplianceTensor, ElasticTensor
from pymatgen.phonon.dos import PhononDos
from scipy.constants import c as SPEED_OF_LIGHT

from matgnn.analysis.elasticity import cartesian_to_voigt, voigt_to_cartesian, vrh_moduli
from matgnn.analysis.phonons import heat_capacity
from matgnn.analysis.tensor_symmetry import cartesian_rotations, transformed
from matgnn.data.sources.phonon import FREQUENCIES_CM, phonon_dos_sample
from matgnn.data.sources.tensors import sample_rows

MODULI = ("k_voigt", "k_reuss", "k_vrh", "g_voigt", "g_reuss", "g_vrh")


def best(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def old_rotate(tensor: np.ndarray, r: np.ndarray) -> np.ndarray:
    """The einsum ``matgnn.analysis.elasticity.rotate`` used before it called pymatgen."""
    return np.einsum("ia,jb,kc,ld,...abcd->...ijkl", r, r, r, r, tensor)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", help="also write the rows here")
    args = parser.parse_args()
    torch.set_num_threads(1)

    rows = sample_rows("elastic_sample.json.gz")
    c = np.array([r["elastic_tensor"] for r in rows], dtype=float)
    s = np.linalg.inv(c)
    cart_c, cart_s = voigt_to_cartesian(c), voigt_to_cartesian(s, "compliance")
    dos = phonon_dos_sample().targets["phdos"]
    thz = FREQUENCIES_CM * SPEED_OF_LIGHT * 100 / 1e12
    structures = [Structure.from_dict(r["structure"]) for r in rows[:40]]
    operations = [cartesian_rotations(st) for st in structures]
    pairs = [(t, r) for t, ops in zip(cart_c[:40], operations, strict=True) for r in ops]

    def pmg_moduli():
        for v in c:
            tensor = ElasticTensor.from_voigt(v)
            [getattr(tensor, m) for m in MODULI]

    def pmg_cv():
        for g in dos:
            PhononDos(thz, 3 * g / np.trapezoid(g, thz)).cv(300.0)

    # name, items, ours batched (None: no batched form), ours one at a time, pymatgen
    cases = [
        (
            "voigt_to_cartesian stiffness",
            len(c),
            lambda: voigt_to_cartesian(c),
            lambda: [voigt_to_cartesian(v) for v in c],
            lambda: [ElasticTensor.from_voigt(v) for v in c],
        ),
        (
            "voigt_to_cartesian compliance",
            len(s),
            lambda: voigt_to_cartesian(s, "compliance"),
            lambda: [voigt_to_cartesian(v, "compliance") for v in s],
            lambda: [ComplianceTensor.from_voigt(v) for v in s],
        ),
        (
            "cartesian_to_voigt stiffness",
            len(c),
            lambda: cartesian_to_voigt(cart_c),
            lambda: [cartesian_to_voigt(t) for t in cart_c],
            lambda: [ElasticTensor(t).voigt for t in cart_c],
        ),
        (
            "cartesian_to_voigt compliance",
            len(s),
            lambda: cartesian_to_voigt(cart_s, "compliance"),
            lambda: [cartesian_to_voigt(t, "compliance") for t in cart_s],
            lambda: [ComplianceTensor(t).voigt for t in cart_s],
        ),
        (
            "vrh_moduli (6 moduli)",
            len(c),
            lambda: vrh_moduli(c),
            lambda: [vrh_moduli(v) for v in c],
            pmg_moduli,
        ),
        (
            "heat_capacity 300 K (51 bins)",
            len(dos),
            lambda: heat_capacity(FREQUENCIES_CM, dos),
            lambda: [heat_capacity(FREQUENCIES_CM, g) for g in dos],
            pmg_cv,
        ),
        (
            "rotation by own operations (old einsum vs SymmOp.transform_tensor)",
            len(pairs),
            None,
            lambda: [old_rotate(t, r) for t, r in pairs],
            lambda: [transformed(t, r) for t, r in pairs],
        ),
    ]
    results = []
    for name, n, batched, single, theirs in cases:
        row = {"quantity": name, "items": n}
        if batched is not None:
            row["ours_batched_us"] = best(batched, args.repeat) / n * 1e6
        row["ours_one_at_a_time_us"] = best(single, args.repeat) / n * 1e6
        row["pymatgen_us"] = best(theirs, args.repeat) / n * 1e6
        if batched is not None:
            row["ratio_batched"] = row["pymatgen_us"] / row["ours_batched_us"]
        row["ratio_one_at_a_time"] = row["pymatgen_us"] / row["ours_one_at_a_time_us"]
        results.append(row)
    spglib_s = best(lambda: [cartesian_rotations(st) for st in structures], args.repeat)
    scale = {
        "cartesian_rotations_us_per_crystal": spglib_s / len(structures) * 1e6,
        "operations_per_crystal": len(pairs) / len(structures),
    }

    print(
        f"{'quantity':<68} {'items':>5} {'ours batch':>11} {'ours 1-by-1':>11} "
        f"{'pymatgen':>10} {'ratio b':>8} {'ratio 1':>8}   (us per item)"
    )
    for r in results:
        batch = f"{r['ours_batched_us']:11.2f}" if "ours_batched_us" in r else f"{'-':>11}"
        ratio_b = f"{r['ratio_batched']:8.1f}" if "ratio_batched" in r else f"{'-':>8}"
        print(
            f"{r['quantity']:<68} {r['items']:>5} {batch} {r['ours_one_at_a_time_us']:11.2f} "
            f"{r['pymatgen_us']:10.2f} {ratio_b} {r['ratio_one_at_a_time']:8.2f}"
        )
    print(
        f"for scale: cartesian_rotations (spglib) {scale['cartesian_rotations_us_per_crystal']:.0f}"
        f" us per crystal, {scale['operations_per_crystal']:.1f} operations per crystal"
    )
    if args.json:
        meta = {
            "numpy": np.__version__,
            "pymatgen": version("pymatgen"),
            "torch_threads": torch.get_num_threads(),
            "machine": platform.processor() or platform.machine(),
            "repeat": args.repeat,
        }
        with open(args.json, "w") as handle:
            json.dump({"meta": meta, "rows": results, "scale": scale}, handle, indent=2)


if __name__ == "__main__":
    main()
