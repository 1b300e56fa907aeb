#!/usr/bin/env bash
# Install the reference codes that benchmarks/graph_build.py, benchmarks/alignn_upstream.py and
# benchmarks/fidelity/alignn_upstream.py compare against (upstream alignn, jarvis-tools, matgl 4
# with its PyG backend, and dgl 2.1.0 for upstream's original DGL ALIGNN)
# into benchmarks/.reference-site, layered over the matgnn venv with --target.
# They never enter matgnn's own environment. Packages they need that the venv already has
# (numpy, scipy, scikit-learn, pandas, ase, spglib, pydantic, ...) are reused.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
python="${PYTHON:-$here/../.venv/bin/python}"
"$python" -m pip install -q --disable-pip-version-check --no-deps --upgrade \
  --target "$here/.reference-site" \
  alignn==2026.8.11 jarvis-tools==2026.6.12 toolz xmltodict lmdb pydantic-settings python-dotenv \
  matgl==4.1.2 torchdata huggingface_hub httpcore2 httpx2 truststore hf_xet dgl==2.1.0
echo "reference codes installed in $here/.reference-site"
