"""Reading checkpoints and result pickles without executing arbitrary pickled code.

Every file is read with ``torch.load(weights_only=True)`` (or, for plain ``pickle`` files, an
unpickler with the same spirit) plus a short, explicit allow-list of the extra types that the
reference training scripts are known to store: ``argparse.Namespace`` (the GFGP and
Gaussian-pooling scripts pickle their command line) and numeric numpy arrays/scalars (training
statistics), the latter through the guarded stand-ins of ``allow_list``, which refuse object
arrays and bound what a file may allocate by its size. The allow-list is scoped to the one load
(``torch.serialization.safe_globals``), never added process-wide. Anything else is refused with
the offending global named, so users know exactly why a file was rejected; ``trusted=True`` is
the one documented escape hatch.
"""
from __future__ import annotations

import _compat_pickle
import argparse
import collections
import contextlib
import hashlib
import io
import os
import pickle
import pickletools
import stat
import warnings
import zipfile
from typing import Any, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Tuple

import torch

from .allow_list import (SafeGlobal, find_unsafe_value, guarded_load, pickle_numpy_table, refuse,
                         torch_numpy_globals)

__all__ = [
    'CheckpointError', 'sha256_file', 'load_checkpoint_file', 'extract_state_dict',
    'load_result_pickle', 'guarded_torch_load', 'pickle_globals', 'scoped_safe_globals',
    'check_checkpoint_file', 'TRUST_HINT'
]


class CheckpointError(ValueError):
    """A checkpoint that cannot be read, recognised or converted (message says why)."""


def _qualified(entry: Any) -> Tuple[str, str, Any]:
    """(module, name, object) of an allow-list entry: a class/function or (object, 'module.name')."""
    if isinstance(entry, tuple):
        obj, dotted = entry
        module, _, name = dotted.rpartition('.')
        return module, name, obj
    return entry.__module__, entry.__qualname__, entry


# The whole allow-list for checkpoints: what the reference scripts store besides tensors.
CHECKPOINT_SAFE_GLOBALS: Tuple[SafeGlobal, ...] = (argparse.Namespace, *torch_numpy_globals())

# The advice for a file refused only because of what it pickles: the tools' one escape hatch.
TRUST_HINT = ('If you trust the file\'s origin, pass --trust-pickle to load it with '
              'weights_only=False (that runs any code pickled in it)')

# torch.save writes a zip archive (PyTorch >= 1.6) or a protocol-2 pickle (older releases).
_ZIP_MAGIC = b'PK\x03\x04'
_PICKLE_PROTO = b'\x80'


