"""Building from mmdet's registry outside a Runner."""
from __future__ import annotations

from typing import Any, Mapping

import torch.nn as nn
from mmdet.registry import MODELS
from mmengine.registry import DefaultScope


def build_mmdet_model(cfg: Mapping[str, Any]) -> nn.Module:
    """Build ``cfg`` from mmdet's MODELS, whatever default scope an earlier Runner left current.

    A Runner (or ``init_default_scope``) leaves its scope as the current ``DefaultScope``; with
    'mmengine' current, ``MODELS.build`` looks types up in mmengine's root registry, where
    neither mmdet's nor lip_det's modules are, so we pin the scope to 'mmdet' while building.
    """
    with DefaultScope.overwrite_default_scope('mmdet'):
        return MODELS.build(dict(cfg))
