"""Pooling layers as plain nn.Modules, each in the pooling factory's table ``POOLING_LAYERS``.

This module needs torch alone; ``lip_det.mmdet_plugin`` registers every entry of the table (and
``SoftGate``) in MMDetection's ``MODELS`` where mmdet is used.

The learned estimators keep the reference implementations' attribute names (``ToParam``,
``ToHidden``, ``ToMean``, ``ToSigma``) so that reference checkpoints map onto them by prefix.

Small maps: detection feeds small and odd sizes, and mmdet's ResNet runs down to a 1x1 input. A
layer whose window is larger than a dimension of its padded input (``size + 2·padding <
kernel_size``, which the ops refuse) pools that whole dimension into one output instead (see
``fit_window``): a 1x1 map gives one window holding one pixel, i.e. the pixel itself for LIP,
SoftPool and Max-Entropy pooling, and ``x + η·1e-3`` for Gaussian pooling (σ² is floored at
1e-6, as for any window of equal values). GFGP's global average pool of a 1x1 map is the pixel
itself. Maps the window fits are pooled exactly as before.
"""
from __future__ import annotations

from typing import Callable, Dict, List, Optional, Sequence, Tuple, Type, Union

import torch
import torch.nn as nn
import torch.nn.functional as F

from lip_det.ops import (gauss_pool2d, lip_pool2d, maxent_pool2d, pool_output_size, soft_pool1d,
                         soft_pool2d, soft_pool3d)

from .norm import build_norm_layer

IntOrTuple = Union[int, Sequence[int]]

__all__ = [
    'POOLING_LAYERS', 'register_pooling', 'on_register_pooling', 'fit_window', 'SoftGate',
    'LIPPool2d', 'SoftPool1d', 'SoftPool2d', 'SoftPool3d', 'MaxEntPool2d', 'GaussianPool2d'
]

# Pooling types the factory accepts, filled by ``register_pooling``.
POOLING_LAYERS: Dict[str, Type[nn.Module]] = {}
# Called with each class ``register_pooling`` adds: how a registry that mirrors the table (mmdet's
# MODELS, see lip_det.mmdet_plugin) also gets layers defined after it started mirroring.
_POOLING_LISTENERS: List[Callable[[Type[nn.Module]], None]] = []


def register_pooling(cls: Type[nn.Module]) -> Type[nn.Module]:
    """Add a pooling layer to the factory's table (and to the registries that mirror it)."""
    POOLING_LAYERS[cls.__name__] = cls
    for listener in _POOLING_LISTENERS:
        listener(cls)
    return cls


def on_register_pooling(listener: Callable[[Type[nn.Module]], None]) -> None:
    """Call ``listener(cls)`` for every pooling layer registered so far and from now on."""
    for cls in list(POOLING_LAYERS.values()):
        listener(cls)
    _POOLING_LISTENERS.append(listener)


