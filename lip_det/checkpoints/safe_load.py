"""Reading checkpoints and result pickles without executing arbitrary pickled code.

Every file is read with ``torch.load(weights_only=True)`` (or, for plain ``pickle`` files, an
unpickler with the same spirit) plus a short, explicit allow-list of the extra types that the
reference training scripts are known to store: ``argparse.Namespace`` (the GFGP and
Gaussian-pooling scripts pickle their command line) and numeric numpy arrays/scalars (training
statistics). Anything else is refused with the offending global named, so users know exactly
why a file was rejected; ``trusted=True`` is the one documented escape hatch.
"""
from __future__ import annotations

import argparse
import collections
import hashlib
import io
import os
import pickle
import re
import warnings
from typing import Any, Dict, List, Mapping, Optional, Tuple

import torch

__all__ = [
    'CheckpointError', 'sha256_file', 'load_checkpoint_file', 'extract_state_dict',
    'load_result_pickle', 'atomic_torch_save'
]


class CheckpointError(ValueError):
    """A checkpoint that cannot be read, recognised or converted (message says why)."""


def _numpy_safe_globals() -> List[Any]:
    """Numpy types needed to rebuild numeric arrays and scalars (object arrays stay refused)."""
    from ..compat import _numpy_globals  # the one list of numpy types, shared with the Runner allow-list
    return list(_numpy_globals())


def _qualified(entry: Any) -> Tuple[str, str, Any]:
    """(module, name, object) of an allow-list entry: a class/function or (object, 'module.name')."""
    if isinstance(entry, tuple):
        obj, dotted = entry
        module, _, name = dotted.rpartition('.')
        return module, name, obj
    return entry.__module__, entry.__qualname__, entry


# The whole allow-list for checkpoints: what the reference scripts store besides tensors.
CHECKPOINT_SAFE_GLOBALS: Tuple[Any, ...] = (argparse.Namespace, *_numpy_safe_globals())


