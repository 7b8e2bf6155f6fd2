"""Plain-PyTorch definitions of the four pooling operators.

These are the run-time fallback when the compiled extension is missing and the oracle the fused
kernels are tested against. Arguments are assumed validated (see ``lip_det.ops.pooling``):
``kernel_size``/``stride``/``padding`` are tuples with one int per spatial dimension.

Every op is written as a sum over kernel offsets of strided slices of the padded input, each
slice having the output's shape. That is the textbook definition of a pooling window, so it is
exact for every kernel/stride/padding/ceil_mode geometry, it lets us subtract the *window*
maximum before ``exp`` (the only subtraction that keeps every window finite when logits span
±1e4), and it never materialises a ``k``-times larger unfolded tensor.
"""
from __future__ import annotations

import itertools
from typing import Callable, Iterator, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F

Ints = Tuple[int, ...]

__all__ = [
    'pooled_size', 'lip_pool2d', 'lip_pool2d_gated', 'soft_pool1d', 'soft_pool2d', 'soft_pool3d',
    'maxent_pool2d', 'gauss_pool2d', 'GAUSS_VAR_EPS'
]

# Floor on the window variance of Gaussian pooling, as in iSP-Gaussian: keeps sigma's gradient finite.
GAUSS_VAR_EPS = 1e-6


