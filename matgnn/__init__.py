"""matgnn: graph neural networks for periodic crystals.

``import matgnn`` is light: it imports neither Lightning nor matplotlib's pyplot, and
:func:`load_model` needs neither.
"""

__version__ = "0.1.0"


def load_model(path):
    """Rebuild a trained :class:`~matgnn.models.CrystalModel` from a checkpoint file alone
    (:func:`matgnn.checkpoints.files.load_model`); ``load_model(p).predict(structures)``
    predicts."""
    from matgnn.checkpoints.files import load_model as _load

    return _load(path)
