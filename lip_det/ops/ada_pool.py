"""adaPool: y = β·eDSCW + (1 − β)·eM per window: its plain-PyTorch definition, the checked public
functions and its entries in the op table (which register the fused operator's fake kernel and
autograd formula).

Over the valid pixels of each window (PyTorch pooling geometry: kernel, stride, padding,
ceil_mode; padded cells are not pixels), with m the window mean:

- eM (exponential maximum) is SoftPool: weights softmax(x);
- eDSCW (exponential Dice-Sørensen coefficient weighting): weights softmax(d),
  d_i = 2|x_i·m| / (x_i² + m²) ∈ [0, 1], largest for pixels whose magnitude is the mean's;
- adaPool blends them with β, any tensor that broadcasts to the output (N, C, *out): one value
  per channel, per sample, per output location, or a scalar. The op does not constrain β; the
  layer (``lip_det.layers.AdaPool2d``) keeps it in (0, 1).

Gradients are exact for x and β (the reference implementation holds the weights constant); the
fused kernels are csrc/ops/ada_pool/. ``em_pool*`` is ``soft_pool*``; ``edscw_pool*`` is adaPool
with β = 1.
"""
from __future__ import annotations

from typing import List, Optional, Tuple

import torch

from ._args import IntOrTuple, check_broadcasts_to_output, check_input, geometry
from ._window import acc_dtype, weighted_mean, window_count_sum
from .soft_pool import soft_pool1d, soft_pool2d, soft_pool3d
from .table import PoolOp, add_op, implementation

__all__ = ['ada_pool1d', 'ada_pool2d', 'ada_pool3d', 'edscw_pool1d', 'edscw_pool2d',
           'edscw_pool3d', 'em_pool1d', 'em_pool2d', 'em_pool3d', 'dsc', 'reference_ada_pool']

Ints = Tuple[int, ...]


# ----------------------------------------------------------------------------- definition
def dsc(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Dice-Sørensen similarity 2|ab|/(a² + b²) in [0, 1] (0 where a = b = 0), overflow-free."""
    p, q = a.abs(), b.abs()
    top = torch.maximum(p, q)
    # The ratio form 2r/(1 + r²), r = min/max: no square overflows. A 0/0 window is guarded
    # with a 1 in the denominator, not torch.where on the quotient, so its gradient is 0, not NaN.
    r = torch.minimum(p, q) / torch.where(top > 0, top, torch.ones_like(top))
    return 2 * r / (1 + r * r)


def reference_ada_pool(x: torch.Tensor, beta: torch.Tensor, kernel_size: Ints, stride: Ints,
                       padding: Ints, ceil_mode: bool = False) -> torch.Tensor:
    """adaPool in plain PyTorch (any number of spatial dims = ``len(kernel_size)``); exact autograd."""
    out_dtype = x.dtype
    x = x.to(acc_dtype(x))
    geom = (kernel_size, stride, padding, ceil_mode)
    count, total = window_count_sum(x, *geom)
    mean = total / count
    y_m = weighted_mean(x, lambda s: s, *geom)
    y_d = weighted_mean(x, lambda s: dsc(s, mean), *geom)
    b = beta.to(x.dtype)
    return (b * y_d + (1 - b) * y_m).to(out_dtype)


# ----------------------------------------------------------------------------- public functions
def _ada_pool(nd: int, x: torch.Tensor, beta: torch.Tensor, kernel_size: IntOrTuple,
              stride: Optional[IntOrTuple], padding: IntOrTuple, ceil_mode: bool) -> torch.Tensor:
    x = check_input('x', x, nd)
    k, s, p, out = geometry(x, nd, kernel_size, stride, padding, ceil_mode)
    beta = check_broadcasts_to_output('beta', beta, x, out)
    return implementation(f'ada_pool{nd}d')(x, beta, k, s, p, ceil_mode)


def ada_pool1d(x: torch.Tensor, beta: torch.Tensor, kernel_size: IntOrTuple,
               stride: Optional[IntOrTuple] = None, padding: IntOrTuple = 0,
               ceil_mode: bool = False) -> torch.Tensor:
    """adaPool over (N, C, L): β·eDSCW + (1 − β)·eM per window; β broadcasts to the output."""
    return _ada_pool(1, x, beta, kernel_size, stride, padding, ceil_mode)


def ada_pool2d(x: torch.Tensor, beta: torch.Tensor, kernel_size: IntOrTuple,
               stride: Optional[IntOrTuple] = None, padding: IntOrTuple = 0,
               ceil_mode: bool = False) -> torch.Tensor:
    """adaPool over (N, C, H, W): β·eDSCW + (1 − β)·eM per window; β broadcasts to the output."""
    return _ada_pool(2, x, beta, kernel_size, stride, padding, ceil_mode)


def ada_pool3d(x: torch.Tensor, beta: torch.Tensor, kernel_size: IntOrTuple,
               stride: Optional[IntOrTuple] = None, padding: IntOrTuple = 0,
               ceil_mode: bool = False) -> torch.Tensor:
    """adaPool over (N, C, D, H, W): β·eDSCW + (1 − β)·eM per window; β broadcasts to the output."""
    return _ada_pool(3, x, beta, kernel_size, stride, padding, ceil_mode)


def _edscw(nd: int, x: torch.Tensor, kernel_size: IntOrTuple, stride: Optional[IntOrTuple],
           padding: IntOrTuple, ceil_mode: bool) -> torch.Tensor:
    x = check_input('x', x, nd)
    return _ada_pool(nd, x, x.new_ones(1), kernel_size, stride, padding, ceil_mode)


def edscw_pool1d(x: torch.Tensor, kernel_size: IntOrTuple, stride: Optional[IntOrTuple] = None,
                 padding: IntOrTuple = 0, ceil_mode: bool = False) -> torch.Tensor:
    """eDSCW pooling over (N, C, L): Σ softmax(dsc(x, mean))·x per window (adaPool with β = 1)."""
    return _edscw(1, x, kernel_size, stride, padding, ceil_mode)


def edscw_pool2d(x: torch.Tensor, kernel_size: IntOrTuple, stride: Optional[IntOrTuple] = None,
                 padding: IntOrTuple = 0, ceil_mode: bool = False) -> torch.Tensor:
    """eDSCW pooling over (N, C, H, W): Σ softmax(dsc(x, mean))·x per window (β = 1)."""
    return _edscw(2, x, kernel_size, stride, padding, ceil_mode)


def edscw_pool3d(x: torch.Tensor, kernel_size: IntOrTuple, stride: Optional[IntOrTuple] = None,
                 padding: IntOrTuple = 0, ceil_mode: bool = False) -> torch.Tensor:
    """eDSCW pooling over (N, C, D, H, W): Σ softmax(dsc(x, mean))·x per window (β = 1)."""
    return _edscw(3, x, kernel_size, stride, padding, ceil_mode)


em_pool1d = soft_pool1d
em_pool2d = soft_pool2d
em_pool3d = soft_pool3d


# ----------------------------------------------------------------------------- table entries
def _beta(x: torch.Tensor, out: Ints, gen: torch.Generator) -> List[torch.Tensor]:
    shape = (1, x.shape[1]) + (1,) * (x.dim() - 2)
    return [torch.rand(shape, generator=gen, dtype=torch.float64).to(x.dtype)]


for _nd, _fn in ((1, ada_pool1d), (2, ada_pool2d), (3, ada_pool3d)):
    add_op(PoolOp(f'ada_pool{_nd}d', 'ada_pool', _nd, ('x', 'beta'), reference_ada_pool, _fn,
                  _beta))
