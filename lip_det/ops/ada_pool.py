"""adaPool: y = β·eDSCW + (1 − β)·eM per window, its plain-PyTorch definition, the checked public
functions and the fused operator's fake kernel and autograd formula.

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

from typing import Optional, Sequence, Tuple

import torch

from . import _ext, pooling
from .pooling import IntOrTuple
from .reference import _acc_dtype, _valid_mask, _weighted_mean, _window_slices

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
    acc = _acc_dtype(x)
    x = x.to(acc)
    nd = len(kernel_size)
    geom = (kernel_size, stride, padding, ceil_mode)
    count = total = None
    for v, xs in zip(_window_slices(_valid_mask(x, nd), *geom, fill=0.0),
                     _window_slices(x, *geom, fill=0.0)):
        count = v if count is None else count + v
        total = xs if total is None else total + xs
    mean = total / count
    y_m = _weighted_mean(x, lambda s: s, *geom)
    y_d = _weighted_mean(x, lambda s: dsc(s, mean), *geom)
    b = beta.to(acc)
    return (b * y_d + (1 - b) * y_m).to(out_dtype)


# ----------------------------------------------------------------------------- fused op
def _register_fused() -> None:
    """Fake kernels and autograd of torch.ops.lip_det.ada_pool{1,2,3}d (the extension is loaded).

    adaPool's ops have the (x, other tensor, geometry) signature of the λ/η ops, so they share
    their fake kernels and autograd formula (double backward through the definition above).
    """
    from .fused import _fake_backward_pair, _fake_pool, _make_pair_backward, _setup_pair

    ops = torch.ops.lip_det
    for nd in (1, 2, 3):
        name = f'lip_det::ada_pool{nd}d'
        torch.library.register_fake(name, _fake_pool)
        torch.library.register_fake(f'{name}_backward', _fake_backward_pair)
        torch.library.register_autograd(
            name, _make_pair_backward(getattr(ops, f'ada_pool{nd}d_backward'), reference_ada_pool),
            setup_context=_setup_pair)


if _ext.available():
    _register_fused()


# ----------------------------------------------------------------------------- public functions
def _check_beta(beta: object, x: torch.Tensor, out: Sequence[int]) -> torch.Tensor:
    beta = pooling._check_companion('beta', beta, x)
    shape = (*x.shape[:2], *out)
    try:
        ok = torch.broadcast_shapes(beta.shape, shape) == shape
    except RuntimeError:
        ok = False
    if not ok:
        n, c = shape[:2]
        raise ValueError(f'beta must broadcast to the output shape {shape}: e.g. (1,) scalar, '
                         f'(1, {c}, 1, ...) per channel, ({n}, {c}, 1, ...) per sample and '
                         f'channel, {tuple(out)} per output location, or {shape}; got '
                         f'{tuple(beta.shape)}')
    return beta


def _ada_pool(nd: int, x: torch.Tensor, beta: torch.Tensor, kernel_size: IntOrTuple,
              stride: Optional[IntOrTuple], padding: IntOrTuple, ceil_mode: bool) -> torch.Tensor:
    x = pooling._check_input('x', x, nd)
    k, s, p, out = pooling._geometry(x, nd, kernel_size, stride, padding, ceil_mode)
    beta = _check_beta(beta, x, out)
    if pooling.backend() == 'fused':
        return getattr(torch.ops.lip_det, f'ada_pool{nd}d')(x, beta, list(k), list(s), list(p),
                                                            ceil_mode)
    return reference_ada_pool(x, beta, k, s, p, ceil_mode)


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
    x = pooling._check_input('x', x, nd)
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


em_pool1d = pooling.soft_pool1d
em_pool2d = pooling.soft_pool2d
em_pool3d = pooling.soft_pool3d
