"""Which implementation runs: the compiled ``lip_det._C`` operators or the plain-PyTorch ones,
and which instruction-set build of the CPU kernels."""
from __future__ import annotations

import os
import warnings

import torch

from . import _ext

__all__ = ['BACKEND_ENV', 'backend', 'fused_available', 'cpu_isa', 'set_cpu_isa']

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
                      stacklevel=4)
    return 'reference'


def _require_ext(what: str) -> None:
    if not _ext.available():
        raise RuntimeError(f'{what} needs the compiled extension lip_det._C: {_ext.load_error()}')


def cpu_isa() -> str:
    """The CPU kernels' instruction-set build in use: ``'default'``, ``'avx2'`` or ``'avx512'``.

    Decided once per process, at the first kernel call: the best the CPU supports, capped by the
    environment variable ``LIP_DET_CPU_ISA`` if set.
    """
    _require_ext('cpu_isa()')
    return torch.ops.lip_det.get_cpu_isa()


def set_cpu_isa(name: str) -> str:
    """Run the CPU kernels' ``name`` build (``'default'``, ``'avx2'``, ``'avx512'``; ``''`` = best).

    Never more than the CPU supports: returns the build that will run.
    """
    _require_ext('set_cpu_isa()')
    if not isinstance(name, str):
        raise TypeError(f"name must be a str ('', 'default', 'avx2' or 'avx512'), got {name!r}")
    return torch.ops.lip_det.set_cpu_isa(name)
