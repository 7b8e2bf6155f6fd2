"""LIP-ResNet (Gao et al., ICCV 2019) as an mmdet backbone.

Bottleneck depths (50/101/152) follow the reference "full LIP, Bottleneck-128" architecture:

- stem: the 3x3/s2 max-pool ``maxpool`` is ``SimplifiedLIP(64)`` (logit ``gate(IN(conv3x3))``);
- first block of every stride-2 stage: a ``bottleneck_shared`` trunk (1x1 -> 128, IN, ReLU,
  3x3, IN, ReLU) runs on the block input; the stride-2 3x3 conv becomes ``conv2 = [LIP k3/s2/p1
  with head gate(IN(conv1x1(trunk))), conv1x1]`` and the shortcut is ``downsample = [lip (its own
  head on the same trunk), conv1x1 stride 1, bn]``; other downsamples are ``[conv, bn]``;
- init: Kaiming fan_out, every logit module's last conv zero (LIP starts as average pooling),
  ``bn3`` zero (mmdet's ``zero_init_residual``).

With BN the state-dict keys are the reference's minus ``fc.*``: 357 keys, 21.815M parameters
for depth 50 (23.864M with the 1000-class fc), 40.807M for 101 (42.856M with fc).

BasicBlock depths (18/34) have no reference; our design: in a stride-2 first block, LIP pools
the *block input* once (k3/s2/p1, logit head ``lip`` on a ``bottleneck_shared`` trunk of that
input), and both paths read the pooled tensor: ``conv1`` becomes a stride-1 3x3 conv and the
shortcut a stride-1 1x1 conv + BN. This is the BasicBlock analogue of the Bottleneck rule (the
strided conv becomes LIP + a stride-1 conv of the same kernel, the shortcut pools with LIP): both
paths would pool the same tensor, so one LIP serves them, and the main path keeps the FLOPs and
receptive field of the original strided 3x3 conv.

Output sizes equal mmdet's ResNet's for every input (LIP k3/s2/p1 pools like its strided 3x3
convs), down to 1x1: a logit InstanceNorm of a one-pixel plane outputs its bias
(``LogitInstanceNorm2d``; the fused op does the same) and a 1x1 map pools to its pixel.

Options: ``logit_module='projection'`` replaces trunk + heads by one ``gate(IN(conv1x1(x)))`` per
LIP layer, computed on the tensor that layer pools (keys ``...lip.logit.{conv,bn}``);
``lip_stem`` / ``lip_stages`` choose which downsampling layers use LIP (a stage without LIP keeps
mmdet's strided conv; the stem without LIP keeps the max-pool).
"""
from __future__ import annotations

from collections import OrderedDict
from typing import List, Optional, Sequence

import torch
import torch.nn as nn
import torch.utils.checkpoint as cp
from mmcv.cnn import build_conv_layer, build_norm_layer
from mmdet.models.backbones.resnet import BasicBlock, Bottleneck
from mmdet.registry import MODELS
from mmengine.model import Sequential

from lip_det.layers.lip_logits import (LIP_COEFF, LIP_LOGIT_WIDTH, LOGIT_MODULES, BottleneckShared,
                                       LIPLayer, SharedLogitSequential, SimplifiedLIP,
                                       build_lip_head)

from ._resnet_base import PooledResNetBase, check_choice, check_flags

__all__ = ['LIPResNet', 'LIPBottleneck', 'LIPBasicBlock']


