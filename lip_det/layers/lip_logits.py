"""LIP logit modules: the small fully-convolutional nets that give LIP its importance logits.

Every LIP layer here owns its logit head and calls ``lip_det.ops.lip_pool2d``; attribute names
follow the reference LIP-ResNet / LIP-DenseNet so that their ImageNet checkpoints load by prefix:

- ``SimplifiedLIP``: ``logit = gate(IN(conv3x3(x)))`` (the stem; keys ``logit.conv``, ``logit.bn``,
  or ``logit.conv1``, ``logit.bn1`` in LIP-DenseNet).
- ``ProjectionLIP``: the same with a 1x1 conv, the paper's cheap "projection" logit module.
- ``BottleneckShared`` + ``BottleneckLIP``: a width-128 trunk ``1x1 -> IN -> ReLU -> 3x3 -> IN ->
  ReLU`` computed once per block and shared by the heads ``gate(IN(conv1x1(trunk)))`` of the main
  path and of the shortcut (keys ``logit.{conv1,bn1,conv2,bn2}``, ``postprocessing.{conv,bn}``).
- ``DenseBottleneckLIP``: the unshared trunk + head of LIP-DenseNet's transitions.

Training and inference run the logit's last two steps, ``SoftGate(IN(pre))``, inside the pooling
op (``lip_pool2d_gated``): the kernels compute the instance statistics and the gate themselves, so
a LIP layer keeps only its input and ``pre`` for the backward instead of also the norm's and the
gate's outputs and the logit, and makes no full-size passes over memory for them.

The last conv of every logit module is zero-initialised (in the constructor and again in
``init_weights``, which mmengine runs after the backbone's Kaiming init): the logit is then the
constant ``IN bias -> gate(0) = coeff/2`` and every LIP layer starts as average pooling.

The modules are plain ``nn.Module``/``nn.Sequential`` (torch alone imports them); those that hold
LIP layers have mmengine's ``init_weights`` protocol (run the children's ``init_weights``), so
an mmengine ``BaseModule`` parent's ``init_weights`` still reaches every LIP layer.

Small maps (detection feeds them; mmdet's ResNet runs down to a 1x1 input): the InstanceNorm of
a one-pixel plane is defined as normalised value 0, so its output is the norm's bias (the
gate's midpoint ``coeff/2`` with the zero-initialised bias, i.e. average pooling). That is what
``(x - mean)·rsqrt(var + eps)`` gives for one pixel and what the fused and the reference
``lip_pool2d_gated`` compute; ``LogitInstanceNorm2d`` does the same where ``F.instance_norm``
refuses a 1x1 plane. A LIP window larger than the padded map pools the whole dimension
(``fit_window``), so a 1x1 map is pooled to the pixel itself.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn

from lip_det.ops import lip_pool2d_gated

from .pooling import SoftGate, _Window, register_pooling

__all__ = [
    'LIP_COEFF', 'LIP_LOGIT_WIDTH', 'LogitInstanceNorm2d', 'LIPLayer', 'SimplifiedLIP',
    'ProjectionLIP',
    'BottleneckShared', 'BottleneckLIP', 'DenseBottleneckLIP', 'SharedLogitSequential',
    'LOGIT_MODULES', 'build_lip_head'
]

IntOrTuple = Union[int, Sequence[int]]

# Reference constants: SoftGate range (0, 12) and the Bottleneck-128 trunk width.
LIP_COEFF = 12.0
LIP_LOGIT_WIDTH = 128
LOGIT_MODULES = ('bottleneck', 'projection')


class LogitInstanceNorm2d(nn.InstanceNorm2d):
    """``nn.InstanceNorm2d`` that also normalises a one-pixel plane: to 0, so it outputs the bias.

    ``F.instance_norm`` refuses a plane with one spatial element (in eval mode too, without
    running stats). Its normalised value ``(x - mean)·rsqrt(var + eps)`` is 0, which is what
    the fused and the reference ``lip_pool2d_gated`` compute for such a plane; gradients follow
    that formula (none reaches ``x`` or ``weight``). Larger planes run the parent's forward.
    """

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        if self.track_running_stats or input.dim() not in (3, 4) or input.shape[-2:].numel() != 1:
            return super().forward(input)
        normed = input - input  # x - mean of a single pixel: exactly 0, NaN/inf propagate
        if not self.affine:
            return normed
        return normed * self.weight[:, None, None] + self.bias[:, None, None]


def _instance_norm(channels: int) -> nn.InstanceNorm2d:
    # Affine IN without running stats, as in the reference: identical in train and eval.
    return LogitInstanceNorm2d(channels, affine=True)


def _norm_params(norm: nn.Module, channels: int, like: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """The (weight, bias) of the logit's InstanceNorm2d, for the fused op."""
    if not isinstance(norm, nn.InstanceNorm2d) or norm.track_running_stats:
        raise TypeError('a LIP logit module must end with InstanceNorm2d (without running stats) '
                        f'and SoftGate, got {norm!r}')
    weight = norm.weight if norm.weight is not None else like.new_ones(channels)
    bias = norm.bias if norm.bias is not None else like.new_zeros(channels)
    return weight, bias


