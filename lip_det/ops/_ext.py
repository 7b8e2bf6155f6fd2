"""Loads the compiled operator library ``lip_det._C`` once and says why when it cannot.

The load runs when this module is imported, not on first use: a first use can be inside a
``torch.compile`` trace, where dynamo would run the imports for real while it guards on
``_state`` as it was before them, so the frame's own guards fail ("Guard failed on the same
frame it was created"). After the import ``_state`` never changes. The fake kernels and autograd
formulas are registered by ``lip_det.ops.table.add_op`` as each method's module declares its
operators; importing anything from ``lip_det.ops`` imports every method first.
"""
from __future__ import annotations

from typing import Optional

_state: dict = {}


def _load() -> Optional[str]:
    """Import the extension; None on success, else the reason."""
    if 'error' not in _state:
        try:
            from lip_det import _C  # noqa: F401  (registers torch.ops.lip_det.* and their kernels)
        except (ImportError, OSError) as exc:
            _state['error'] = f'{type(exc).__name__}: {exc}'
        else:
            _state['error'] = None
    return _state['error']


def available() -> bool:
    """True when ``torch.ops.lip_det`` operators are registered; never raises."""
    return _load() is None


def load_error() -> Optional[str]:
    """The reason the extension failed to load, or None."""
    return _load()


_load()
