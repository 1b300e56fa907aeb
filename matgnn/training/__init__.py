"""Lightning training: the shared LightningModule, plots and checkpoint loading."""

from matgnn.training.checkpoint import load_model
from matgnn.training.lit_module import CrystalLitModule

__all__ = ["CrystalLitModule", "load_model"]