class _LIPBlock:
    """Set-up and (checkpointed) forward shared by the LIP blocks; mixed into mmdet's blocks.

    A block with ``logit_module`` set and stride 2 is built by mmdet at stride 1, then
    ``setup_lip`` swaps in its LIP layers; ``inner_forward`` is the residual function.
    """

    def __init__(self, inplanes: int, planes: int, stride: int = 1, *,
                 logit_module: Optional[str] = None, logit_width: int = LIP_LOGIT_WIDTH,
                 coeff: float = LIP_COEFF, **kwargs) -> None:
        use_lip = logit_module is not None and stride > 1
        super().__init__(inplanes, planes, stride=1 if use_lip else stride, **kwargs)
        self.stride = stride
        self.use_lip = use_lip
        self.bottleneck_shared = BottleneckShared(inplanes, logit_width) \
            if use_lip and logit_module == 'bottleneck' else None
        self.setup_lip(inplanes, planes, logit_module if use_lip else None, logit_width, coeff)

    def setup_lip(self, inplanes: int, planes: int, logit_module: Optional[str],
                  logit_width: int, coeff: float) -> None:
        """Add the block's LIP layers (``logit_module`` None: the block has none)."""
        raise NotImplementedError

    def shared_logit(self, x: torch.Tensor) -> Optional[torch.Tensor]:
        """The shared trunk's output on the block input (bottleneck logit module only)."""
        return self.bottleneck_shared(x) if self.bottleneck_shared is not None else None

    def inner_forward(self, x: torch.Tensor) -> torch.Tensor:
        """The block before its final ReLU."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.with_cp and x.requires_grad:
            out = cp.checkpoint(self.inner_forward, x, use_reentrant=False)
        else:
            out = self.inner_forward(x)
        return self.relu(out)


class LIPBottleneck(_LIPBlock, Bottleneck):
    """mmdet Bottleneck whose stride-2 3x3 conv is LIP + 1x1 conv when ``logit_module`` is set."""

    def setup_lip(self, inplanes, planes, logit_module, logit_width, coeff) -> None:
        if logit_module is not None:
            self.conv2 = SharedLogitSequential(
                build_lip_head(logit_module, planes, logit_width, coeff),
                build_conv_layer(self.conv_cfg, planes, planes, kernel_size=1, bias=False))

    def inner_forward(self, x: torch.Tensor) -> torch.Tensor:
        """Bottleneck with the shared logit trunk fed to conv2's LIP and the shortcut's."""
        shared = self.shared_logit(x)
        out = self.relu(self.norm1(self.conv1(x)))
        if self.with_plugins:
            out = self.forward_plugin(out, self.after_conv1_plugin_names)
        out = self.conv2(out, shared) if self.use_lip else self.conv2(out)
        out = self.relu(self.norm2(out))
        if self.with_plugins:
            out = self.forward_plugin(out, self.after_conv2_plugin_names)
        out = self.norm3(self.conv3(out))
        if self.with_plugins:
            out = self.forward_plugin(out, self.after_conv3_plugin_names)
        identity = x if self.downsample is None else self.downsample(x, shared)
        out += identity  # in place, as mmdet's Bottleneck: a fresh block-sized tensor costs page faults
        return out


class LIPBasicBlock(_LIPBlock, BasicBlock):
    """mmdet BasicBlock whose stride-2 block pools its input once with LIP (see module docstring)."""

    def setup_lip(self, inplanes, planes, logit_module, logit_width, coeff) -> None:
        self.lip = None if logit_module is None else \
            build_lip_head(logit_module, inplanes, logit_width, coeff)

    def inner_forward(self, x: torch.Tensor) -> torch.Tensor:
        """BasicBlock on the LIP-pooled input (both paths read it)."""
        if self.use_lip:
            x = self.lip(x, self.shared_logit(x))
        out = self.relu(self.norm1(self.conv1(x)))
        out = self.norm2(self.conv2(out))
        identity = x if self.downsample is None else self.downsample(x)
        out += identity
        return out


@MODELS.register_module()
class LIPResNet(PooledResNetBase):
    """LIP-ResNet backbone (depths 18/34/50/101/152); see the module docstring for the design.

    Args (besides mmdet ``ResNet``'s):
        logit_module: ``'bottleneck'`` (shared width-``logit_width`` trunk, the paper's) or
            ``'projection'`` (one 1x1 conv per LIP layer).
        logit_width: trunk width of the bottleneck logit module (128 in the paper).
        lip_stem: replace the stem max-pool by ``SimplifiedLIP``.
        lip_stages: per stage, whether its stride-2 first block uses LIP (default: all).
        coeff: SoftGate range ``(0, coeff)`` of the logits.
    """

    block_map = {BasicBlock: LIPBasicBlock, Bottleneck: LIPBottleneck}

    def __init__(self, depth: int, logit_module: str = 'bottleneck',
                 logit_width: int = LIP_LOGIT_WIDTH, lip_stem: bool = True,
                 lip_stages: Optional[Sequence[bool]] = None,
                 coeff: float = LIP_COEFF, num_stages: int = 4, style: str = 'pytorch',
                 avg_down: bool = False, **kwargs) -> None:
        check_choice('logit_module', logit_module, LOGIT_MODULES)
        if isinstance(logit_width, bool) or not isinstance(logit_width, int) or logit_width < 1:
            raise ValueError(f'logit_width must be a positive int, got {logit_width!r}')
        check_choice('lip_stem', lip_stem, (True, False))
        check_choice('style', style, ('pytorch',))
        if avg_down:
            raise ValueError('avg_down must be False for LIPResNet: LIP does the downsampling')
        if not coeff > 0:
            raise ValueError(f'coeff must be positive, got {coeff!r}')
        # Read by _make_stem_layer / make_res_layer, which ResNet.__init__ calls.
        self.logit_module = logit_module
        self.logit_width = logit_width
        self.lip_stem = lip_stem
        self.lip_stages = check_flags('lip_stages', (True,) * num_stages if lip_stages is None
                                      else lip_stages, num_stages)
        self.coeff = float(coeff)
        super().__init__(depth, num_stages=num_stages, style=style, avg_down=avg_down, **kwargs)

    def _make_stem_layer(self, in_channels: int, stem_channels: int) -> None:
        super()._make_stem_layer(in_channels, stem_channels)
        if self.lip_stem:
            self.maxpool = SimplifiedLIP(stem_channels, coeff=self.coeff)

    def stem_pool_modules(self) -> List[nn.Module]:
        return [self.maxpool] if self.lip_stem else []

    def build_stage(self, stage, block, inplanes, planes, num_blocks, stride, dilation, style,
                    avg_down, with_cp, conv_cfg, norm_cfg, dcn, plugins, init_cfg) -> Sequential:
        use_lip = self.lip_stages[stage] and stride > 1
        if use_lip and stride != 2:
            raise ValueError(f'LIP replaces stride-2 layers only; stage {stage} has stride {stride} '
                             f'(set lip_stages[{stage}]=False)')
        out_planes = planes * block.expansion
        downsample = None
        if stride != 1 or inplanes != out_planes:
            layers = []
            if use_lip and block is LIPBottleneck:
                layers.append(('lip', build_lip_head(self.logit_module, inplanes,
                                                     self.logit_width, self.coeff)))
            # The LIP layers do the striding; the BasicBlock's shortcut reads its pooled input.
            conv_stride = 1 if use_lip else stride
            layers += [
                ('conv', build_conv_layer(conv_cfg, inplanes, out_planes, kernel_size=1,
                                          stride=conv_stride, bias=False)),
                # 'bn' whatever the norm type: the reference key, so checkpoints map by prefix.
                ('bn', build_norm_layer(norm_cfg, out_planes)[1]),
            ]
            downsample = SharedLogitSequential(OrderedDict(layers))
        common = dict(dilation=dilation, style=style, with_cp=with_cp, conv_cfg=conv_cfg,
                      norm_cfg=norm_cfg, dcn=dcn, plugins=plugins, init_cfg=init_cfg)
        lip_args = dict(logit_module=self.logit_module if use_lip else None,
                        logit_width=self.logit_width, coeff=self.coeff)
        blocks = [block(inplanes, planes, stride, downsample=downsample, **lip_args, **common)]
        for _ in range(1, num_blocks):
            blocks.append(block(out_planes, planes, 1, **common))
        return Sequential(*blocks)
