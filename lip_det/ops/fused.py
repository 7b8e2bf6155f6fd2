"""Every compiled pooling operator ``torch.ops.lip_det.<op>``, by operator name, called like its
definition (tuple geometry): a view of the op table. Importing it without the extension raises
ImportError.

Every backward op recomputes from the saved inputs, so autograd keeps no intermediate tensors.
When autograd runs a backward in grad mode (``create_graph=True``), the formula differentiates
the op's plain-PyTorch definition on the saved inputs instead (the ``*_backward`` kernels are not
themselves differentiable), so higher derivatives are exact; see ``lip_det.ops.table``.
"""
from __future__ import annotations

from . import _ext
from .table import OPS

if not _ext.available():
    raise ImportError(f'lip_det.ops.fused needs the compiled extension lip_det._C: {_ext.load_error()}')

__all__ = [*OPS]


def __getattr__(name: str):
    if name in OPS:
        return OPS[name].fused
    raise AttributeError(f'module {__name__!r} has no attribute {name!r} (pooling ops: {sorted(OPS)})')


def __dir__():
    return sorted([*globals(), *OPS])