def pooled_size(size: int, kernel: int, stride: int, padding: int, ceil_mode: bool) -> int:
    """Output length of one pooled dimension, with PyTorch's ceil_mode rule."""
    span = size + 2 * padding - kernel
    out = (-(-span // stride) if ceil_mode else span // stride) + 1
    # PyTorch: in ceil mode the last window must start inside the input or the left padding.
    if ceil_mode and (out - 1) * stride >= size + padding:
        out -= 1
    return out


def _window_slices(t: torch.Tensor, kernel: Ints, stride: Ints, padding: Ints, ceil_mode: bool,
                   fill: float) -> Iterator[torch.Tensor]:
    """Yield, for each kernel offset, the output-shaped strided slice of ``t`` padded by ``fill``."""
    nd = len(kernel)
    sizes = t.shape[-nd:]
    outs = [pooled_size(s, k, st, p, ceil_mode) for s, k, st, p in zip(sizes, kernel, stride, padding)]
    # Right padding covers windows that ceil_mode lets run past the input's end.
    right = [max(0, (o - 1) * st + k - s - p) for o, st, k, s, p in zip(outs, stride, kernel, sizes, padding)]
    pad: List[int] = []
    for p, r in reversed(list(zip(padding, right))):
        pad += [p, r]
    if any(pad):
        t = F.pad(t, pad, value=fill)
    lead = (slice(None),) * (t.dim() - nd)
    for offs in itertools.product(*(range(k) for k in kernel)):
        idx = tuple(slice(d, d + (o - 1) * st + 1, st) for d, o, st in zip(offs, outs, stride))
        yield t[lead + idx]


def _valid_mask(x: torch.Tensor, nd: int) -> torch.Tensor:
    """A ones tensor broadcastable to ``x``; padded with zeros it marks the valid pixels."""
    return x.new_ones((1,) * (x.dim() - nd) + tuple(x.shape[-nd:]))


def _acc_dtype(x: torch.Tensor) -> torch.dtype:
    # Half types accumulate in float32, as the fused kernels do.
    return torch.float32 if x.dtype in (torch.float16, torch.bfloat16) else x.dtype


def _weighted_mean(x: torch.Tensor, logit_of: Callable[[torch.Tensor], torch.Tensor],
                   kernel: Ints, stride: Ints, padding: Ints, ceil_mode: bool,
                   logit_src: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Σ x·e^l / Σ e^l over the valid pixels of each window; ``l = logit_of(slice of logit_src)``."""
    out_dtype = x.dtype
    acc = _acc_dtype(x)
    x = x.to(acc)
    src = x if logit_src is None else logit_src.to(acc)
    nd = len(kernel)
    geom = (kernel, stride, padding, ceil_mode)
    valid = [v.bool() for v in _window_slices(_valid_mask(x, nd), *geom, fill=0.0)]
    logits = [torch.where(v, logit_of(s), float('-inf'))
              for v, s in zip(valid, _window_slices(src, *geom, fill=0.0))]
    # Each window has at least one valid pixel (padding <= kernel/2), so its max is finite.
    peak = logits[0]
    for lg in logits[1:]:
        peak = torch.maximum(peak, lg)
    num = den = None
    for lg, xs in zip(logits, _window_slices(x, *geom, fill=0.0)):
        w = torch.exp(lg - peak)
        num = w * xs if num is None else num + w * xs
        den = w if den is None else den + w
    return (num / den).to(out_dtype)


def lip_pool2d(x: torch.Tensor, logit: torch.Tensor, kernel_size: Ints, stride: Ints,
               padding: Ints, ceil_mode: bool = False) -> torch.Tensor:
    """LIP: importance-weighted mean Σ x·e^logit / Σ e^logit over each window's valid pixels."""
    return _weighted_mean(x, lambda l: l, kernel_size, stride, padding, ceil_mode, logit_src=logit)


def lip_pool2d_gated(x: torch.Tensor, pre: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor,
                     eps: float, coeff: float, kernel_size: Ints, stride: Ints, padding: Ints,
                     ceil_mode: bool = False) -> torch.Tensor:
    """LIP with the logit ``coeff·sigmoid(instance_norm(pre, weight, bias, eps))``.

    A one-pixel plane normalises to 0 (``pre - mean`` is 0), so its logit is
    ``coeff·sigmoid(bias)``; the fused kernel computes the same.
    """
    acc = _acc_dtype(pre)
    pre = pre.to(acc)
    # instance_norm written out: F.instance_norm refuses 1x1 planes in training mode.
    var, mean = torch.var_mean(pre, dim=(2, 3), keepdim=True, correction=0)
    z = (pre - mean) * torch.rsqrt(var + eps) * weight.to(acc)[:, None, None] \
        + bias.to(acc)[:, None, None]
    logit = (coeff * torch.sigmoid(z)).to(x.dtype)
    return lip_pool2d(x, logit, kernel_size, stride, padding, ceil_mode)


def _soft_pool(x: torch.Tensor, kernel_size: Ints, stride: Ints, padding: Ints,
               ceil_mode: bool) -> torch.Tensor:
    return _weighted_mean(x, lambda l: l, kernel_size, stride, padding, ceil_mode)


def soft_pool1d(x: torch.Tensor, kernel_size: Ints, stride: Ints, padding: Ints,
                ceil_mode: bool = False) -> torch.Tensor:
    """SoftPool over the last dimension: Σ softmax(x)·x per window and channel."""
    return _soft_pool(x, kernel_size, stride, padding, ceil_mode)


def soft_pool2d(x: torch.Tensor, kernel_size: Ints, stride: Ints, padding: Ints,
                ceil_mode: bool = False) -> torch.Tensor:
    """SoftPool over the last two dimensions: Σ softmax(x)·x per window and channel."""
    return _soft_pool(x, kernel_size, stride, padding, ceil_mode)


def soft_pool3d(x: torch.Tensor, kernel_size: Ints, stride: Ints, padding: Ints,
                ceil_mode: bool = False) -> torch.Tensor:
    """SoftPool over the last three dimensions: Σ softmax(x)·x per window and channel."""
    return _soft_pool(x, kernel_size, stride, padding, ceil_mode)


def maxent_pool2d(x: torch.Tensor, lam: torch.Tensor, kernel_size: Ints, stride: Ints,
                  padding: Ints, ceil_mode: bool = False) -> torch.Tensor:
    """Max-Entropy pooling: Σ x·e^{λx} / Σ e^{λx}; λ broadcasts per input or per output window."""
    lam = lam.to(_acc_dtype(x))
    return _weighted_mean(x, lambda s: lam * s, kernel_size, stride, padding, ceil_mode)


def gauss_pool2d(x: torch.Tensor, eta: torch.Tensor, kernel_size: Ints, stride: Ints,
                 padding: Ints, ceil_mode: bool = False) -> torch.Tensor:
    """Gaussian pooling: μ + η·σ of each window's valid pixels, σ = sqrt(max(var, 1e-6))."""
    out_dtype = x.dtype
    acc = _acc_dtype(x)
    x = x.to(acc)
    geom = (kernel_size, stride, padding, ceil_mode)
    count = s1 = s2 = None
    for v, xs in zip(_window_slices(_valid_mask(x, 2), *geom, fill=0.0),
                     _window_slices(x, *geom, fill=0.0)):
        count = v if count is None else count + v
        s1 = xs if s1 is None else s1 + xs
        s2 = xs * xs if s2 is None else s2 + xs * xs
    mean = s1 / count
    var = s2 / count - mean * mean
    sigma = torch.sqrt(torch.clamp(var, min=GAUSS_VAR_EPS))
    return (mean + eta.to(acc) * sigma).to(out_dtype)
