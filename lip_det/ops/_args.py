"""Argument checks shared by every public pooling function: a bad argument gets an error that
names it and says what is accepted, before any kernel runs."""
from __future__ import annotations

from typing import Optional, Sequence, Tuple, Union

import torch

from ._window import pooled_size

IntOrTuple = Union[int, Sequence[int]]

__all__ = ['IntOrTuple', 'geometry', 'pool_output_size', 'check_input', 'check_companion',
           'check_input_pair', 'check_per_window', 'per_window_args', 'check_broadcasts_to_output',
           'check_positive']

_LAYOUTS = {1: '(N, C, L)', 2: '(N, C, H, W)', 3: '(N, C, D, H, W)'}


def _ntuple(name: str, value: IntOrTuple, nd: int) -> Tuple[int, ...]:
    if isinstance(value, bool):
        raise TypeError(f'{name} must be an int or a tuple of {nd} ints, got {value!r}')
    if isinstance(value, int):
        return (value,) * nd
    if isinstance(value, torch.Size) or (isinstance(value, (tuple, list))
                                         and all(isinstance(v, int) and not isinstance(v, bool)
                                                 for v in value)):
        if len(value) == 1:
            return (int(value[0]),) * nd
        if len(value) == nd:
            return tuple(int(v) for v in value)
    raise TypeError(f'{name} must be an int or a tuple of {nd} ints, got {value!r}')


def geometry(x: torch.Tensor, nd: int, kernel_size: IntOrTuple, stride: Optional[IntOrTuple],
             padding: IntOrTuple, ceil_mode: bool) -> Tuple[Tuple[int, ...], ...]:
    """Normalise and check kernel/stride/padding; return them with the output spatial size."""
    k = _ntuple('kernel_size', kernel_size, nd)
    s = k if stride is None else _ntuple('stride', stride, nd)
    p = _ntuple('padding', padding, nd)
    if any(v <= 0 for v in k):
        raise ValueError(f'kernel_size must be positive, got {kernel_size!r}')
    if any(v <= 0 for v in s):
        raise ValueError(f'stride must be positive (or None for stride = kernel_size), got {stride!r}')
    if any(v < 0 for v in p):
        raise ValueError(f'padding must be non-negative, got {padding!r}')
    if any(2 * pv > kv for pv, kv in zip(p, k)):
        raise ValueError(f'padding must be at most half of kernel_size, got padding={p} for '
                         f'kernel_size={k}')
    if not isinstance(ceil_mode, bool):
        raise TypeError(f'ceil_mode must be a bool, got {ceil_mode!r}')
    sizes = tuple(x.shape[-nd:])
    out = tuple(pooled_size(*a, ceil_mode) for a in zip(sizes, k, s, p))
    if any(o < 1 for o in out):
        raise ValueError(f'input spatial size {sizes} is too small for kernel_size={k}, '
                         f'stride={s}, padding={p}: the output would be {out}')
    return k, s, p, out


def pool_output_size(x: torch.Tensor, kernel_size: IntOrTuple, stride: Optional[IntOrTuple] = None,
                     padding: IntOrTuple = 0, ceil_mode: bool = False, nd: int = 2) -> Tuple[int, ...]:
    """Spatial output size of pooling ``x`` with this geometry (checked like the ops check it)."""
    return geometry(x, nd, kernel_size, stride, padding, ceil_mode)[3]


