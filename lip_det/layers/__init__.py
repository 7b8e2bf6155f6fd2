"""Pooling layers, LIP logit modules and the pooling factory, on torch alone.

``lip_det.mmdet_plugin`` registers the pooling layers in mmdet's MODELS where mmdet is used.
"""
from .ada_pool import AdaPool1d, AdaPool2d, AdaPool3d
from .builder import build_pooling_layer
from .lip_logits import DenseBottleneckLIP, ProjectionLIP, SimplifiedLIP
from .pooling import (POOLING_LAYERS, GaussianPool2d, LIPPool2d, MaxEntPool2d, SoftGate, SoftPool1d,
                      SoftPool2d, SoftPool3d, register_pooling)

__all__ = [
    'SoftGate', 'LIPPool2d', 'SoftPool1d', 'SoftPool2d', 'SoftPool3d', 'MaxEntPool2d',
    'GaussianPool2d', 'AdaPool1d', 'AdaPool2d', 'AdaPool3d', 'SimplifiedLIP', 'ProjectionLIP',
    'DenseBottleneckLIP', 'POOLING_LAYERS', 'register_pooling',
    'build_pooling_layer'
]
