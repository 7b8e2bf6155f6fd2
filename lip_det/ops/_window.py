"""Pooling-window machinery shared by every method's plain-PyTorch definition.

A window is written as a sum over kernel offsets of strided slices of the padded input, each
slice having the output's shape: the textbook definition of a pooling window, exact for every
kernel/stride/padding/ceil_mode geometry, able to subtract each *window's* maximum before ``exp``
(the only shift that keeps every window finite when logits span ±1e4), and without a ``k``-times
larger unfolded tensor. Geometry arguments are tuples with one int per spatial dimension.
"""
from __future__ import annotations

import itertools
from typing import Callable, Iterator, List, Optional, Tuple

import torch
import torch.nn.functional as F

Ints = Tuple[int, ...]

__all__ = ['pooled_size', 'window_slices', 'valid_mask', 'acc_dtype', 'weighted_mean',
           'window_count_sum']


def pooled_size(size: int, kernel: int, stride: int, padding: int, ceil_mode: bool) -> int:
    """Output length of one pooled dimension, with PyTorch's ceil_mode rule."""
    span = size + 2 * padding - kernel
    out = (-(-span // stride) if ceil_mode else span // stride) + 1
    # PyTorch: in ceil mode the last window must start inside the input or the left padding.
    if ceil_mode and (out - 1) * stride >= size + padding:
        out -= 1
    return out


def window_slices(t: torch.Tensor, kernel: Ints, stride: Ints, padding: Ints, ceil_mode: bool,
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


def valid_mask(x: torch.Tensor, nd: int) -> torch.Tensor:
    """A ones tensor broadcastable to ``x``; padded with zeros it marks the valid pixels."""
    return x.new_ones((1,) * (x.dim() - nd) + tuple(x.shape[-nd:]))


def acc_dtype(x: torch.Tensor) -> torch.dtype:
    """The accumulation type: float32 for half types (as the fused kernels do), else x's dtype."""
    return torch.float32 if x.dtype in (torch.float16, torch.bfloat16) else x.dtype


def weighted_mean(x: torch.Tensor, logit_of: Callable[[torch.Tensor], torch.Tensor],
                  kernel: Ints, stride: Ints, padding: Ints, ceil_mode: bool,
                  logit_src: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Σ x·e^l / Σ e^l over the valid pixels of each window; ``l = logit_of(slice of logit_src)``."""
    out_dtype = x.dtype
    acc = acc_dtype(x)
    x = x.to(acc)
    src = x if logit_src is None else logit_src.to(acc)
    nd = len(kernel)
    geom = (kernel, stride, padding, ceil_mode)
    valid = [v.bool() for v in window_slices(valid_mask(x, nd), *geom, fill=0.0)]
    logits = [torch.where(v, logit_of(s), float('-inf'))
              for v, s in zip(valid, window_slices(src, *geom, fill=0.0))]
    # Each window has at least one valid pixel (padding <= kernel/2), so its max is finite.
    peak = logits[0]
    for lg in logits[1:]:
        peak = torch.maximum(peak, lg)
    num = den = None
    for lg, xs in zip(logits, window_slices(x, *geom, fill=0.0)):
        w = torch.exp(lg - peak)
        num = w * xs if num is None else num + w * xs
        den = w if den is None else den + w
    return (num / den).to(out_dtype)


def window_count_sum(x: torch.Tensor, kernel: Ints, stride: Ints, padding: Ints, ceil_mode: bool,
                     squares: bool = False) -> Tuple[torch.Tensor, ...]:
    """Per window: the number of valid pixels, Σx and (with ``squares``) Σx², in x's dtype."""
    geom = (kernel, stride, padding, ceil_mode)
    count = s1 = s2 = None
    for v, xs in zip(window_slices(valid_mask(x, len(kernel)), *geom, fill=0.0),
                     window_slices(x, *geom, fill=0.0)):
        count = v if count is None else count + v
        s1 = xs if s1 is None else s1 + xs
        if squares:
            s2 = xs * xs if s2 is None else s2 + xs * xs
    return (count, s1, s2) if squares else (count, s1)
