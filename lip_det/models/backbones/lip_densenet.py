"""LIP-DenseNet (121/161/169/201) as an mmdet backbone with multi-scale outputs for FPN.

Architecture of the reference LIP-DenseNet-121: torchvision's DenseNet-BC whose stem max-pool
``features.pool0`` is ``SimplifiedLIP`` (logit ``gate(IN(conv3x3))``, keys ``logit.conv1``,
``logit.bn1``) and whose transitions pool with an unshared ``DenseBottleneckLIP`` (k2/s2/p0, keys
``features.transitionN.pool.logit.conv1`` ... ``bn3``) instead of 2x2 average pooling. Module names
are the reference's, so a reference checkpoint minus ``classifier.*`` loads as is; 8.691M
parameters with the 1000-class classifier for depth 121.

The reference never calls its zero-init, so its LIP layers start from random logits; ours zero the
last logit conv (every LIP layer starts as average pooling, as in LIP-ResNet).

Outputs (``out_indices`` over the four dense blocks, strides 4/8/16/32): the pre-activated output
of dense block ``i``, i.e. ``ReLU(BN(.))`` with the BN that follows it (the next transition's
``norm``, or ``norm5`` for the last block). D121 gives 256/512/1024/1024 channels
(``out_channels``). Spatial sizes: ``ceil(H/4)`` after the stem, then each 2x2/s2 transition
gives ``floor(h/2)``, but at least 1: a transition on a map with a side of 1 pixel pools that
whole side (``fit_window``), so any input down to 1x1 runs; the LIP logits' InstanceNorms map a
one-pixel plane to their bias (``LogitInstanceNorm2d``).

Stage ``i`` (frozen by ``frozen_stages >= i``) is the transition before dense block ``i`` plus
the block, with ``norm5`` in the last stage; ``frozen_stages >= 0`` freezes the stem (``conv0``,
``norm0``, ``pool0``).
"""
from __future__ import annotations

from collections import OrderedDict
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.utils.checkpoint as cp
from mmcv.cnn import build_norm_layer
from mmdet.registry import MODELS
from mmengine.model import BaseModule, Sequential
from torch.nn.modules.batchnorm import _BatchNorm

from lip_det.layers.lip_logits import (LIP_COEFF, LIP_LOGIT_WIDTH, LOGIT_MODULES,
                                       DenseBottleneckLIP, ProjectionLIP, SimplifiedLIP)
from lip_det.layers.pooling import fit_window

from ._resnet_base import check_choice, check_flags

__all__ = ['LIPDenseNet']


class _DenseLayer(BaseModule):
    """BN-ReLU-1x1 conv (bottleneck) then BN-ReLU-3x3 conv giving ``growth_rate`` new channels."""

    def __init__(self, in_channels: int, growth_rate: int, bn_size: int, drop_rate: float,
                 norm_cfg: dict, with_cp: bool) -> None:
        super().__init__()
        mid = bn_size * growth_rate
        self.norm1 = build_norm_layer(norm_cfg, in_channels)[1]
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(in_channels, mid, 1, bias=False)
        self.norm2 = build_norm_layer(norm_cfg, mid)[1]
        self.relu2 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(mid, growth_rate, 3, padding=1, bias=False)
        self.drop_rate = drop_rate
        self.with_cp = with_cp

    def _bottleneck(self, *features: torch.Tensor) -> torch.Tensor:
        return self.conv1(self.relu1(self.norm1(torch.cat(features, 1))))

    def forward(self, features: List[torch.Tensor]) -> torch.Tensor:
        # Checkpointing the concat + bottleneck is what saves memory in a dense block: the
        # concatenated input is the tensor that grows with depth.
        if self.with_cp and any(f.requires_grad for f in features):
            out = cp.checkpoint(self._bottleneck, *features, use_reentrant=False)
        else:
            out = self._bottleneck(*features)
        out = self.conv2(self.relu2(self.norm2(out)))
        if self.drop_rate > 0:
            out = F.dropout(out, p=self.drop_rate, training=self.training)
        return out


class _DenseBlock(BaseModule):
    """``num_layers`` dense layers, each fed the concatenation of all earlier outputs."""

    def __init__(self, num_layers: int, in_channels: int, **layer_args) -> None:
        super().__init__()
        growth = layer_args['growth_rate']
        for i in range(num_layers):
            self.add_module(f'denselayer{i + 1}', _DenseLayer(in_channels + i * growth, **layer_args))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [x]
        for layer in self.children():
            features.append(layer(features))
        return torch.cat(features, 1)


