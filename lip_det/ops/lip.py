"""LIP, local importance pooling: Σ x·e^logit / Σ e^logit over each window's valid pixels, and
the LIP-ResNet form whose logit ``coeff·sigmoid(instance_norm(pre))`` is made inside the op.

Kernels: csrc/ops/weighted_pool/ (weighted_pool.h the math, weighted_pool_cpu.cpp,
weighted_pool_cuda.cu), shared with the other weighted means.
"""
from __future__ import annotations

from typing import List, Optional, Tuple

import torch

from ._args import (IntOrTuple, check_companion, check_input_pair, check_positive, geometry)
from ._window import acc_dtype, weighted_mean
from .table import PoolOp, add_op, implementation

__all__ = ['lip_pool2d', 'lip_pool2d_gated', 'reference_lip_pool2d', 'reference_lip_pool2d_gated']

Ints = Tuple[int, ...]


# ----------------------------------------------------------------------------- definitions
def reference_lip_pool2d(x: torch.Tensor, logit: torch.Tensor, kernel_size: Ints, stride: Ints,
                         padding: Ints, ceil_mode: bool = False) -> torch.Tensor:
    """LIP in plain PyTorch: importance-weighted mean Σ x·e^logit / Σ e^logit per window."""
    return weighted_mean(x, lambda l: l, kernel_size, stride, padding, ceil_mode, logit_src=logit)


def reference_lip_pool2d_gated(x: torch.Tensor, pre: torch.Tensor, weight: torch.Tensor,
                               bias: torch.Tensor, eps: float, coeff: float, kernel_size: Ints,
                               stride: Ints, padding: Ints, ceil_mode: bool = False) -> torch.Tensor:
    """LIP with the logit ``coeff·sigmoid(instance_norm(pre, weight, bias, eps))``, plain PyTorch.

    A one-pixel plane normalises to 0 (``pre - mean`` is 0), so its logit is
    ``coeff·sigmoid(bias)``; the fused kernel computes the same.
    """
    acc = acc_dtype(pre)
    pre = pre.to(acc)
    # instance_norm written out: F.instance_norm refuses 1x1 planes in training mode.
    var, mean = torch.var_mean(pre, dim=(2, 3), keepdim=True, correction=0)
    z = (pre - mean) * torch.rsqrt(var + eps) * weight.to(acc)[:, None, None] \
        + bias.to(acc)[:, None, None]
    logit = (coeff * torch.sigmoid(z)).to(x.dtype)
    return reference_lip_pool2d(x, logit, kernel_size, stride, padding, ceil_mode)


# ----------------------------------------------------------------------------- public functions
def lip_pool2d(x: torch.Tensor, logit: torch.Tensor, kernel_size: IntOrTuple,
               stride: Optional[IntOrTuple] = None, padding: IntOrTuple = 0,
               ceil_mode: bool = False) -> torch.Tensor:
    """Local importance pooling: Σ x·e^logit / Σ e^logit over the valid pixels of each window."""
    x, logit = check_input_pair('logit', x, logit)
    k, s, p, _ = geometry(x, 2, kernel_size, stride, padding, ceil_mode)
    return implementation('lip_pool2d')(x, logit, k, s, p, ceil_mode)


def lip_pool2d_gated(x: torch.Tensor, pre: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor,
                     kernel_size: IntOrTuple, stride: Optional[IntOrTuple] = None,
                     padding: IntOrTuple = 0, ceil_mode: bool = False, eps: float = 1e-5,
                     coeff: float = 12.0) -> torch.Tensor:
    """LIP whose logit ``coeff·sigmoid(instance_norm(pre, weight, bias, eps))`` is made in the op.

    The same as ``lip_pool2d(x, coeff * torch.sigmoid(F.instance_norm(pre, None, None, weight,
    bias, eps=eps)), ...)``, LIP's norm -> SoftGate -> pool, but for the backward it keeps only
    ``x`` and ``pre`` (and recomputes the rest), not also the norm's output, the gate's output and
    the logit; and it skips their full-size passes over memory. Unlike ``F.instance_norm`` it
    accepts 1x1 planes: one pixel normalises to 0, so its logit is ``coeff·sigmoid(bias)``.
    """
    x, pre = check_input_pair('pre', x, pre)
    for name, t in (('weight', weight), ('bias', bias)):
        t = check_companion(name, t, x)
        if tuple(t.shape) != (x.shape[1],):
            raise ValueError(f'{name} must have shape (C,) = ({x.shape[1]},), got {tuple(t.shape)}')
    eps, coeff = check_positive('eps', eps), check_positive('coeff', coeff)
    k, s, p, _ = geometry(x, 2, kernel_size, stride, padding, ceil_mode)
    return implementation('lip_pool2d_gated')(x, pre, weight, bias, eps, coeff, k, s, p, ceil_mode)


# ----------------------------------------------------------------------------- table entries
def _logit(x: torch.Tensor, out: Ints, gen: torch.Generator) -> List[torch.Tensor]:
    return [torch.randn(x.shape, generator=gen, dtype=torch.float64).mul_(3.0).to(x.dtype)]


def _norm_gate(x: torch.Tensor, out: Ints, gen: torch.Generator) -> List[torch.Tensor]:
    c = x.shape[1]
    pre = torch.randn(x.shape, generator=gen, dtype=torch.float64).to(x.dtype)
    weight = (1 + 0.3 * torch.randn(c, generator=gen, dtype=torch.float64)).to(x.dtype)
    bias = (0.3 * torch.randn(c, generator=gen, dtype=torch.float64)).to(x.dtype)
    return [pre, weight, bias]


add_op(PoolOp('lip_pool2d', 'lip', 2, ('x', 'logit'), reference_lip_pool2d, lip_pool2d, _logit))
add_op(PoolOp('lip_pool2d_gated', 'lip', 2, ('x', 'pre', 'weight', 'bias'),
              reference_lip_pool2d_gated, lip_pool2d_gated, _norm_gate, scalars=('eps', 'coeff')))
