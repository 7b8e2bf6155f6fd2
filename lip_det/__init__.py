"""lip-det: learnable pooling (LIP, SoftPool, Max-Entropy, Gaussian) for MMDetection 3.x.

``lip_det.ops`` (the operators) and ``lip_det.layers`` (the pooling layers and LIP logit
modules) need torch alone: importing the package imports no OpenMMLab module.

With MMDetection, importing the package (``custom_imports = dict(imports=['lip_det'])`` in a
config, or ``import lip_det`` before or after mmdet) registers the pooling layers and backbones in
mmdet's ``MODELS`` registry, and makes mmengine's loader for local checkpoint files allow-list the
types of MMEngine Runner checkpoints for that one ``torch.load(weights_only=True)`` (nothing is
added process-wide), so that ``--resume`` and testing a trained checkpoint work on torch >= 2.6.
Each happens as soon as the mmdet/mmengine module it extends is loaded (``lip_det.mmdet_plugin``).
"""
from . import layers, ops
from . import mmdet_plugin as _mmdet_plugin
from .version import __version__

_mmdet_plugin.install()

# Submodules for mmdet/mmengine, imported on first attribute access (``lip_det.models``).
_LAZY_SUBMODULES = ('models', 'compat')


def __getattr__(name: str):
    """Import the OpenMMLab-side submodules on first use, so ``import lip_det`` stays torch-only."""
    if name in _LAZY_SUBMODULES:
        import importlib
        return importlib.import_module(f'{__name__}.{name}')
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')


__all__ = ['ops', 'layers', '__version__']