def _check_positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f'{name} must be a positive int, got {value!r}')
    return value


def _init_children(module: nn.Module) -> None:
    """Run the children's ``init_weights``, as mmengine's ``BaseModule.init_weights`` does."""
    for child in module.children():
        if hasattr(child, 'init_weights') and not getattr(child, 'is_init', False):
            child.init_weights()


def _logit_parts(net: nn.Sequential) -> Tuple[nn.Sequential, nn.Conv2d, nn.InstanceNorm2d, SoftGate]:
    """Split a logit net ``(..., conv, ..., InstanceNorm2d, SoftGate)`` into the layers before the
    norm, the last conv (the zero-init target), the norm and the gate (the part fused into the op)."""
    children = list(net.children())
    if len(children) < 3 or not isinstance(children[-1], SoftGate):
        raise TypeError(f'a LIP logit net must end with InstanceNorm2d and SoftGate, got {net!r}')
    convs = [m for m in children[:-2] if isinstance(m, nn.Conv2d)]
    if not convs:
        raise TypeError(f'a LIP logit net must have a Conv2d before its norm, got {net!r}')
    return net[:-2], convs[-1], children[-2], children[-1]


class LIPLayer(_Window):
    """Base of the LIP layers: a LIP pooling window whose logit net the layer owns.

    ``forward(x, shared=None)`` runs the logit net up to its norm and hands the rest, the
    InstanceNorm and the ``SoftGate``, to the fused ``lip_pool2d_gated`` (the gate module holds
    ``coeff``; ``compute_logit`` runs the whole net unfused, for inspection). Windows larger than
    a small map pool the whole dimension (``fit_window``), as every pooling layer's do.
    """

    def __init__(self, kernel_size: IntOrTuple = 3, stride: Optional[IntOrTuple] = 2,
                 padding: IntOrTuple = 1, ceil_mode: bool = False) -> None:
        super().__init__(kernel_size, stride, padding, ceil_mode)

    def zero_conv(self) -> nn.Conv2d:
        """The conv whose zero weight makes the layer average pooling: the last before the norm."""
        return _logit_parts(self.logit_module())[1]

    def logit_module(self) -> nn.Sequential:
        """The logit net; it ends with ``InstanceNorm2d, SoftGate`` (the part fused into the op)."""
        raise NotImplementedError

    def logit_input(self, x: torch.Tensor, shared: Optional[torch.Tensor]) -> torch.Tensor:
        """What the logit net reads: ``x`` itself unless the layer uses a shared trunk."""
        return x

    def compute_logit(self, x: torch.Tensor, shared: Optional[torch.Tensor]) -> torch.Tensor:
        """The importance logit for ``x`` (same shape as ``x``), the net run unfused."""
        return self.logit_module()(self.logit_input(x, shared))

    def reset_logit(self) -> None:
        """Zero the logit's last conv so that the layer is average pooling."""
        nn.init.zeros_(self.zero_conv().weight)

    def init_weights(self) -> None:
        """Initialise the children, then restore the average-pooling start."""
        _init_children(self)
        self.reset_logit()

    def forward(self, x: torch.Tensor, shared: Optional[torch.Tensor] = None) -> torch.Tensor:
        body, _, norm, gate = _logit_parts(self.logit_module())
        pre = body(self.logit_input(x, shared))
        weight, bias = _norm_params(norm, pre.shape[1], pre)
        kernel, stride, padding, ceil_mode = self._geom(x)
        return lip_pool2d_gated(x, pre, weight, bias, kernel, stride, padding, ceil_mode,
                                eps=norm.eps, coeff=gate.coeff)


@register_pooling
class SimplifiedLIP(LIPLayer):
    """LIP whose logit is ``SoftGate(IN(conv(x)))`` with a ``logit_kernel`` x ``logit_kernel`` conv."""

    def __init__(self, channels: int, kernel_size: IntOrTuple = 3,
                 stride: Optional[IntOrTuple] = 2, padding: IntOrTuple = 1,
                 coeff: float = LIP_COEFF, logit_kernel: int = 3,
                 names: Tuple[str, str] = ('conv', 'bn')) -> None:
        super().__init__(kernel_size, stride, padding)
        _check_positive_int('channels', channels)
        if logit_kernel not in (1, 3):
            raise ValueError(f'logit_kernel must be 1 or 3, got {logit_kernel!r}')
        conv_name, norm_name = names
        self.logit = nn.Sequential(OrderedDict([
            (conv_name, nn.Conv2d(channels, channels, logit_kernel, padding=logit_kernel // 2,
                                  bias=False)),
            (norm_name, _instance_norm(channels)),
            ('gate', SoftGate(coeff)),
        ]))
        self.reset_logit()

    def logit_module(self) -> nn.Sequential:
        return self.logit


