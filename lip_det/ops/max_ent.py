"""Max-Entropy pooling (GFGP): Σ x·e^{λx} / Σ e^{λx} over each window's valid pixels, λ per
plane or per output window.

Kernels: csrc/ops/weighted_pool/ (weighted_pool.h the math, weighted_pool_cpu.cpp,
weighted_pool_cuda.cu), shared with the other weighted means.
"""
from __future__ import annotations

from typing import List, Optional, Tuple

import torch

from ._args import IntOrTuple, per_window_args
from ._window import acc_dtype, weighted_mean
from .table import PoolOp, add_op, implementation

__all__ = ['maxent_pool2d', 'reference_maxent_pool2d']

Ints = Tuple[int, ...]


def reference_maxent_pool2d(x: torch.Tensor, lam: torch.Tensor, kernel_size: Ints, stride: Ints,
                            padding: Ints, ceil_mode: bool = False) -> torch.Tensor:
    """Max-Entropy pooling in plain PyTorch; λ broadcasts per input plane or per output window."""
    lam = lam.to(acc_dtype(x))
    return weighted_mean(x, lambda s: lam * s, kernel_size, stride, padding, ceil_mode)


def maxent_pool2d(x: torch.Tensor, lam: torch.Tensor, kernel_size: IntOrTuple,
                  stride: Optional[IntOrTuple] = None, padding: IntOrTuple = 0,
                  ceil_mode: bool = False) -> torch.Tensor:
    """Max-Entropy pooling: Σ x·e^{λx} / Σ e^{λx} over each window's valid pixels."""
    args = per_window_args('lam', x, lam, kernel_size, stride, padding, ceil_mode)
    return implementation('maxent_pool2d')(*args, ceil_mode)


def _lam(x: torch.Tensor, out: Ints, gen: torch.Generator) -> List[torch.Tensor]:
    n, c = x.shape[:2]
    return [torch.randn((n, c, 1, 1), generator=gen, dtype=torch.float64).to(x.dtype)]


add_op(PoolOp('maxent_pool2d', 'max_ent', 2, ('x', 'lam'), reference_maxent_pool2d,
              maxent_pool2d, _lam))
