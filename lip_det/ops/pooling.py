"""Public pooling functions: validate arguments, then run the fused or the plain-PyTorch op."""
from __future__ import annotations

import os
import warnings
from types import ModuleType
from typing import Optional, Sequence, Tuple, Union

import torch

from . import _ext, reference
from .reference import pooled_size

IntOrTuple = Union[int, Sequence[int]]

__all__ = [
    'lip_pool2d', 'lip_pool2d_gated', 'soft_pool1d', 'soft_pool2d', 'soft_pool3d',
    'maxent_pool2d', 'gauss_pool2d', 'fused_available', 'backend', 'pool_output_size'
]

BACKEND_ENV = 'LIP_DET_OPS'
_BACKENDS = ('auto', 'fused', 'reference')
_warned_missing = False


def fused_available() -> bool:
    """Whether the compiled ``lip_det._C`` operators are loaded."""
    return _ext.available()


def backend() -> str:
    """The op path in use now: ``'fused'`` or ``'reference'`` (``LIP_DET_OPS`` can force one)."""
    choice = os.environ.get(BACKEND_ENV, 'auto').strip().lower() or 'auto'
    if choice not in _BACKENDS:
        raise ValueError(f'{BACKEND_ENV} must be one of {_BACKENDS}, got {choice!r}')
    if choice == 'reference':
        return 'reference'
    if _ext.available():
        return 'fused'
    if choice == 'fused':
        raise RuntimeError(f'{BACKEND_ENV}=fused but the compiled extension lip_det._C is not '
                           f'available: {_ext.load_error()}. Reinstall with `pip install -e .`.')
    global _warned_missing
    # Not while dynamo traces this: it cannot trace warnings.warn (a graph break, an error under
    # fullgraph=True); the first eager call warns instead.
    if not _warned_missing and not torch.compiler.is_compiling():
        _warned_missing = True
        warnings.warn('lip_det: compiled pooling operators not available '
                      f'({_ext.load_error()}); using the slower plain-PyTorch implementations. '
                      f'Reinstall with `pip install -e .` to build them, or set '
                      f'{BACKEND_ENV}=reference to silence this warning.', RuntimeWarning,
                      stacklevel=3)
    return 'reference'


def _impl() -> ModuleType:
    if backend() == 'fused':
        from . import fused
        return fused
    return reference


# ----------------------------------------------------------------------------- argument checks
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


def _geometry(x: torch.Tensor, nd: int, kernel_size: IntOrTuple, stride: Optional[IntOrTuple],
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


def _check_input(name: str, x: object, nd: int) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f'{name} must be a torch.Tensor, got {type(x).__name__}')
    if not x.is_floating_point():
        raise TypeError(f'{name} must be a floating-point tensor (float16, bfloat16, float32 or '
                        f'float64), got {x.dtype}')
    layout = {1: '(N, C, L)', 2: '(N, C, H, W)', 3: '(N, C, D, H, W)'}[nd]
    if x.dim() != nd + 2:
        raise ValueError(f'{name} must be a {nd + 2}-D tensor {layout}, got shape {tuple(x.shape)}')
    if x.numel() == 0:
        raise ValueError(f'{name} must not be empty, got shape {tuple(x.shape)}')
    return x


def _check_companion(name: str, t: object, x: torch.Tensor) -> torch.Tensor:
    if not isinstance(t, torch.Tensor):
        raise TypeError(f'{name} must be a torch.Tensor, got {type(t).__name__}')
    if not t.is_floating_point():
        raise TypeError(f'{name} must be a floating-point tensor, got {t.dtype}')
    if t.device != x.device:
        raise ValueError(f'{name} must be on the same device as x ({x.device}), got {t.device}')
    return t


def _check_per_window(name: str, t: object, x: torch.Tensor, out: Tuple[int, ...]) -> torch.Tensor:
    """Check a λ/η tensor against the accepted layouts and cast it to ``x``'s dtype."""
    t = _check_companion(name, t, x)
    n, c = x.shape[:2]
    layouts = [(1,), (1, c, 1, 1), (n, c, 1, 1), (n, 1, 1, 1), (n, c) + tuple(out)]
    if tuple(t.shape) not in layouts:
        raise ValueError(f'{name} must have one of the shapes {layouts} (scalar, per channel, per '
                         f'sample and channel, per sample, or per output location), got '
                         f'{tuple(t.shape)}')
    return t.to(x.dtype)


