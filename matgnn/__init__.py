"""matgnn: graph neural networks for periodic crystals."""

__version__ = "0.1.0"