@register_pooling
class ProjectionLIP(SimplifiedLIP):
    """LIP with the paper's projection logit module ``SoftGate(IN(conv1x1(x)))`` (keys ``logit.{conv,bn}``)."""

    def __init__(self, channels: int, kernel_size: IntOrTuple = 3,
                 stride: Optional[IntOrTuple] = 2, padding: IntOrTuple = 1,
                 coeff: float = LIP_COEFF) -> None:
        super().__init__(channels, kernel_size, stride, padding, coeff, logit_kernel=1)


def _trunk_layers(in_channels: int, width: int) -> List[Tuple[str, nn.Module]]:
    """The reference Bottleneck-128 trunk: 1x1 -> IN -> ReLU -> 3x3 -> IN -> ReLU."""
    return [
        ('conv1', nn.Conv2d(in_channels, width, 1, bias=False)),
        ('bn1', _instance_norm(width)),
        ('relu1', nn.ReLU(inplace=True)),
        ('conv2', nn.Conv2d(width, width, 3, padding=1, bias=False)),
        ('bn2', _instance_norm(width)),
        ('relu2', nn.ReLU(inplace=True)),
    ]


def _head_layers(width: int, channels: int, coeff: float,
                 names: Tuple[str, str] = ('conv', 'bn')) -> List[Tuple[str, nn.Module]]:
    """The logit head on a trunk: 1x1 width -> channels, IN, SoftGate."""
    return [
        (names[0], nn.Conv2d(width, channels, 1, bias=False)),
        (names[1], _instance_norm(channels)),
        ('gate', SoftGate(coeff)),
    ]


class BottleneckShared(nn.Module):
    """The logit trunk computed once on a block's input and shared by its LIP heads."""

    def __init__(self, in_channels: int, width: int = LIP_LOGIT_WIDTH) -> None:
        super().__init__()
        _check_positive_int('in_channels', in_channels)
        _check_positive_int('width', width)
        self.logit = nn.Sequential(OrderedDict(_trunk_layers(in_channels, width)))

    def init_weights(self) -> None:
        """Initialise the children (the trunk keeps the parent's init)."""
        _init_children(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logit(x)


class BottleneckLIP(LIPLayer):
    """LIP whose logit is the head ``SoftGate(IN(conv1x1(shared)))`` on a ``BottleneckShared`` output.

    Not in the pooling factory's table, unlike the other LIP layers: it pools nothing without its
    block's shared trunk (``build_lip_head`` makes it for a LIP block).
    """

    def __init__(self, channels: int, width: int = LIP_LOGIT_WIDTH,
                 kernel_size: IntOrTuple = 3, stride: Optional[IntOrTuple] = 2,
                 padding: IntOrTuple = 1, coeff: float = LIP_COEFF) -> None:
        super().__init__(kernel_size, stride, padding)
        _check_positive_int('channels', channels)
        _check_positive_int('width', width)
        self.postprocessing = nn.Sequential(OrderedDict(_head_layers(width, channels, coeff)))
        self.reset_logit()

    def logit_module(self) -> nn.Sequential:
        return self.postprocessing

    def logit_input(self, x: torch.Tensor, shared: Optional[torch.Tensor]) -> torch.Tensor:
        if shared is None:
            raise ValueError('BottleneckLIP needs the shared trunk output: call it as '
                             'layer(x, shared) with shared = BottleneckShared(x)')
        return shared


@register_pooling
class DenseBottleneckLIP(LIPLayer):
    """LIP-DenseNet's transition pooling: its own trunk and head (keys ``logit.conv1`` ... ``logit.bn3``)."""

    def __init__(self, channels: int, width: int = LIP_LOGIT_WIDTH,
                 kernel_size: IntOrTuple = 2, stride: Optional[IntOrTuple] = 2,
                 padding: IntOrTuple = 0, coeff: float = LIP_COEFF) -> None:
        super().__init__(kernel_size, stride, padding)
        _check_positive_int('channels', channels)
        _check_positive_int('width', width)
        self.logit = nn.Sequential(OrderedDict(
            _trunk_layers(channels, width) + _head_layers(width, channels, coeff, ('conv3', 'bn3'))))
        self.reset_logit()

    def logit_module(self) -> nn.Sequential:
        return self.logit


class SharedLogitSequential(nn.Sequential):
    """A Sequential whose LIP members also receive the block's shared trunk output."""

    def init_weights(self) -> None:
        """Initialise the members: a LIP member restores its average-pooling start."""
        _init_children(self)

    def forward(self, x: torch.Tensor, shared: Optional[torch.Tensor] = None) -> torch.Tensor:
        for module in self:
            x = module(x, shared) if isinstance(module, LIPLayer) else module(x)
        return x


def build_lip_head(logit_module: str, channels: int, width: int = LIP_LOGIT_WIDTH,
                   coeff: float = LIP_COEFF) -> LIPLayer:
    """A k3/s2/p1 LIP layer for a stride-2 block: ``'bottleneck'`` head or ``'projection'`` LIP."""
    if logit_module == 'bottleneck':
        return BottleneckLIP(channels, width, coeff=coeff)
    if logit_module == 'projection':
        return ProjectionLIP(channels, coeff=coeff)
    raise ValueError(f'logit_module must be one of {LOGIT_MODULES}, got {logit_module!r}')
