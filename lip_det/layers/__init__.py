"""Pooling layers (registered in mmdet's MODELS) and the factory that builds them."""
from .builder import build_pooling_layer
from .pooling import (POOLING_LAYERS, GaussianPool2d, LIPPool2d, MaxEntPool2d, SoftGate, SoftPool1d,
                      SoftPool2d, SoftPool3d, register_pooling)

__all__ = [
    'SoftGate', 'LIPPool2d', 'SoftPool1d', 'SoftPool2d', 'SoftPool3d', 'MaxEntPool2d',
    'GaussianPool2d', 'POOLING_LAYERS', 'register_pooling', 'build_pooling_layer'
]