class _AvgPool2d(nn.AvgPool2d):
    """``nn.AvgPool2d`` whose window is cut to a map it does not fit, as the LIP transitions do."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kernel, stride = fit_window(x, self.kernel_size, self.stride, self.padding)
        if kernel is self.kernel_size:
            return super().forward(x)
        return F.avg_pool2d(x, kernel, stride, self.padding, self.ceil_mode,
                            self.count_include_pad, self.divisor_override)


class _Transition(BaseModule):
    """BN-ReLU-1x1 conv halving the channels, then 2x2/s2 pooling (LIP or average)."""

    def __init__(self, in_channels: int, out_channels: int, norm_cfg: dict,
                 pool: nn.Module) -> None:
        super().__init__()
        self.norm = build_norm_layer(norm_cfg, in_channels)[1]
        self.relu = nn.ReLU(inplace=True)
        self.conv = nn.Conv2d(in_channels, out_channels, 1, bias=False)
        self.pool = pool

    def preact(self, x: torch.Tensor) -> torch.Tensor:
        """``ReLU(BN(x))``: the normalised feature of the dense block before this transition."""
        return self.relu(self.norm(x))

    def reduce(self, y: torch.Tensor) -> torch.Tensor:
        """1x1 conv and pooling of a pre-activated feature."""
        return self.pool(self.conv(y))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.reduce(self.preact(x))


@MODELS.register_module()
class LIPDenseNet(BaseModule):
    """LIP-DenseNet-121/161/169/201 backbone with mmdet's backbone contract.

    Args:
        depth: 121, 161, 169 or 201 (torchvision's DenseNet-BC layouts).
        in_channels: image channels.
        out_indices: which dense blocks' (pre-activated) outputs to return, from 0..3.
        frozen_stages: -1 none; 0 the stem; i also stages 1..i (see module docstring).
        norm_cfg: norm of the DenseNet body (BN, SyncBN, GN); LIP logit modules use affine IN.
        norm_eval: keep BatchNorm layers in eval mode while training.
        with_cp: checkpoint each dense layer's concat + bottleneck.
        drop_rate: dropout after each dense layer.
        logit_module: ``'bottleneck'`` (the reference's unshared width-``logit_width`` trunk) or
            ``'projection'`` (``gate(IN(conv1x1))``) for the transitions.
        logit_width: trunk width of the bottleneck logit module.
        lip_stem: the stem pooling is SimplifiedLIP (else max-pool 3x3/s2/p1).
        lip_transitions: per transition (3), LIP (else 2x2 average pooling).
        coeff: SoftGate range of the logits.
        init_cfg: mmengine init config, e.g. ``dict(type='Pretrained', checkpoint=...)``.
    """

    arch_settings = {
        # depth: (growth_rate, block_config, num_init_features)
        121: (32, (6, 12, 24, 16), 64),
        161: (48, (6, 12, 36, 24), 96),
        169: (32, (6, 12, 32, 32), 64),
        201: (32, (6, 12, 48, 32), 64),
    }

    def __init__(self, depth: int = 121, in_channels: int = 3,
                 out_indices: Sequence[int] = (0, 1, 2, 3), frozen_stages: int = -1,
                 norm_cfg: dict = dict(type='BN', requires_grad=True), norm_eval: bool = True,
                 with_cp: bool = False, drop_rate: float = 0.0, bn_size: int = 4,
                 logit_module: str = 'bottleneck', logit_width: int = LIP_LOGIT_WIDTH,
                 lip_stem: bool = True,
                 lip_transitions: Sequence[bool] = (True, True, True),
                 coeff: float = LIP_COEFF, init_cfg: Optional[dict] = None) -> None:
        if init_cfg is None:
            # The reference's torchvision init: kaiming_normal_ (fan_in) convs, BN weight 1.
            init_cfg = [dict(type='Kaiming', layer='Conv2d', mode='fan_in'),
                        dict(type='Constant', val=1, layer=['_BatchNorm', 'GroupNorm'])]
        super().__init__(init_cfg)
        check_choice('depth', depth, tuple(self.arch_settings))
        check_choice('logit_module', logit_module, LOGIT_MODULES)
        check_choice('lip_stem', lip_stem, (True, False))
        lip_transitions = check_flags('lip_transitions', lip_transitions, 3)
        if not isinstance(out_indices, (tuple, list)) or not out_indices or \
                not all(isinstance(i, int) and 0 <= i < 4 for i in out_indices):
            raise ValueError(f'out_indices must be a non-empty tuple of ints in 0..3, got {out_indices!r}')
        if isinstance(frozen_stages, bool) or not isinstance(frozen_stages, int) or \
                not -1 <= frozen_stages <= 4:
            raise ValueError(f'frozen_stages must be an int in -1..4, got {frozen_stages!r}')
        if not 0.0 <= drop_rate < 1.0:
            raise ValueError(f'drop_rate must be in [0, 1), got {drop_rate!r}')
        growth, block_config, num_init = self.arch_settings[depth]
        self.depth = depth
        self.out_indices = tuple(out_indices)
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        self.with_cp = with_cp

        stem_pool = SimplifiedLIP(num_init, coeff=coeff, names=('conv1', 'bn1')) if lip_stem \
            else nn.MaxPool2d(3, stride=2, padding=1)
        self.features = Sequential(OrderedDict([
            ('conv0', nn.Conv2d(in_channels, num_init, 7, stride=2, padding=3, bias=False)),
            ('norm0', build_norm_layer(norm_cfg, num_init)[1]),
            ('relu0', nn.ReLU(inplace=True)),
            ('pool0', stem_pool),
        ]))
        channels = num_init
        out_channels = []
        layer_args = dict(growth_rate=growth, bn_size=bn_size, drop_rate=drop_rate,
                          norm_cfg=norm_cfg, with_cp=with_cp)
        for i, num_layers in enumerate(block_config):
            self.features.add_module(f'denseblock{i + 1}',
                                     _DenseBlock(num_layers, channels, **layer_args))
            channels += num_layers * growth
            out_channels.append(channels)
            if i < len(block_config) - 1:
                reduced = channels // 2
                if not lip_transitions[i]:
                    pool = _AvgPool2d(2, stride=2)
                elif logit_module == 'bottleneck':
                    pool = DenseBottleneckLIP(reduced, logit_width, coeff=coeff)
                else:
                    pool = ProjectionLIP(reduced, kernel_size=2, stride=2, padding=0, coeff=coeff)
                self.features.add_module(f'transition{i + 1}',
                                         _Transition(channels, reduced, norm_cfg, pool))
                channels = reduced
        self.features.add_module('norm5', build_norm_layer(norm_cfg, channels)[1])
        self.out_channels: Tuple[int, ...] = tuple(out_channels)
        self.num_features = channels
        self._freeze_stages()

    def stage_modules(self, stage: int) -> List[nn.Module]:
        """Modules of stage ``stage`` (0 = stem, 1..4 = transition before block + block)."""
        f = self.features
        if stage == 0:
            return [f.conv0, f.norm0, f.pool0]
        mods = [] if stage == 1 else [getattr(f, f'transition{stage - 1}')]
        mods.append(getattr(f, f'denseblock{stage}'))
        if stage == 4:
            mods.append(f.norm5)
        return mods

    def _freeze_stages(self) -> None:
        for stage in range(self.frozen_stages + 1):
            for module in self.stage_modules(stage):
                module.eval()
                for param in module.parameters():
                    param.requires_grad = False

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """Multi-scale pre-activated dense-block outputs at strides 4, 8, 16, 32."""
        f = self.features
        x = f.pool0(f.relu0(f.norm0(f.conv0(x))))
        outs = []
        for i in range(4):
            x = getattr(f, f'denseblock{i + 1}')(x)
            if i < 3:
                trans = getattr(f, f'transition{i + 1}')
                y = trans.preact(x)
                x = trans.reduce(y)
            else:
                y = F.relu(f.norm5(x))
            if i in self.out_indices:
                outs.append(y)
        return tuple(outs)

    def train(self, mode: bool = True) -> 'LIPDenseNet':
        """Train mode that keeps frozen stages, and BatchNorms if ``norm_eval``, in eval mode."""
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for m in self.modules():
                if isinstance(m, _BatchNorm):
                    m.eval()
        return self