def pool_output_size(x: torch.Tensor, kernel_size: IntOrTuple, stride: Optional[IntOrTuple] = None,
                     padding: IntOrTuple = 0, ceil_mode: bool = False, nd: int = 2) -> Tuple[int, ...]:
    """Spatial output size of pooling ``x`` with this geometry (checked like the ops check it)."""
    return _geometry(x, nd, kernel_size, stride, padding, ceil_mode)[3]


def _check_input_pair(name: str, x: object, t: object) -> Tuple[torch.Tensor, torch.Tensor]:
    """Check a 2-D op's x and its same-shape companion map (logit, pre); promote under autocast."""
    x = _check_input('x', x, 2)
    t = _check_companion(name, t, x)
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


# ----------------------------------------------------------------------------- public ops
def lip_pool2d(x: torch.Tensor, logit: torch.Tensor, kernel_size: IntOrTuple,
               stride: Optional[IntOrTuple] = None, padding: IntOrTuple = 0,
               ceil_mode: bool = False) -> torch.Tensor:
    """Local importance pooling: Σ x·e^logit / Σ e^logit over the valid pixels of each window."""
    x, logit = _check_input_pair('logit', x, logit)
    k, s, p, _ = _geometry(x, 2, kernel_size, stride, padding, ceil_mode)
    return _impl().lip_pool2d(x, logit, k, s, p, ceil_mode)


def _check_positive(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < float('inf'):
        raise ValueError(f'{name} must be a positive finite number, got {value!r}')
    return float(value)


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
    x, pre = _check_input_pair('pre', x, pre)
    for name, t in (('weight', weight), ('bias', bias)):
        t = _check_companion(name, t, x)
        if tuple(t.shape) != (x.shape[1],):
            raise ValueError(f'{name} must have shape (C,) = ({x.shape[1]},), got {tuple(t.shape)}')
    eps, coeff = _check_positive('eps', eps), _check_positive('coeff', coeff)
    k, s, p, _ = _geometry(x, 2, kernel_size, stride, padding, ceil_mode)
    return _impl().lip_pool2d_gated(x, pre, weight, bias, eps, coeff, k, s, p, ceil_mode)


def _soft_pool(nd: int, x: torch.Tensor, kernel_size: IntOrTuple, stride: Optional[IntOrTuple],
               padding: IntOrTuple, ceil_mode: bool) -> torch.Tensor:
    x = _check_input('x', x, nd)
    k, s, p, _ = _geometry(x, nd, kernel_size, stride, padding, ceil_mode)
    return getattr(_impl(), f'soft_pool{nd}d')(x, k, s, p, ceil_mode)


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


def _per_window_pool(op: str, param_name: str, x: torch.Tensor, param: torch.Tensor,
                     kernel_size: IntOrTuple, stride: Optional[IntOrTuple], padding: IntOrTuple,
                     ceil_mode: bool) -> torch.Tensor:
    """Check and dispatch a 2-D op whose parameter (λ, η) has one of the per-window layouts."""
    x = _check_input('x', x, 2)
    k, s, p, out = _geometry(x, 2, kernel_size, stride, padding, ceil_mode)
    param = _check_per_window(param_name, param, x, out)
    return getattr(_impl(), op)(x, param, k, s, p, ceil_mode)


def maxent_pool2d(x: torch.Tensor, lam: torch.Tensor, kernel_size: IntOrTuple,
                  stride: Optional[IntOrTuple] = None, padding: IntOrTuple = 0,
                  ceil_mode: bool = False) -> torch.Tensor:
    """Max-Entropy pooling: Σ x·e^{λx} / Σ e^{λx} over each window's valid pixels."""
    return _per_window_pool('maxent_pool2d', 'lam', x, lam, kernel_size, stride, padding,
                            ceil_mode)


def gauss_pool2d(x: torch.Tensor, eta: torch.Tensor, kernel_size: IntOrTuple,
                 stride: Optional[IntOrTuple] = None, padding: IntOrTuple = 0,
                 ceil_mode: bool = False) -> torch.Tensor:
    """Gaussian pooling: μ + η·σ of each window's valid pixels (σ² floored at 1e-6)."""
    return _per_window_pool('gauss_pool2d', 'eta', x, eta, kernel_size, stride, padding,
                            ceil_mode)
