"""SoftPool: Σ softmax(x)·x over each window's valid pixels, in 1, 2 and 3 spatial dimensions.

Kernels: csrc/ops/weighted_pool/ (weighted_pool.h the math, weighted_pool_cpu.cpp,
weighted_pool_cuda.cu), shared with the other weighted means.
"""
from __future__ import annotations

from typing import List, Optional, Tuple

import torch

from ._args import IntOrTuple, check_input, geometry
from ._window import weighted_mean
from .table import PoolOp, add_op, implementation

__all__ = ['soft_pool1d', 'soft_pool2d', 'soft_pool3d', 'reference_soft_pool']

Ints = Tuple[int, ...]


def reference_soft_pool(x: torch.Tensor, kernel_size: Ints, stride: Ints, padding: Ints,
                        ceil_mode: bool = False) -> torch.Tensor:
    """SoftPool in plain PyTorch over the last ``len(kernel_size)`` dimensions."""
    return weighted_mean(x, lambda l: l, kernel_size, stride, padding, ceil_mode)


def _soft_pool(nd: int, x: torch.Tensor, kernel_size: IntOrTuple, stride: Optional[IntOrTuple],
               padding: IntOrTuple, ceil_mode: bool) -> torch.Tensor:
    x = check_input('x', x, nd)
    k, s, p, _ = geometry(x, nd, kernel_size, stride, padding, ceil_mode)
    return implementation(f'soft_pool{nd}d')(x, k, s, p, ceil_mode)


def soft_pool1d(x: torch.Tensor, kernel_size: IntOrTuple, stride: Optional[IntOrTuple] = None,
                padding: IntOrTuple = 0, ceil_mode: bool = False) -> torch.Tensor:
    """SoftPool over (N, C, L): Σ softmax(x)·x per window and channel."""
    return _soft_pool(1, x, kernel_size, stride, padding, ceil_mode)


def soft_pool2d(x: torch.Tensor, kernel_size: IntOrTuple, stride: Optional[IntOrTuple] = None,
                padding: IntOrTuple = 0, ceil_mode: bool = False) -> torch.Tensor:
    """SoftPool over (N, C, H, W): Σ softmax(x)·x per window and channel."""
    return _soft_pool(2, x, kernel_size, stride, padding, ceil_mode)


def soft_pool3d(x: torch.Tensor, kernel_size: IntOrTuple, stride: Optional[IntOrTuple] = None,
                padding: IntOrTuple = 0, ceil_mode: bool = False) -> torch.Tensor:
    """SoftPool over (N, C, D, H, W): Σ softmax(x)·x per window and channel."""
    return _soft_pool(3, x, kernel_size, stride, padding, ceil_mode)


def _none(x: torch.Tensor, out: Ints, gen: torch.Generator) -> List[torch.Tensor]:
    return []


for _nd, _fn in ((1, soft_pool1d), (2, soft_pool2d), (3, soft_pool3d)):
    add_op(PoolOp(f'soft_pool{_nd}d', 'soft_pool', _nd, ('x',), reference_soft_pool, _fn, _none))
