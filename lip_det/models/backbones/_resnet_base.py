"""What every pooled ResNet here shares on top of mmdet's ``ResNet``.

mmdet's ``ResNet.__init__`` decides the zero-init of the residual branch with ``block is
Bottleneck``; our backbones keep mmdet's own block classes in ``arch_settings`` so that this test
(and ``self.block.expansion``) still works, and swap in their block subclasses in
``make_res_layer``. They also freeze the learnable stem pooling with the stem.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Type

import torch.nn as nn
from mmdet.models.backbones.resnet import BasicBlock, Bottleneck, ResNet
from mmengine.model import Sequential

__all__ = ['PooledResNetBase', 'check_choice', 'check_flags']


def check_choice(name: str, value: object, choices: Sequence) -> None:
    """Raise ValueError naming ``name`` unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise ValueError(f'{name} must be one of {tuple(choices)}, got {value!r}')


def check_flags(name: str, value: object, length: int) -> tuple:
    """A tuple of ``length`` bools, else ValueError naming ``name``."""
    if not isinstance(value, (tuple, list)) or len(value) != length or \
            not all(isinstance(v, bool) for v in value):
        raise ValueError(f'{name} must be a tuple of {length} bools (one per stage), got {value!r}')
    return tuple(value)


class PooledResNetBase(ResNet):
    """mmdet ``ResNet`` whose blocks and stem pooling a subclass replaces.

    Subclasses set ``block_map`` (mmdet block class -> our subclass; blocks not in it are
    mmdet's) and implement ``stem_pool_modules`` and ``build_stage``.
    """

    block_map: Dict[Type[nn.Module], Type[nn.Module]] = {}

    def stem_pool_modules(self) -> List[nn.Module]:
        """The learnable stem pooling layers, frozen together with the stem."""
        return []

    def build_stage(self, stage: int, block: Type[nn.Module], inplanes: int, planes: int,
                    num_blocks: int, stride: int, dilation: int, style: str, avg_down: bool,
                    with_cp: bool, conv_cfg: Optional[dict], norm_cfg: dict,
                    dcn: Optional[dict], plugins: Optional[list],
                    init_cfg: Optional[dict]) -> Sequential:
        """Build one stage (``layer{stage + 1}``) from our block class."""
        raise NotImplementedError

    def make_res_layer(self, **kwargs) -> Sequential:
        """Build a stage with this backbone's block class instead of mmdet's."""
        # ResNet.__init__ appends to res_layers right after each call: its length is the index.
        if kwargs['block'] not in self.block_map:
            return super().make_res_layer(**kwargs)
        stage = len(self.res_layers)
        kwargs['block'] = self.block_map[kwargs['block']]
        return self.build_stage(stage, **kwargs)

    def train(self, mode: bool = True) -> 'PooledResNetBase':
        """mmdet's ``train`` (frozen stages, ``norm_eval``), returning self as nn.Module does."""
        super().train(mode)
        return self

    def _freeze_stages(self) -> None:
        super()._freeze_stages()
        if self.frozen_stages >= 0:
            for module in self.stem_pool_modules():
                module.eval()
                for param in module.parameters():
                    param.requires_grad = False
