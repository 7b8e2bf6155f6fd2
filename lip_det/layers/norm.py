"""A torch-only ``build_norm_layer`` with mmcv's interface, for the pooling layers' estimators.

The layers must import without OpenMMLab, so they cannot call ``mmcv.cnn.build_norm_layer``.
This builds the norm types lip-det's configs use (and mmcv registers under the same names) the
way mmcv does: same classes, ``eps`` default 1e-5, ``requires_grad`` applied to the parameters,
GroupNorm from ``num_groups``. The modules are plain torch classes, so parameter and buffer
names (hence state_dict keys) are those mmcv's builder gives. (mmcv's ``SyncBN`` is mmengine's
subclass of ``nn.SyncBatchNorm`` that changes only the input check on parrots; this gives
``nn.SyncBatchNorm`` itself, identical on torch.) A type outside this table (e.g.
mmcv's ``MMSyncBN`` or a norm registered in mmengine's MODELS) is handed to mmcv when it is
installed, so every config that worked with mmcv's builder still works.
"""
from __future__ import annotations

import inspect
from typing import Dict, Tuple, Type, Union

import torch.nn as nn

__all__ = ['NORM_LAYERS', 'build_norm_layer']

# mmcv 2.x's names for torch's norm classes (mmcv/cnn/bricks/norm.py).
NORM_LAYERS: Dict[str, Type[nn.Module]] = {
    'BN': nn.BatchNorm2d, 'BN1d': nn.BatchNorm1d, 'BN2d': nn.BatchNorm2d,
    'BN3d': nn.BatchNorm3d, 'SyncBN': nn.SyncBatchNorm, 'GN': nn.GroupNorm,
    'LN': nn.LayerNorm, 'IN': nn.InstanceNorm2d, 'IN1d': nn.InstanceNorm1d,
    'IN2d': nn.InstanceNorm2d, 'IN3d': nn.InstanceNorm3d,
}


def _abbr(cls: type) -> str:
    """mmcv's ``infer_abbr``: the layer-name prefix for a norm class ('bn', 'gn', 'ln', 'in')."""
    if hasattr(cls, '_abbr_'):
        return cls._abbr_
    if issubclass(cls, nn.modules.instancenorm._InstanceNorm):
        return 'in'
    if issubclass(cls, nn.modules.batchnorm._BatchNorm):
        return 'bn'
    if issubclass(cls, nn.GroupNorm):
        return 'gn'
    if issubclass(cls, nn.LayerNorm):
        return 'ln'
    name = cls.__name__.lower()
    for word, abbr in (('batch', 'bn'), ('group', 'gn'), ('layer', 'ln'), ('instance', 'in')):
        if word in name:
            return abbr
    return 'norm_layer'


def build_norm_layer(cfg: dict, num_features: int,
                     postfix: Union[int, str] = '') -> Tuple[str, nn.Module]:
    """``(name, layer)`` for ``dict(type=..., requires_grad=True, **layer_args)``, as mmcv's."""
    if not isinstance(cfg, dict):
        raise TypeError('cfg must be a dict')
    if 'type' not in cfg:
        raise KeyError('the cfg dict must contain the key "type"')
    layer_type = cfg['type']
    if isinstance(layer_type, str) and layer_type not in NORM_LAYERS:
        try:
            from mmcv.cnn import build_norm_layer as mmcv_build_norm_layer
        except ImportError:
            raise KeyError(f'unknown norm type {layer_type!r}: without mmcv the norm types are '
                           f'{sorted(NORM_LAYERS)} or a norm class') from None
        return mmcv_build_norm_layer(cfg, num_features, postfix)
    norm_cls = layer_type if inspect.isclass(layer_type) else NORM_LAYERS[layer_type]
    kwargs = dict(cfg)
    del kwargs['type']
    requires_grad = kwargs.pop('requires_grad', True)
    kwargs.setdefault('eps', 1e-5)
    if norm_cls is nn.GroupNorm:
        if 'num_groups' not in kwargs:
            raise KeyError('a GN norm_cfg needs num_groups')
        layer = norm_cls(num_channels=num_features, **kwargs)
    else:
        layer = norm_cls(num_features, **kwargs)
    for param in layer.parameters():
        param.requires_grad = requires_grad
    return _abbr(norm_cls) + str(postfix), layer
