"""Make MMEngine's own checkpoints load under ``torch.load(weights_only=True)``.

Since torch 2.6 ``torch.load`` defaults to ``weights_only=True`` and mmengine 0.10.7 calls it
without the argument, so a checkpoint written by its Runner (``message_hub`` holds
``HistoryBuffer`` objects backed by numpy arrays; ``meta`` may hold numpy scalars) fails with
``UnpicklingError`` on ``--resume`` and in ``tools/test.py``. Rather than turning
``weights_only`` off, which would unpickle anything, we allow-list exactly the types such a
checkpoint contains. Every other global is still refused by torch's restricted unpickler.
"""
from __future__ import annotations

import pickle
from typing import Callable, List, Tuple, Union

import numpy as np
import torch

SafeGlobal = Union[Callable, Tuple[Callable, str]]


def _numpy_globals() -> List[SafeGlobal]:
    """numpy's array/scalar/dtype reconstructors under both the numpy 1 and numpy 2 module names."""
    try:
        from numpy._core import multiarray  # numpy >= 2
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core import multiarray
    found: List[SafeGlobal] = [np.ndarray, np.dtype]
    for fn in (multiarray._reconstruct, multiarray.scalar):
        # Pickles name the function by the module numpy had when they were written.
        for module in ('numpy.core.multiarray', 'numpy._core.multiarray'):
            found.append((fn, f'{module}.{fn.__name__}'))
    # numpy >= 1.25 pickles a dtype by its class, e.g. numpy.dtypes.Float64DType.
    dtypes = getattr(np, 'dtypes', None)
    if dtypes is not None:
        found += [getattr(dtypes, name) for name in dir(dtypes) if name.endswith('DType')
                  and isinstance(getattr(dtypes, name), type)
                  and getattr(dtypes, name).__name__ not in ('VoidDType', 'ObjectDType')]
    return found


# HistoryBuffer registers these on first use, so the class-level table can still be empty here.
_BUILTIN_STATISTICS = frozenset({'min', 'max', 'current', 'mean'})


def _history_buffer_attribute(obj: object, name: str) -> object:
    """Stand-in for ``builtins.getattr`` that resolves only HistoryBuffer's statistics methods.

    A pickled ``HistoryBuffer`` carries its ``statistics_methods`` dict of functions, which pickle
    writes as ``getattr(HistoryBuffer, 'mean')``. Allow-listing the real ``getattr`` would let a
    crafted file walk from any allowed object to ``__globals__`` and on to ``eval``; this resolves
    the one pattern mmengine writes and refuses everything else.
    """
    from mmengine.logging import HistoryBuffer
    allowed = _BUILTIN_STATISTICS | set(getattr(HistoryBuffer, '_statistics_methods', {}))
    if obj is HistoryBuffer and isinstance(name, str) and name in allowed:
        return getattr(HistoryBuffer, name)
    raise pickle.UnpicklingError(
        f'weights_only load refused getattr({obj!r}, {name!r}): lip_det only allows '
        f'HistoryBuffer statistics methods {sorted(allowed)}')


def mmengine_checkpoint_globals() -> List[SafeGlobal]:
    """The exact non-tensor types that MMEngine Runner checkpoints contain."""
    from mmengine.logging import HistoryBuffer
    return [HistoryBuffer, (_history_buffer_attribute, 'builtins.getattr')] + _numpy_globals()


def allow_mmengine_checkpoints() -> None:
    """Allow-list the types of MMEngine Runner checkpoints for ``torch.load(weights_only=True)``."""
    torch.serialization.add_safe_globals(mmengine_checkpoint_globals())
