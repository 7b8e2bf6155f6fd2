"""ResNets with SoftPool, Max-Entropy + GFGP and iSP-Gaussian pooling, as mmdet backbones.

- ``SoftPoolResNet`` (Stergiou et al., ICCV 2021): only the stem max-pool becomes SoftPool 2x2/s2.
  No new parameters: the state dict is torchvision's ResNet minus ``fc.*``.
- ``MaxEntResNet`` (Kobayashi, ICCV 2019) and ``GaussianResNet`` (Kobayashi, NeurIPS 2019) follow
  the references' placement: the stem conv has stride 1 and is followed by ``pool1`` (2x2/s2) and
  ``pool`` (3x3/s2/p1, in place of the max-pool); in the first block of every stride-2 stage the
  strided conv (Bottleneck conv2, BasicBlock conv1) and the shortcut's 1x1 conv get stride 1 and
  ``layer{i}.0.pooling`` (k=s=2 over ``planes * expansion`` channels) runs after the residual add
  and ReLU. Keys are the references' minus ``fc.*`` (Max-Ent R50: 388 keys, Gaussian R50: 423).

Output sizes: the 2x2/s2 poolings give ``floor(h/2)`` (ResNet's strided convs: ``ceil(h/2)``), and
at least 1: on a map with a 1-pixel side the window is cut to the map (``fit_window``), so every
input mmdet's ResNet accepts, down to 1x1, runs; a 1x1 map pools to its pixel (Gaussian pooling:
``x + η·1e-3``, its σ floor), and GFGP's global pool of it is the pixel itself.

The GFGP estimators use BatchNorm on (N, C, 1, 1) global features. With ``norm_cfg`` BN or SyncBN
they use the same config; with GN (whose groups would hold a single value of a 1x1 map) they use
BN unless ``pool_norm_cfg`` says otherwise.
"""
from __future__ import annotations

from typing import List, Optional

import torch
import torch.nn as nn
from mmcv.cnn import build_conv_layer, build_norm_layer
from mmdet.models.backbones.resnet import BasicBlock, Bottleneck
from mmdet.registry import MODELS
from mmengine.model import Sequential

from lip_det.layers import SoftPool2d, build_pooling_layer

from ._resnet_base import PooledResNetBase, check_choice

__all__ = ['SoftPoolResNet', 'MaxEntResNet', 'GaussianResNet', 'PooledBottleneck',
           'PooledBasicBlock']


@MODELS.register_module()
class SoftPoolResNet(PooledResNetBase):
    """mmdet ResNet whose stem max-pool is SoftPool 2x2/s2 (torchvision-compatible keys)."""

    def _make_stem_layer(self, in_channels: int, stem_channels: int) -> None:
        super()._make_stem_layer(in_channels, stem_channels)
        self.maxpool = SoftPool2d(kernel_size=2, stride=2)