def _int_tuple(value: object, nd: int) -> Optional[Tuple[int, ...]]:
    """``value`` as ``nd`` ints if it is an int or a sequence of 1 or ``nd`` ints, else None."""
    if isinstance(value, int) and not isinstance(value, bool):
        return (value,) * nd
    if isinstance(value, (tuple, list, torch.Size)) and len(value) in (1, nd) and \
            all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        return tuple(value) * (nd // len(value))
    return None


def fit_window(x: torch.Tensor, kernel_size: IntOrTuple, stride: Optional[IntOrTuple],
               padding: IntOrTuple, nd: int = 2) -> Tuple[IntOrTuple, Optional[IntOrTuple]]:
    """``(kernel_size, stride)`` with the window cut to the padded input where it is larger.

    On a dimension of size ``n`` with ``n + 2·padding < kernel``, where the ops would refuse the
    input (no window fits), the kernel becomes ``n + 2·padding``: one output that pools every
    valid pixel of that dimension. Otherwise the arguments come back unchanged (the same
    objects), so inputs the window fits give bit-identical results; malformed arguments also
    come back unchanged, for the op to report.
    """
    k, p = _int_tuple(kernel_size, nd), _int_tuple(padding, nd)
    if k is None or p is None or x.dim() < nd:
        return kernel_size, stride
    sizes = tuple(x.shape[-nd:])
    if min(sizes) < 1 or min(p) < 0 or all(n + 2 * pv >= kv for n, kv, pv in zip(sizes, k, p)):
        return kernel_size, stride
    fitted = tuple(min(kv, n + 2 * pv) for n, kv, pv in zip(sizes, k, p))
    # stride None means "= kernel_size": keep the original kernel as the stride of the other
    # dimensions (a cut dimension has one output, whatever its stride).
    return fitted, kernel_size if stride is None else stride


class SoftGate(nn.Module):
    """``sigmoid(z) * coeff``: bounds LIP logits to (0, coeff) so ``e^logit`` cannot blow up."""

    def __init__(self, coeff: float = 12.0) -> None:
        super().__init__()
        if not coeff > 0:
            raise ValueError(f'coeff must be positive, got {coeff!r}')
        self.coeff = float(coeff)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(x) * self.coeff

    def extra_repr(self) -> str:
        return f'coeff={self.coeff}'


class _Window(nn.Module):
    """Holds and prints the window geometry shared by every pooling layer.

    A window larger than a dimension of the padded input pools that whole dimension into one
    output (``fit_window``); on a 1x1 map the output is the pixel (see the module docstring).
    """

    nd = 2  # spatial dimensions the layer pools

    def __init__(self, kernel_size: IntOrTuple, stride: Optional[IntOrTuple] = None,
                 padding: IntOrTuple = 0, ceil_mode: bool = False) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride
        self.padding = padding
        self.ceil_mode = ceil_mode

    def _geom(self, x: torch.Tensor) -> tuple:
        """(kernel_size, stride, padding, ceil_mode) for ``x``, the window fitted to small maps."""
        kernel, stride = fit_window(x, self.kernel_size, self.stride, self.padding, self.nd)
        return kernel, stride, self.padding, self.ceil_mode

    def extra_repr(self) -> str:
        return (f'kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, '
                f'ceil_mode={self.ceil_mode}')


@register_pooling
class LIPPool2d(_Window):
    """LIP with an externally computed logit: ``forward(x, logit)``; logit has x's shape.

    The LIP layers that own their logit net (``SimplifiedLIP``, ``ProjectionLIP``,
    ``DenseBottleneckLIP``, ``BottleneckLIP``; lip_det.layers.lip_logits) share this window
    geometry and run the logit's norm and gate inside the fused op.
    """

    def __init__(self, kernel_size: IntOrTuple = 3, stride: Optional[IntOrTuple] = 2,
                 padding: IntOrTuple = 1, ceil_mode: bool = False) -> None:
        super().__init__(kernel_size, stride, padding, ceil_mode)

    def forward(self, x: torch.Tensor, logit: torch.Tensor) -> torch.Tensor:
        return lip_pool2d(x, logit, *self._geom(x))


@register_pooling
class SoftPool1d(_Window):
    """SoftPool over (N, C, L); no parameters."""

    nd = 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return soft_pool1d(x, *self._geom(x))


@register_pooling
class SoftPool2d(_Window):
    """SoftPool over (N, C, H, W); no parameters."""

    def __init__(self, kernel_size: IntOrTuple = 2, stride: Optional[IntOrTuple] = None,
                 padding: IntOrTuple = 0, ceil_mode: bool = False) -> None:
        super().__init__(kernel_size, stride, padding, ceil_mode)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return soft_pool2d(x, *self._geom(x))


@register_pooling
class SoftPool3d(_Window):
    """SoftPool over (N, C, D, H, W); no parameters."""

    nd = 3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return soft_pool3d(x, *self._geom(x))


def _check_channels(channels: int) -> int:
    if isinstance(channels, bool) or not isinstance(channels, int) or channels < 2:
        raise ValueError(f'channels must be an int >= 2 (the estimator halves it), got {channels!r}')
    return channels


def _gap_conv_norm(channels: int, out_channels: int, norm_cfg: dict) -> list:
    """Global average pool, 1x1 conv (with bias, as in the references), norm."""
    return [nn.AdaptiveAvgPool2d(1), nn.Conv2d(channels, out_channels, 1),
            build_norm_layer(norm_cfg, out_channels)[1]]


@register_pooling
class MaxEntPool2d(_Window):
    """Max-Entropy pooling whose λ ∈ (0, 1) per (sample, channel) is estimated by GFGP.

    On a 1x1 map GFGP's global pool is the pixel itself and the pooling returns the pixel.
    """

    _ACTIVATIONS = ('sigmoid', 'softplus')

    def __init__(self, channels: int, kernel_size: IntOrTuple = 2,
                 stride: Optional[IntOrTuple] = None, padding: IntOrTuple = 0,
                 ceil_mode: bool = False, activation: str = 'sigmoid',
                 norm_cfg: Optional[dict] = None) -> None:
        super().__init__(kernel_size, stride, padding, ceil_mode)
        channels = _check_channels(channels)
        if activation not in self._ACTIVATIONS:
            raise ValueError(f'activation must be one of {self._ACTIVATIONS}, got {activation!r}')
        self.channels = channels
        self.activation = activation
        norm_cfg = norm_cfg or dict(type='BN')
        hidden = channels // 2
        # Indices 1, 2, 4, 5 are the reference checkpoint's ToParam.{1,2,4,5} keys.
        self.ToParam = nn.Sequential(
            *_gap_conv_norm(channels, hidden, norm_cfg), nn.ReLU(inplace=True),
            nn.Conv2d(hidden, channels, 1), build_norm_layer(norm_cfg, channels)[1])

    def estimate_lambda(self, x: torch.Tensor) -> torch.Tensor:
        """λ of shape (N, C, 1, 1) from the global features of ``x``."""
        z = self.ToParam(x)
        return torch.sigmoid(z) if self.activation == 'sigmoid' else F.softplus(z)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return maxent_pool2d(x, self.estimate_lambda(x), *self._geom(x))

    def extra_repr(self) -> str:
        return f'{self.channels}, {super().extra_repr()}, activation={self.activation!r}'


@register_pooling
class GaussianPool2d(_Window):
    """iSP-Gaussian pooling ``μ + η·σ``: η = softplus(MU + SIGMA·ε) in training, softplus(MU) in eval.

    ``stochasticity`` chooses the noise ε: ``'CN'`` one draw per (sample, channel), ``'HWCN'`` one per
    output location, ``None`` no noise (deterministic in training too). Mean and standard deviation
    are over the valid pixels of a window (the reference's CUDA layer; its PyTorch layer counted
    padding). A one-pixel window (e.g. a 1x1 map) has σ = sqrt(1e-6): its output is
    ``x + η·1e-3``.
    """

    _STOCHASTICITY = (None, 'CN', 'HWCN')

    def __init__(self, channels: int, kernel_size: IntOrTuple = 2,
                 stride: Optional[IntOrTuple] = None, padding: IntOrTuple = 0,
                 ceil_mode: bool = False, stochasticity: Optional[str] = 'HWCN',
                 norm_cfg: Optional[dict] = None) -> None:
        super().__init__(kernel_size, stride, padding, ceil_mode)
        channels = _check_channels(channels)
        if stochasticity not in self._STOCHASTICITY:
            raise ValueError(f'stochasticity must be one of {self._STOCHASTICITY}, got {stochasticity!r}')
        self.channels = channels
        self.stochasticity = stochasticity
        norm_cfg = norm_cfg or dict(type='BN')
        hidden = channels // 2
        self.ToHidden = nn.Sequential(*_gap_conv_norm(channels, hidden, norm_cfg), nn.ReLU(inplace=True))
        self.ToMean = nn.Sequential(nn.Conv2d(hidden, channels, 1), build_norm_layer(norm_cfg, channels)[1])
        self.ToSigma = nn.Sequential(nn.Conv2d(hidden, channels, 1),
                                     build_norm_layer(norm_cfg, channels)[1], nn.Sigmoid())

    def estimate_eta(self, x: torch.Tensor, out_size: Optional[Sequence[int]] = None) -> torch.Tensor:
        """η of shape (N, C, 1, 1), or (N, C, *out_size) for 'HWCN' noise in training."""
        hidden = self.ToHidden(x)
        mean = self.ToMean(hidden)
        if not self.training or self.stochasticity is None:
            return F.softplus(mean)
        sigma = self.ToSigma(hidden)
        if self.stochasticity == 'CN':
            noise = torch.randn_like(mean)
        else:
            noise = mean.new_empty(mean.shape[:2] + tuple(out_size)).normal_()
        return F.softplus(mean + sigma * noise)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out_size = None
        if self.training and self.stochasticity == 'HWCN':
            out_size = pool_output_size(x, *self._geom(x))
        return gauss_pool2d(x, self.estimate_eta(x, out_size), *self._geom(x))

    def extra_repr(self) -> str:
        return f'{self.channels}, {super().extra_repr()}, stochasticity={self.stochasticity!r}'

