"""Lightning training: the shared LightningModule and callbacks."""

from matgnn.training.lit_module import CrystalLitModule

__all__ = ["CrystalLitModule"]