def sha256_file(path: str, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, streamed so multi-GB checkpoints do not load into memory."""
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(chunk), b''):
            digest.update(block)
    return digest.hexdigest()


def load_checkpoint_file(path: str, trusted: bool = False) -> Any:
    """Load a checkpoint with weights_only=True and the reference-format allow-list."""
    if not os.path.isfile(path):
        raise CheckpointError(f'checkpoint {path!r} does not exist or is not a file')
    with open(path, 'rb') as f:
        head = f.read(4)
    # torch.save writes a zip archive (PyTorch >= 1.6) or a protocol-2 pickle (older releases)
    if not (head.startswith(b'PK\x03\x04') or head.startswith(b'\x80')):
        raise CheckpointError(f'{path!r} is not a PyTorch checkpoint (neither a torch.save zip '
                              'archive nor a pickle)')
    if trusted:
        warnings.warn(f'loading {path!r} with weights_only=False: only do this for files you trust')
        return torch.load(path, map_location='cpu', weights_only=False)
    try:
        with torch.serialization.safe_globals(list(CHECKPOINT_SAFE_GLOBALS)):
            return torch.load(path, map_location='cpu', weights_only=True)
    except pickle.UnpicklingError as exc:
        refused = _unsafe_globals(path) or re.findall(r'Unsupported global: GLOBAL ([\w.]+)', str(exc))
        detail = (f'it pickles objects outside the allow-list: {", ".join(refused)}'
                  if refused else f'the safe unpickler refused it ({_first_line(exc)})')
        raise CheckpointError(
            f'cannot read {path!r} safely: {detail}. If you trust the file\'s origin, pass '
            '--trust-pickle (convert_checkpoint.py) to load it with weights_only=False.') from None
    except (RuntimeError, EOFError, OSError) as exc:
        raise CheckpointError(f'{path!r} is not a PyTorch checkpoint: {_first_line(exc)}') from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _unsafe_globals(path: str) -> List[str]:
    try:
        found = torch.serialization.get_unsafe_globals_in_checkpoint(path)
    except Exception:  # noqa: BLE001 - diagnostics only; the caller already has an error to report
        return []
    allowed = {'.'.join(_qualified(g)[:2]) for g in CHECKPOINT_SAFE_GLOBALS}
    return [g for g in found if g not in allowed]


def extract_state_dict(obj: Any) -> Tuple[Dict[str, torch.Tensor], Dict[str, Any]]:
    """Split a loaded checkpoint into (state_dict without 'module.' prefixes, wrapper fields)."""
    if not isinstance(obj, Mapping):
        raise CheckpointError(f'expected a dict-like checkpoint, got {type(obj).__name__}')
    wrapper: Dict[str, Any] = {}
    state = obj
    for key in ('state_dict', 'model'):
        if key in obj and isinstance(obj[key], Mapping):
            state = obj[key]
            wrapper = {k: v for k, v in obj.items() if k != key}
            break
    tensors = {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise CheckpointError('the checkpoint holds no tensors (neither a state_dict nor a '
                              "{'state_dict': ...} wrapper)")
    others = sorted(k for k, v in state.items() if not isinstance(v, torch.Tensor))
    if others:
        raise CheckpointError(f'the state_dict has non-tensor entries, e.g. {others[:3]}')
    # DataParallel/DDP training checkpoints prefix every key; strip only when all keys agree.
    if all(k.startswith('module.') for k in tensors):
        tensors = {k[len('module.'):]: v for k, v in tensors.items()}
    return dict(tensors), wrapper


# ---------------------------------------------------------------------------------------------
# Plain pickles (mmdet ``test.py --out results.pkl``)
# ---------------------------------------------------------------------------------------------
def _safe_load_from_bytes(data: bytes) -> Any:
    """Stand-in for torch.storage._load_from_bytes, which would call torch.load(weights_only=False)."""
    return torch.load(io.BytesIO(data), map_location='cpu', weights_only=True)


def _latin1_bytes(text: str, encoding: str) -> bytes:
    """Stand-in for _codecs.encode, which protocol-2 pickles (mmengine's default) use for bytes."""
    if not isinstance(text, str) or encoding not in ('latin1', 'latin-1'):
        raise pickle.UnpicklingError(f'refusing _codecs.encode with encoding {encoding!r}')
    return text.encode('latin1')


def _empty_bytes(*args: Any) -> bytes:
    """Stand-in for bytes(), which protocol 2 uses for b'' (any argument would allocate freely)."""
    if args:
        raise pickle.UnpicklingError('refusing bytes() with arguments')
    return b''


def _numpy_frombuffer(buf: Any, dtype: Any, shape: Any, order: str, axis_order: Any = None) -> Any:
    """numpy's protocol-5 array reconstructor (numpy._core.numeric._frombuffer), numeric dtypes only."""
    import numpy as np
    if np.dtype(dtype).hasobject:
        raise pickle.UnpicklingError('refusing a numpy array of Python objects')
    array = np.frombuffer(buf, dtype=dtype)
    if order == 'K' and axis_order is not None:
        return array.reshape(shape, order='C').transpose(axis_order)
    return array.reshape(shape, order=order)


def _pickle_allow_list() -> Dict[Tuple[str, str], Any]:
    import torch._utils  # noqa: F401 - makes the attribute below resolvable
    table: Dict[Tuple[str, str], Any] = {
        ('collections', 'OrderedDict'): collections.OrderedDict,
        ('torch._utils', '_rebuild_tensor_v2'): torch._utils._rebuild_tensor_v2,
        ('torch.storage', '_load_from_bytes'): _safe_load_from_bytes,
        ('_codecs', 'encode'): _latin1_bytes,
        ('builtins', 'bytes'): _empty_bytes,
        ('numpy._core.numeric', '_frombuffer'): _numpy_frombuffer,
        ('numpy.core.numeric', '_frombuffer'): _numpy_frombuffer,
        ('builtins', 'slice'): slice,
        ('builtins', 'set'): set,
        ('builtins', 'frozenset'): frozenset,
    }
    for entry in _numpy_safe_globals():
        module, name, obj = _qualified(entry)
        table[(module, name)] = obj
    return table


class _RestrictedUnpickler(pickle.Unpickler):
    _allowed: Optional[Dict[Tuple[str, str], Any]] = None

    def find_class(self, module: str, name: str) -> Any:
        if module == '__builtin__':  # protocol-2 pickles use Python 2's name for builtins
            module = 'builtins'
        if _RestrictedUnpickler._allowed is None:
            _RestrictedUnpickler._allowed = _pickle_allow_list()
        try:
            return _RestrictedUnpickler._allowed[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f'refusing to unpickle global {module}.{name}') from None


def load_result_pickle(path: str) -> Any:
    """Load a result pickle (tensors, numeric numpy, containers only); refuse any other global."""
    try:
        with open(path, 'rb') as f:
            return _RestrictedUnpickler(f).load()
    except pickle.UnpicklingError as exc:
        raise CheckpointError(f'cannot read {path!r} safely: {exc}') from None
    except (EOFError, ValueError, TypeError, OSError) as exc:
        raise CheckpointError(f'{path!r} is not a readable pickle: {_first_line(exc)}') from None


def atomic_torch_save(obj: Any, dst: str, force: bool = False) -> None:
    """torch.save to a temporary file next to dst, fsync, then os.replace (never a torn file)."""
    if os.path.exists(dst) and not force:
        raise FileExistsError(f'{dst!r} exists; pass --force to overwrite it')
    directory = os.path.dirname(os.path.abspath(dst))
    os.makedirs(directory, exist_ok=True)
    tmp = os.path.join(directory, f'.{os.path.basename(dst)}.tmp-{os.getpid()}')
    try:
        with open(tmp, 'wb') as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, dst)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
