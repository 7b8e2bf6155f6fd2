"""Gaussian pooling (iSP-Gaussian): μ + η·σ of each window's valid pixels, σ² floored at 1e-6.

Kernels: csrc/ops/gauss_pool/ (gauss_pool.h the math, gauss_pool_cpu.cpp, gauss_pool_cuda.cu).
"""
from __future__ import annotations

from typing import List, Optional, Tuple

import torch

from ._args import IntOrTuple, per_window_args
from ._window import acc_dtype, window_count_sum
from .table import PoolOp, add_op, implementation

__all__ = ['gauss_pool2d', 'reference_gauss_pool2d', 'GAUSS_VAR_EPS']

Ints = Tuple[int, ...]

# Floor on the window variance, as in iSP-Gaussian: keeps σ's gradient finite.
GAUSS_VAR_EPS = 1e-6


def reference_gauss_pool2d(x: torch.Tensor, eta: torch.Tensor, kernel_size: Ints, stride: Ints,
                           padding: Ints, ceil_mode: bool = False) -> torch.Tensor:
    """Gaussian pooling in plain PyTorch: μ + η·σ, σ = sqrt(max(var, 1e-6))."""
    out_dtype = x.dtype
    acc = acc_dtype(x)
    x = x.to(acc)
    count, s1, s2 = window_count_sum(x, kernel_size, stride, padding, ceil_mode, squares=True)
    mean = s1 / count
    var = s2 / count - mean * mean
    sigma = torch.sqrt(torch.clamp(var, min=GAUSS_VAR_EPS))
    return (mean + eta.to(acc) * sigma).to(out_dtype)


def gauss_pool2d(x: torch.Tensor, eta: torch.Tensor, kernel_size: IntOrTuple,
                 stride: Optional[IntOrTuple] = None, padding: IntOrTuple = 0,
                 ceil_mode: bool = False) -> torch.Tensor:
    """Gaussian pooling: μ + η·σ of each window's valid pixels (σ² floored at 1e-6)."""
    args = per_window_args('eta', x, eta, kernel_size, stride, padding, ceil_mode)
    return implementation('gauss_pool2d')(*args, ceil_mode)


def _eta(x: torch.Tensor, out: Ints, gen: torch.Generator) -> List[torch.Tensor]:
    c = x.shape[1]
    return [torch.rand((1, c, 1, 1), generator=gen, dtype=torch.float64).to(x.dtype)]


add_op(PoolOp('gauss_pool2d', 'gaussian', 2, ('x', 'eta'), reference_gauss_pool2d, gauss_pool2d,
              _eta))
