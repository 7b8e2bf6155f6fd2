"""adaPool layers: β·eDSCW + (1 − β)·eM pooling with a learned β per channel.

The reference layer learns one β per *output location* (shape (oH, oW)), so a model runs at one
input size only, and it leaves β unconstrained. Detection feeds many input sizes, so here β is
one value per channel, β_c = sigmoid(θ_c) ∈ (0, 1): a convex blend of the two poolings whatever
the input size, and with no parameter count that depends on it. θ starts at logit(init_beta).
"""
from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn as nn

from lip_det.ops import ada_pool1d, ada_pool2d, ada_pool3d

from .pooling import IntOrTuple, _Window, register_pooling

__all__ = ['AdaPool1d', 'AdaPool2d', 'AdaPool3d']


class _AdaPool(_Window):
    """adaPool over ``nd`` spatial dims with β = sigmoid(beta_logit), one per channel."""

    _OPS = {1: ada_pool1d, 2: ada_pool2d, 3: ada_pool3d}

    def __init__(self, channels: int, kernel_size: IntOrTuple = 2,
                 stride: Optional[IntOrTuple] = None, padding: IntOrTuple = 0,
                 ceil_mode: bool = False, init_beta: float = 0.5) -> None:
        super().__init__(kernel_size, stride, padding, ceil_mode)
        if isinstance(channels, bool) or not isinstance(channels, int) or channels < 1:
            raise ValueError(f'channels must be a positive int, got {channels!r}')
        if isinstance(init_beta, bool) or not isinstance(init_beta, (int, float)) or \
                not 0 < init_beta < 1:
            raise ValueError(f'init_beta must be a number in (0, 1) (β = sigmoid of the learned '
                             f'parameter), got {init_beta!r}')
        self.channels = channels
        self.beta_logit = nn.Parameter(torch.full((channels,), math.log(init_beta / (1 - init_beta))))

    def beta(self) -> torch.Tensor:
        """β of shape (1, C, 1, ...) (broadcasts to the output)."""
        return torch.sigmoid(self.beta_logit).view(1, -1, *(1,) * self.nd)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == self.nd + 2 and x.shape[1] != self.channels:
            raise ValueError(f'{type(self).__name__} was built for {self.channels} channels, got '
                             f'input of shape {tuple(x.shape)}')
        return self._OPS[self.nd](x, self.beta().to(x.dtype), *self._geom(x))

    def extra_repr(self) -> str:
        return f'{self.channels}, {super().extra_repr()}'


@register_pooling
class AdaPool1d(_AdaPool):
    """adaPool over (N, C, L) with a learned β ∈ (0, 1) per channel."""

    nd = 1


@register_pooling
class AdaPool2d(_AdaPool):
    """adaPool over (N, C, H, W) with a learned β ∈ (0, 1) per channel."""

    nd = 2


@register_pooling
class AdaPool3d(_AdaPool):
    """adaPool over (N, C, D, H, W) with a learned β ∈ (0, 1) per channel."""

    nd = 3
