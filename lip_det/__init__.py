"""lip-det: learnable pooling (LIP, SoftPool, Max-Entropy, Gaussian) for MMDetection 3.x.

Importing the package (``custom_imports = dict(imports=['lip_det'])`` in a config) registers
the pooling layers and backbones in mmdet's ``MODELS`` registry, and makes mmengine's loader
for local checkpoint files allow-list the types of MMEngine Runner checkpoints for that one
``torch.load(weights_only=True)`` (nothing is added process-wide), so that ``--resume`` and
testing a trained checkpoint work on torch >= 2.6.
"""
from . import compat as _compat
from . import layers, ops
from .version import __version__

_compat.install_checkpoint_loader()

from . import models  # noqa: E402  (registers the backbones)

__all__ = ['ops', 'layers', 'models', '__version__']
