#!/usr/bin/env bash
# Create .venv inside the repository and install matgnn with its pinned stack.
# Usage: bash scripts/install.sh            (run from anywhere)
# torch==2.13.0 (CPU build) goes in first: an unpinned torch would pull GBs of CUDA wheels.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${MATGNN_VENV:-$repo/.venv}"
python="${PYTHON:-python3.11}"
command -v "$python" >/dev/null || python=python3
"$python" -m venv "$venv"
pip=("$venv/bin/python" -m pip install --disable-pip-version-check -q)
"${pip[@]}" --upgrade pip setuptools wheel
"${pip[@]}" torch==2.13.0
"${pip[@]}" -c "$repo/constraints.txt" -e "$repo[dev,foundation]"
# matbench 0.6 hard-pins ancient scipy/scikit-learn; it works next to matminer 0.10.1 without them.
"${pip[@]}" --no-deps matbench==0.6
echo "matgnn installed in $venv"
