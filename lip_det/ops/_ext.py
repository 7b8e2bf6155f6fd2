"""Loads the compiled operator library ``lip_det._C`` once and says why when it cannot."""
from __future__ import annotations

from typing import Optional

_state: dict = {}


def _load() -> Optional[str]:
    """Import the extension; return None on success, else the reason it failed."""
    if 'error' not in _state:
        try:
            from lip_det import _C  # noqa: F401  (registers torch.ops.lip_det.*)
            _state['error'] = None
        except (ImportError, OSError) as exc:
            _state['error'] = f'{type(exc).__name__}: {exc}'
    return _state['error']


def available() -> bool:
    """True when ``torch.ops.lip_det`` operators are registered; never raises."""
    return _load() is None


def load_error() -> Optional[str]:
    """The reason the extension failed to load, or None."""
    return _load()
