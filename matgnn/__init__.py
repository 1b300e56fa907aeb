"""matgnn: graph neural networks for periodic crystals."""

__version__ = "0.1.0"


def load_model(path):
    """Rebuild a trained :class:`~matgnn.models.CrystalModel` from a checkpoint (see
    :func:`matgnn.training.load_model`); ``load_model(p).predict(structures)`` predicts."""
    from matgnn.training.checkpoint import load_model as _load

    return _load(path)