def sha256_file(path: str, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, streamed so multi-GB checkpoints do not load into memory."""
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(chunk), b''):
            digest.update(block)
    return digest.hexdigest()


class _BoundedReader(io.BufferedReader):
    """A file whose ``read(n)`` never asks for more than is left in it.

    ``BufferedReader.read(n)`` allocates ``n`` bytes before reading, so a pickle claiming a
    4 GiB string would make a 30-byte file cost 4 GiB; clamping keeps reads within the file.
    """

    def __init__(self, path: str) -> None:
        super().__init__(io.FileIO(path, 'rb'))
        self._size = os.fstat(self.fileno()).st_size

    def read(self, size: Optional[int] = -1) -> bytes:
        """``BufferedReader.read``, never past the end of the file."""
        if size is not None and size > 0:
            size = min(size, max(self._size - self.tell(), 0))
        return super().read(size)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    # torch wraps its unpickler's one-line reason in a paragraph of advice; keep the reason.
    marker = 'WeightsUnpickler error:'
    if marker in text:
        text = text.split(marker, 1)[1].strip()
    line = text.splitlines()[0] if text else ''
    return f'{type(exc).__name__}: {line}' if line else type(exc).__name__


def _checked_file(path: str, what: str, magic: Sequence[bytes] = (),
                  expected: str = 'a PyTorch checkpoint (torch.save writes a zip archive)') -> int:
    """Size of ``path`` after checking it is a readable, non-empty regular file (with ``magic``)."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise CheckpointError(f'{what} {path!r} does not exist') from None
    except OSError as exc:
        raise CheckpointError(f'cannot open {what} {path!r}: {exc.strerror or exc}') from None
    if stat.S_ISDIR(info.st_mode):
        raise CheckpointError(f'{what} {path!r} is a directory; expected {expected}')
    if not stat.S_ISREG(info.st_mode):
        raise CheckpointError(f'{what} {path!r} is not a regular file; expected {expected}')
    if info.st_size == 0:
        raise CheckpointError(f'{what} {path!r} is empty (0 bytes); expected {expected}')
    try:
        with open(path, 'rb') as f:
            head = f.read(4)
    except OSError as exc:
        raise CheckpointError(f'cannot read {what} {path!r}: {exc.strerror or exc}') from None
    if magic and not any(head.startswith(m) for m in magic):
        raise CheckpointError(f'{what} {path!r} is not a PyTorch checkpoint (neither a torch.save '
                              'zip archive nor a pickle)')
    return info.st_size


def check_checkpoint_file(path: str, what: str = 'checkpoint') -> int:
    """Size of a checkpoint file after a cheap check (exists, non-empty, zip or pickle header)."""
    return _checked_file(path, what, (_ZIP_MAGIC, _PICKLE_PROTO))


@contextlib.contextmanager
def scoped_safe_globals(entries: Iterable[SafeGlobal]) -> Iterator[None]:
    """``torch.serialization.safe_globals`` for the entries not already allowed, for one block.

    torch removes a context's entries on exit, so an entry some other code added process-wide
    must not be part of ours. torch keeps one process-wide set: while the block runs, a
    ``torch.load`` in another thread sees the same entries (each still guarded, see allow_list).
    """
    present = set(torch.serialization.get_safe_globals())
    added = [e for e in entries if e not in present]
    with torch.serialization.safe_globals(added):
        yield


def guarded_torch_load(path: str, safe_globals: Iterable[SafeGlobal], what: str = 'checkpoint',
                       allow_list_name: str = 'checkpoints', trust_hint: Optional[str] = None,
                       map_location: Any = 'cpu') -> Any:
    """``torch.load(path, weights_only=True)`` with a scoped allow-list; CheckpointError if refused.

    The one place that turns anything a hostile or broken file makes torch raise into a
    one-line ``CheckpointError`` naming the file and, when it is refused for what it pickles,
    the globals or values outside the allow-list (plus ``trust_hint`` where that could help).
    """
    entries = list(safe_globals)
    size = check_checkpoint_file(path, what)
    with guarded_load(repr(path), size) as guard:
        try:
            with scoped_safe_globals(entries), warnings.catch_warnings():
                # torch warns about any protocol but 2 before failing on it: one line is enough
                warnings.filterwarnings('ignore', message='Detected pickle protocol')
                if zipfile.is_zipfile(path):
                    # torch reads data.pkl into memory and storages by their recorded sizes.
                    obj = torch.load(path, map_location=map_location, weights_only=True)
                else:
                    with _BoundedReader(path) as f:
                        obj = torch.load(f, map_location=map_location, weights_only=True)
        except Exception as exc:  # noqa: BLE001 - untrusted input: any parser failure is a refusal
            raise _refusal(path, what, allow_list_name, exc, guard.refusal, guard.trust_may_help,
                           entries, trust_hint) from None
    bad = find_unsafe_value(obj)
    if bad is not None:
        raise _refusal(path, what, allow_list_name, None, f'{bad}: only bool, integer and '
                       'floating-point numpy values are loaded', True, entries, trust_hint)
    return obj


def _refusal(path: str, what: str, allow_list_name: str, exc: Optional[BaseException],
             reason: Optional[str], trust_may_help: bool, entries: List[SafeGlobal],
             trust_hint: Optional[str]) -> CheckpointError:
    if reason is None:
        named, parsed = pickle_globals(path)
        refused = [g for g in named if g not in _allowed_names(entries)]
        if not refused or not parsed:
            return CheckpointError(f'{what} {path!r} is not a PyTorch checkpoint (the pickle '
                                   f'inside cannot be read: {_first_line(exc)})')
        reason = (f'it pickles {", ".join(_describe_global(g) for g in refused[:6])}'
                  f'{", ..." if len(refused) > 6 else ""}, outside the allow-list for '
                  f'{allow_list_name}')
        trust_may_help = True
    message = f'cannot read {what} {path!r} safely: {reason}'
    if trust_may_help and trust_hint:
        message += f'. {trust_hint}'
    return CheckpointError(message)


def _describe_global(name: str) -> str:
    module, _, attr = name.rpartition('.')
    # pickle names os functions by the platform module that defines them.
    return f'{name} (os.{attr})' if module in ('posix', 'nt') else name


def _allowed_names(entries: List[SafeGlobal]) -> set:
    names = {'.'.join(_qualified(e)[:2]) for e in entries}
    try:  # torch's defaults and what other code allowed process-wide are not refusals either
        from torch import _weights_only_unpickler
        names |= set(_weights_only_unpickler._get_allowed_globals())
        names |= set(_weights_only_unpickler._get_user_allowed_globals())
    except Exception:  # noqa: BLE001 - diagnostics only: without torch's list, name more globals
        pass
    return names


_STRING_OPS = frozenset({'UNICODE', 'SHORT_BINUNICODE', 'BINUNICODE', 'BINUNICODE8', 'STRING',
                         'BINSTRING', 'SHORT_BINSTRING'})


def _globals_in_stream(stream: io.BytesIO, found: List[str]) -> None:
    """Append the globals one pickle names; raises ValueError if it does not reach STOP."""
    memo: Dict[int, str] = {}
    recent: List[str] = []
    last_string: Optional[str] = None
    for op, arg, _ in pickletools.genops(stream):
        name, pushed = op.name, None
        if name in ('GLOBAL', 'INST'):
            module, _, attr = str(arg).partition(' ')
            found.append(_modern_name(module, attr))
        elif name == 'STACK_GLOBAL' and len(recent) >= 2:
            found.append(_modern_name(recent[-2], recent[-1]))
        elif name in _STRING_OPS and isinstance(arg, str):
            pushed = arg
        elif name in ('PUT', 'BINPUT', 'LONG_BINPUT') and last_string is not None:
            memo[int(arg)] = last_string
        elif name == 'MEMOIZE' and last_string is not None:
            memo[len(memo)] = last_string
        elif name in ('GET', 'BINGET', 'LONG_BINGET') and int(arg) in memo:
            pushed = memo[int(arg)]
        if pushed is not None:
            recent = (recent + [pushed])[-2:]
        if name not in ('PUT', 'BINPUT', 'LONG_BINPUT', 'MEMOIZE'):
            last_string = pushed


def _py3_name(module: str, name: str) -> Tuple[str, str]:
    # Python 2 names in protocol-2 pickles ('__builtin__ getattr') as Python 3 and torch see them.
    module, name = _compat_pickle.NAME_MAPPING.get((module, name), (module, name))
    return _compat_pickle.IMPORT_MAPPING.get(module, module), name


def _modern_name(module: str, name: str) -> str:
    return '.'.join(_py3_name(module, name))


def pickle_globals(path: str) -> Tuple[List[str], bool]:
    """(globals a torch checkpoint or plain pickle names, whether it parsed), read statically.

    Nothing is executed. The flag is False for a file whose pickles do not parse to their end:
    random bytes can spell a GLOBAL too, and such a file is corrupt, not merely untrusted.
    """
    found: List[str] = []
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                names = [n for n in archive.namelist() if n.endswith('data.pkl')]
                if not names:
                    return [], False
                _globals_in_stream(io.BytesIO(archive.read(names[0])), found)
        else:
            with _BoundedReader(path) as f:
                # A legacy torch.save file is five pickles (magic, version, system info, the
                # object, storage keys) followed by raw storage bytes; a plain pickle is one.
                for _ in range(5):
                    if f.peek(1)[:1] != _PICKLE_PROTO:
                        break
                    _globals_in_stream(f, found)
    except Exception:  # noqa: BLE001 - a broken file: report what was found, flagged as broken
        return list(dict.fromkeys(found)), False
    return list(dict.fromkeys(found)), True


def load_checkpoint_file(path: str, trusted: bool = False) -> Any:
    """Load a checkpoint with weights_only=True and the reference-format allow-list."""
    if trusted:
        check_checkpoint_file(path)
        warnings.warn(f'loading {path!r} with weights_only=False: only do this for files you trust')
        try:
            return torch.load(path, map_location='cpu', weights_only=False)
        except Exception as exc:  # noqa: BLE001 - report a broken file in one line
            raise CheckpointError(f'checkpoint {path!r} is not a PyTorch checkpoint '
                                  f'({_first_line(exc)})') from None
    allowed = list(CHECKPOINT_SAFE_GLOBALS)
    name = 'reference checkpoints (tensors, argparse.Namespace, numeric numpy values)'
    try:
        # a detector trained by tools/train.py is a Runner checkpoint: the tools accept it too
        from ..compat import runner_checkpoint_globals
        allowed += [g for g in runner_checkpoint_globals() if g not in allowed]
        name = ('reference and mmengine Runner checkpoints (tensors, argparse.Namespace, '
                'HistoryBuffer, numeric numpy values)')
    except ImportError:  # no mmengine: only reference checkpoints can be here
        pass
    return guarded_torch_load(path, allowed, what='checkpoint', allow_list_name=name,
                              trust_hint=TRUST_HINT)


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
    others = sorted(str(k) for k, v in state.items() if not isinstance(v, torch.Tensor))
    if others:
        raise CheckpointError(f'the state_dict has non-tensor entries, e.g. {others[:3]}')
    # DataParallel/DDP training checkpoints prefix every key; strip only when all keys agree.
    if all(isinstance(k, str) and k.startswith('module.') for k in tensors):
        tensors = {k[len('module.'):]: v for k, v in tensors.items()}
    return dict(tensors), wrapper


# ---------------------------------------------------------------------------------------------
# Plain pickles (mmdet ``test.py --out results.pkl``)
# ---------------------------------------------------------------------------------------------
def _charge(nbytes: int, what: str) -> None:
    from .allow_list import _active_guard
    _active_guard().charge(nbytes, what)


def _safe_load_from_bytes(data: bytes) -> Any:
    """Stand-in for torch.storage._load_from_bytes (which calls torch.load(weights_only=False))."""
    if not isinstance(data, bytes):
        refuse('refusing torch.storage._load_from_bytes of a non-bytes argument')
    _charge(len(data), 'a tensor storage')  # copied out of the pickle's bytes
    return torch.load(io.BytesIO(data), map_location='cpu', weights_only=True)


def _rebuild_tensor(storage: Any, offset: Any, size: Any, stride: Any, requires_grad: Any,
                    backward_hooks: Any, metadata: Any = None) -> torch.Tensor:
    """Stand-in for torch._utils._rebuild_tensor_v2 that refuses pickled backward hooks."""
    if backward_hooks:
        refuse('refusing a tensor with pickled backward hooks')
    return torch._utils._rebuild_tensor_v2(storage, offset, size, stride, requires_grad,
                                           collections.OrderedDict(), metadata)


def _latin1_bytes(text: str, encoding: str) -> bytes:
    """Stand-in for _codecs.encode, which protocol-2 pickles (mmengine's default) use for bytes."""
    if not isinstance(text, str) or encoding not in ('latin1', 'latin-1'):
        refuse(f'refusing _codecs.encode with encoding {encoding!r}')
    _charge(len(text), 'a bytes object')  # a memoised string may be encoded again and again
    return text.encode('latin1')


def _empty_bytes(*args: Any) -> bytes:
    """Stand-in for bytes(), which protocol 2 uses for b'' (any argument would allocate freely)."""
    if args:
        refuse('refusing bytes() with arguments')
    return b''


def _pickle_allow_list() -> Dict[Tuple[str, str], Any]:
    table: Dict[Tuple[str, str], Any] = {
        ('collections', 'OrderedDict'): collections.OrderedDict,
        ('torch._utils', '_rebuild_tensor_v2'): _rebuild_tensor,
        ('torch.storage', '_load_from_bytes'): _safe_load_from_bytes,
        ('_codecs', 'encode'): _latin1_bytes,
        ('builtins', 'bytes'): _empty_bytes,
        ('builtins', 'slice'): slice,
        ('builtins', 'set'): set,
        ('builtins', 'frozenset'): frozenset,
    }
    table.update(pickle_numpy_table())
    return table


class _RestrictedUnpickler(pickle.Unpickler):
    _allowed: Optional[Dict[Tuple[str, str], Any]] = None

    def find_class(self, module: str, name: str) -> Any:
        """The allow-listed object for (module, name); refuse (and name) anything else."""
        module, name = _py3_name(module, name)
        if _RestrictedUnpickler._allowed is None:
            _RestrictedUnpickler._allowed = _pickle_allow_list()
        try:
            return _RestrictedUnpickler._allowed[(module, name)]
        except KeyError:
            refuse(f'refusing to unpickle global {_describe_global(f"{module}.{name}")}: result '
                   'pickles may hold only tensors, numeric numpy arrays and plain containers')

    def persistent_load(self, pid: Any) -> Any:
        """Refuse persistent ids: a result pickle has none."""
        refuse('refusing a persistent id: result pickles have none')


def load_result_pickle(path: str) -> Any:
    """Load a result pickle (tensors, numeric numpy, containers only); refuse any other global."""
    size = _checked_file(path, 'result pickle', expected="a pickle (mmdet test.py --out)")
    with guarded_load(repr(path), size) as guard:
        try:
            with _BoundedReader(path) as f:
                obj = _RestrictedUnpickler(f).load()
        except Exception as exc:  # noqa: BLE001 - untrusted input: any parser failure is a refusal
            if guard.refusal is not None:
                raise CheckpointError(f'cannot read {path!r} safely: {guard.refusal}') from None
            raise CheckpointError(f'{path!r} is not a readable pickle: '
                                  f'{_first_line(exc)}') from None
    bad = find_unsafe_value(obj)
    if bad is not None:
        raise CheckpointError(f'cannot read {path!r} safely: {bad}: only bool, integer and '
                              'floating-point numpy values are loaded')
    return obj