class _PostPoolMixin:
    """Block whose striding is a learnable pooling applied after the residual add and ReLU."""

    def _setup_pooling(self, pool_cfg: Optional[dict], channels: int, stride: int) -> None:
        self.stride = stride
        self.pooling = None
        if pool_cfg is not None:
            self.pooling = build_pooling_layer(pool_cfg, channels=channels, kernel_size=stride,
                                               stride=stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The mmdet block, then the pooling."""
        out = super().forward(x)
        return out if self.pooling is None else self.pooling(out)


class PooledBottleneck(_PostPoolMixin, Bottleneck):
    """mmdet Bottleneck with stride-1 convs and post-add pooling when ``pool_cfg`` is given."""

    def __init__(self, inplanes: int, planes: int, stride: int = 1, *,
                 pool_cfg: Optional[dict] = None, **kwargs) -> None:
        pool_cfg = pool_cfg if stride > 1 else None
        super().__init__(inplanes, planes, stride=1 if pool_cfg else stride, **kwargs)
        self._setup_pooling(pool_cfg, planes * self.expansion, stride)


class PooledBasicBlock(_PostPoolMixin, BasicBlock):
    """mmdet BasicBlock with a stride-1 conv1 and post-add pooling when ``pool_cfg`` is given."""

    def __init__(self, inplanes: int, planes: int, stride: int = 1, *,
                 pool_cfg: Optional[dict] = None, **kwargs) -> None:
        pool_cfg = pool_cfg if stride > 1 else None
        super().__init__(inplanes, planes, stride=1 if pool_cfg else stride, **kwargs)
        self._setup_pooling(pool_cfg, planes * self.expansion, stride)


def _gfgp_norm_cfg(norm_cfg: dict, pool_norm_cfg: Optional[dict]) -> dict:
    if pool_norm_cfg is not None:
        return pool_norm_cfg
    if norm_cfg.get('type') in ('BN', 'BN2d', 'SyncBN'):
        return dict(norm_cfg)
    return dict(type='BN', requires_grad=norm_cfg.get('requires_grad', True))


class GFGPResNetBase(PooledResNetBase):
    """Shared body of MaxEntResNet and GaussianResNet; subclasses give the pooling config."""

    block_map = {BasicBlock: PooledBasicBlock, Bottleneck: PooledBottleneck}

    def __init__(self, depth: int, pool_cfg: dict, pool_norm_cfg: Optional[dict] = None,
                 deep_stem: bool = False, avg_down: bool = False, style: str = 'pytorch',
                 norm_cfg: dict = dict(type='BN', requires_grad=True), **kwargs) -> None:
        if deep_stem:
            raise ValueError(f'deep_stem must be False for {type(self).__name__}: the reference '
                             'stem is a stride-1 7x7 conv followed by two learned poolings')
        if avg_down:
            raise ValueError(f'avg_down must be False for {type(self).__name__}: the learned '
                             'pooling does the downsampling')
        check_choice('style', style, ('pytorch',))
        if pool_norm_cfg is not None and not isinstance(pool_norm_cfg, dict):
            raise TypeError(f'pool_norm_cfg must be a dict or None, got {pool_norm_cfg!r}')
        # Read by _make_stem_layer / make_res_layer, which ResNet.__init__ calls.
        self.pool_cfg = dict(pool_cfg, norm_cfg=_gfgp_norm_cfg(norm_cfg, pool_norm_cfg))
        super().__init__(depth, deep_stem=deep_stem, avg_down=avg_down, style=style,
                         norm_cfg=norm_cfg, **kwargs)

    def _make_stem_layer(self, in_channels: int, stem_channels: int) -> None:
        self.conv1 = build_conv_layer(self.conv_cfg, in_channels, stem_channels, kernel_size=7,
                                      stride=1, padding=3, bias=False)
        self.norm1_name, norm1 = build_norm_layer(self.norm_cfg, stem_channels, postfix=1)
        self.add_module(self.norm1_name, norm1)
        self.relu = nn.ReLU(inplace=True)
        self.pool1 = build_pooling_layer(self.pool_cfg, channels=stem_channels, kernel_size=2,
                                         stride=2)
        self.pool = build_pooling_layer(self.pool_cfg, channels=stem_channels, kernel_size=3,
                                        stride=2, padding=1)

    def stem_pool_modules(self) -> List[nn.Module]:
        return [self.pool1, self.pool]

    def build_stage(self, stage, block, inplanes, planes, num_blocks, stride, dilation, style,
                    avg_down, with_cp, conv_cfg, norm_cfg, dcn, plugins, init_cfg) -> Sequential:
        out_planes = planes * block.expansion
        pooled = stride > 1
        downsample = None
        if stride != 1 or inplanes != out_planes:
            downsample = nn.Sequential(
                build_conv_layer(conv_cfg, inplanes, out_planes, kernel_size=1,
                                 stride=1 if pooled else stride, bias=False),
                build_norm_layer(norm_cfg, out_planes)[1])
        common = dict(dilation=dilation, style=style, with_cp=with_cp, conv_cfg=conv_cfg,
                      norm_cfg=norm_cfg, dcn=dcn, plugins=plugins, init_cfg=init_cfg)
        blocks = [block(inplanes, planes, stride, downsample=downsample,
                        pool_cfg=self.pool_cfg if pooled else None, **common)]
        for _ in range(1, num_blocks):
            blocks.append(block(out_planes, planes, 1, **common))
        return Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> tuple:
        """Stride-1 stem, two learned poolings, then the stages."""
        x = self.relu(self.norm1(self.conv1(x)))
        x = self.pool(self.pool1(x))
        outs = []
        for i, layer_name in enumerate(self.res_layers):
            x = getattr(self, layer_name)(x)
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)


@MODELS.register_module()
class MaxEntResNet(GFGPResNetBase):
    """ResNet with Max-Entropy pooling whose λ comes from GFGP (reference placement).

    Args (besides mmdet ``ResNet``'s): ``activation`` of λ (``'sigmoid'`` as in the reference, or
    ``'softplus'``); ``pool_norm_cfg`` for the GFGP BatchNorms.
    """

    def __init__(self, depth: int, activation: str = 'sigmoid',
                 pool_norm_cfg: Optional[dict] = None, **kwargs) -> None:
        check_choice('activation', activation, ('sigmoid', 'softplus'))
        super().__init__(depth, dict(type='MaxEntPool2d', activation=activation),
                         pool_norm_cfg=pool_norm_cfg, **kwargs)


@MODELS.register_module()
class GaussianResNet(GFGPResNetBase):
    """ResNet with iSP-Gaussian pooling (reference placement).

    Args (besides mmdet ``ResNet``'s): ``stochasticity`` ``'HWCN'`` (noise per output location),
    ``'CN'`` (per sample and channel) or ``None`` (deterministic); eval mode is always
    deterministic. ``pool_norm_cfg`` for the GFGP BatchNorms.
    """

    def __init__(self, depth: int, stochasticity: Optional[str] = 'HWCN',
                 pool_norm_cfg: Optional[dict] = None, **kwargs) -> None:
        check_choice('stochasticity', stochasticity, ('HWCN', 'CN', None))
        super().__init__(depth, dict(type='GaussianPool2d', stochasticity=stochasticity),
                         pool_norm_cfg=pool_norm_cfg, **kwargs)
