"""The pooling factory: one entry point that builds any registered pooling layer from a config."""
from __future__ import annotations

import copy

import torch.nn as nn

from .pooling import POOLING_LAYERS


def build_pooling_layer(cfg: dict, **default_args) -> nn.Module:
    """Build a pooling layer from ``dict(type=<registered pooling type>, ...)``."""
    if not isinstance(cfg, dict):
        raise TypeError(f'cfg must be a dict with a "type" key, got {type(cfg).__name__}')
    if 'type' not in cfg:
        raise ValueError(f'cfg must have a "type" key, one of {sorted(POOLING_LAYERS)}; got {cfg!r}')
    cfg = copy.deepcopy(dict(cfg))
    layer_type = cfg.pop('type')
    if isinstance(layer_type, type) and issubclass(layer_type, nn.Module):
        layer_type = layer_type.__name__
    if layer_type not in POOLING_LAYERS:
        raise KeyError(f'unknown pooling type {layer_type!r}; registered pooling types: '
                       f'{sorted(POOLING_LAYERS)}')
    # mmengine's registry-scope key, which its MODELS.build (this factory's former backend)
    # accepted: the type is resolved from the table, so a scope has nothing to select.
    cfg.pop('_scope_', None)
    for key, value in default_args.items():
        cfg.setdefault(key, value)
    return POOLING_LAYERS[layer_type](**cfg)
