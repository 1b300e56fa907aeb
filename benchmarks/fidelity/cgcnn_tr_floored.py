"""cgcnn2's ``cgcnn-tr`` with its Gaussian bond basis floored: values below ``exp(-60)`` set to
exactly 0, as matgnn's :class:`~matgnn.nn.radial.GaussianBasis` does (a diagnostic for the
equal-budget comparison, issue 25; not the reference trainer).

    python benchmarks/fidelity/cgcnn_tr_floored.py <cgcnn-tr arguments>

``cgcnn2.data.GaussianDistance.expand`` computes ``exp(-(d - mu)^2 / var^2)`` in float64; the
far tails (down to about ``exp(-1600)`` for 12 neighbours within 8 Å and a 0.2 Å step) become
float32 subnormals or zeros when the features are cast to float32, and on some x86 CPUs a matrix
product with subnormal operands runs on a slow path (matgnn's changelog, "No subnormal floats
from the radial basis"). Running the reference trainer once as published and once with only
this change tells how much of an epoch-time difference is that penalty. Everything else is
cgcnn2's own code, called, not copied: this wraps ``expand`` and calls ``cgcnn-tr``'s entry
point.
"""

from __future__ import annotations

import sys

import numpy as np
from cgcnn2 import data
from cgcnn2.cli import cgcnn_tr

#: the floor of matgnn.nn.radial (EXPONENT_FLOOR = -60)
FLOOR = float(np.exp(-60.0))

_expand = data.GaussianDistance.expand


def floored_expand(self: data.GaussianDistance, distances: np.ndarray) -> np.ndarray:
    values = _expand(self, distances)
    return np.where(values < FLOOR, 0.0, values)


if __name__ == "__main__":
    data.GaussianDistance.expand = floored_expand
    sys.exit(cgcnn_tr.main())
