"""The test suite executes every notebook here (nbmake) in fast mode: ``MATGNN_FAST=1`` shrinks
data and epochs. Run ``MATGNN_FAST=0 pytest notebooks`` for the normal mode (the stored
outputs), which takes minutes per notebook on a CPU."""

import os

os.environ.setdefault("MATGNN_FAST", "1")
