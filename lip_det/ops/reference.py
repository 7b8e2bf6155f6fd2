"""Every pooling operator's plain-PyTorch definition, by operator name: a view of the op table.

``reference.<op>(*tensors, *scalars, kernel, stride, padding, ceil_mode)`` with validated
arguments and tuple geometry, as ``lip_det.ops.table.OPS[<op>].reference``; each definition
lives in its method's module (``lip_det/ops/<method>.py``). These are the run-time fallback when
the compiled extension is missing and the oracle the fused kernels are tested against.
"""
from __future__ import annotations

from ._window import pooled_size
from .gaussian import GAUSS_VAR_EPS
from .table import OPS

__all__ = ['pooled_size', 'GAUSS_VAR_EPS', *OPS]


def __getattr__(name: str):
    if name in OPS:
        return OPS[name].reference
    raise AttributeError(f'module {__name__!r} has no attribute {name!r} (pooling ops: {sorted(OPS)})')


def __dir__():
    return sorted([*globals(), *OPS])