def check_input(name: str, x: object, nd: int) -> torch.Tensor:
    """``x`` must be a non-empty floating-point (N, C, *spatial) tensor with ``nd`` spatial dims."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f'{name} must be a torch.Tensor, got {type(x).__name__}')
    if not x.is_floating_point():
        raise TypeError(f'{name} must be a floating-point tensor (float16, bfloat16, float32 or '
                        f'float64), got {x.dtype}')
    if x.dim() != nd + 2:
        raise ValueError(f'{name} must be a {nd + 2}-D tensor {_LAYOUTS[nd]}, got shape '
                         f'{tuple(x.shape)}')
    if x.numel() == 0:
        raise ValueError(f'{name} must not be empty, got shape {tuple(x.shape)}')
    return x


def check_companion(name: str, t: object, x: torch.Tensor) -> torch.Tensor:
    """A second tensor argument: floating point, on ``x``'s device."""
    if not isinstance(t, torch.Tensor):
        raise TypeError(f'{name} must be a torch.Tensor, got {type(t).__name__}')
    if not t.is_floating_point():
        raise TypeError(f'{name} must be a floating-point tensor, got {t.dtype}')
    if t.device != x.device:
        raise ValueError(f'{name} must be on the same device as x ({x.device}), got {t.device}')
    return t


def check_input_pair(name: str, x: object, t: object) -> Tuple[torch.Tensor, torch.Tensor]:
    """Check a 2-D op's x and its same-shape companion map (logit, pre); promote under autocast."""
    x = check_input('x', x, 2)
    t = check_companion(name, t, x)
    if t.shape != x.shape:
        raise ValueError(f'{name} must have the shape of x {tuple(x.shape)}, got {tuple(t.shape)}')
    if t.dtype != x.dtype:
        if not torch.is_autocast_enabled(x.device.type):
            raise TypeError(f'{name} must have the dtype of x ({x.dtype}), got {t.dtype}')
        # Under autocast a float32 norm layer often feeds a half-precision x: promote, like
        # autocast's own mixed-input ops do, instead of refusing a legitimate AMP model.
        common = torch.promote_types(x.dtype, t.dtype)
        x, t = x.to(common), t.to(common)
    return x, t


def check_per_window(name: str, t: object, x: torch.Tensor, out: Tuple[int, ...]) -> torch.Tensor:
    """Check a λ/η tensor against the accepted layouts and cast it to ``x``'s dtype."""
    t = check_companion(name, t, x)
    n, c = x.shape[:2]
    layouts = [(1,), (1, c, 1, 1), (n, c, 1, 1), (n, 1, 1, 1), (n, c) + tuple(out)]
    if tuple(t.shape) not in layouts:
        raise ValueError(f'{name} must have one of the shapes {layouts} (scalar, per channel, per '
                         f'sample and channel, per sample, or per output location), got '
                         f'{tuple(t.shape)}')
    return t.to(x.dtype)


def per_window_args(param_name: str, x: object, param: object, kernel_size: IntOrTuple,
                    stride: Optional[IntOrTuple], padding: IntOrTuple, ceil_mode: bool) -> tuple:
    """Check a 2-D op's (x, λ/η, geometry); return ``(x, param, kernel, stride, padding)``."""
    x = check_input('x', x, 2)
    k, s, p, out = geometry(x, 2, kernel_size, stride, padding, ceil_mode)
    return x, check_per_window(param_name, param, x, out), k, s, p


def check_broadcasts_to_output(name: str, t: object, x: torch.Tensor,
                               out: Sequence[int]) -> torch.Tensor:
    """A tensor that must broadcast to the output shape (N, C, *out), e.g. adaPool's β."""
    t = check_companion(name, t, x)
    shape = (*x.shape[:2], *out)
    try:
        ok = torch.broadcast_shapes(t.shape, shape) == shape
    except RuntimeError:
        ok = False
    if not ok:
        n, c = shape[:2]
        ones = (1,) * len(out)
        raise ValueError(f'{name} must broadcast to the output shape {shape}: e.g. (1,) scalar, '
                         f'{(1, c) + ones} per channel, {(n, c) + ones} per sample and channel, '
                         f'{tuple(out)} per output location, or {shape}; got {tuple(t.shape)}')
    return t


def check_positive(name: str, value: object) -> float:
    """A positive finite number (a Python int or float), returned as float."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < float('inf'):
        raise ValueError(f'{name} must be a positive finite number, got {value!r}')
    return float(value)
