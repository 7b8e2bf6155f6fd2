"""Make MMEngine's own checkpoints load under ``torch.load(weights_only=True)``, and nothing more.

Since torch 2.6 ``torch.load`` defaults to ``weights_only=True`` and mmengine 0.10.7 calls it
without the argument, so a checkpoint written by its Runner (``message_hub`` holds
``HistoryBuffer`` objects backed by numpy arrays; ``meta`` may hold numpy scalars) fails with
``UnpicklingError`` on ``--resume``, ``load_from`` and in ``tools/test.py``. Rather than turning
``weights_only`` off, which would unpickle anything, or allow-listing those types for the whole
process, lip-det replaces mmengine's loader for local files (``CheckpointLoader``'s '' scheme,
through which ``Runner.resume``, ``Runner.load_checkpoint``, ``load_checkpoint`` and the
``Pretrained`` initialiser all go) with one that allow-lists exactly the types such a checkpoint
contains for the duration of that one ``torch.load``. Every other global is still refused by
torch's restricted unpickler, and a refused or broken file is reported in one line naming it.
"""
from __future__ import annotations

import contextlib
import os.path as osp
from typing import Any, Iterator, List

from .checkpoints.allow_list import SafeGlobal, refuse, torch_numpy_globals
from .checkpoints.safe_load import guarded_torch_load, scoped_safe_globals

__all__ = ['runner_checkpoint_globals', 'runner_checkpoint_scope', 'load_from_local',
           'load_runner_checkpoint', 'install_checkpoint_loader']

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
    refuse(f'refusing getattr({obj!r:.60}, {name!r:.40}): the only builtins.getattr calls '
           f'allowed are HistoryBuffer statistics methods {sorted(allowed)}',
           trust_may_help=True)


def runner_checkpoint_globals() -> List[SafeGlobal]:
    """The exact non-tensor types that MMEngine Runner checkpoints contain (numpy ones guarded)."""
    from mmengine.logging import HistoryBuffer
    return [HistoryBuffer, (_history_buffer_attribute, 'builtins.getattr')] + torch_numpy_globals()


@contextlib.contextmanager
def runner_checkpoint_scope() -> Iterator[None]:
    """Allow the types of Runner checkpoints for ``torch.load(weights_only=True)`` in this block."""
    with scoped_safe_globals(runner_checkpoint_globals()):
        yield


def load_runner_checkpoint(filename: str, map_location: Any = 'cpu') -> Any:
    """Load a local MMEngine Runner (or any weights-only) checkpoint with the scoped allow-list."""
    return guarded_torch_load(
        filename, runner_checkpoint_globals(), what='checkpoint',
        allow_list_name='mmengine Runner checkpoints (tensors, HistoryBuffer, numeric numpy '
        'values)', map_location=map_location)


def load_from_local(filename: str, map_location: Any) -> Any:
    """mmengine's local-file checkpoint loader, with the Runner allow-list scoped to this load."""
    # mmengine logs 'Loads checkpoint by <name[10:]> backend': this function keeps its name.
    return load_runner_checkpoint(osp.expanduser(filename), map_location=map_location)


def install_checkpoint_loader() -> None:
    """Register ``load_from_local`` as mmengine's loader for local checkpoint files."""
    from mmengine.runner.checkpoint import CheckpointLoader
    CheckpointLoader.register_scheme(prefixes='', loader=load_from_local, force=True)
