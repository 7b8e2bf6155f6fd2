"""AdaPoolResNet: mmdet's ResNet whose stem max-pool is adaPool 2x2/s2 (the placement of the
adaPool authors' in-network test), with one learned β per stem channel (``AdaPool2d``).

Every ResNet argument works as in mmdet. The state dict is mmdet's/torchvision's ResNet plus
``maxpool.beta_logit`` (C values), so ImageNet ResNet weights load as they are and β starts at
``init_beta``; ``frozen_stages >= 0`` freezes β with the stem.
"""
from __future__ import annotations

from typing import List

import torch.nn as nn
from mmdet.registry import MODELS

from lip_det.layers import AdaPool2d

from ._resnet_base import PooledResNetBase

__all__ = ['AdaPoolResNet']


@MODELS.register_module()
class AdaPoolResNet(PooledResNetBase):
    """mmdet ResNet with an adaPool 2x2/s2 stem pooling (β per channel, initialised to init_beta)."""

    def __init__(self, depth: int, init_beta: float = 0.5, **kwargs) -> None:
        self.init_beta = init_beta  # read by _make_stem_layer, which ResNet.__init__ calls
        super().__init__(depth, **kwargs)

    def _make_stem_layer(self, in_channels: int, stem_channels: int) -> None:
        super()._make_stem_layer(in_channels, stem_channels)
        self.maxpool = AdaPool2d(stem_channels, kernel_size=2, stride=2, init_beta=self.init_beta)

    def stem_pool_modules(self) -> List[nn.Module]:
        return [self.maxpool]
