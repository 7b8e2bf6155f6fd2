"""The numpy part of every lip-det allow-list: numeric arrays only, sized by the file being read.

torch's ``weights_only`` unpickler calls any allow-listed global with arguments read from the
file, and lets BUILD run ``__setstate__`` on instances of allow-listed classes. Allow-listing
numpy's real ``dtype``, ``ndarray`` and ``_reconstruct`` would therefore let a crafted file build
object arrays (``numpy.dtype('O8')``, ``numpy.ndarray(shape, 'O')``) or ask for a 1 TiB array in
60 bytes. So the names a pickle can spell resolve to stand-ins that accept bool, integer and
floating-point dtypes only and charge what they allocate to a budget derived from the size of
the file being read, and the real classes, which BUILD needs, are registered only under names
that no GLOBAL opcode can spell (they contain a newline; GLOBAL reads its names line by line).

The same stand-ins back the restricted ``pickle.Unpickler`` for result pickles, so checkpoints,
mmengine Runner checkpoints and result pickles share one definition of "a safe numpy value".
"""
from __future__ import annotations

import contextlib
import contextvars
import math
import pickle
from typing import Any, Callable, Dict, Iterator, List, NoReturn, Optional, Tuple, Union

import numpy as np

try:
    from numpy._core import multiarray as _multiarray  # numpy >= 2
except ImportError:  # pragma: no cover - numpy 1.x
    from numpy.core import multiarray as _multiarray

__all__ = ['NUMERIC_KINDS', 'ALLOCATION_FACTOR', 'ALLOCATION_SLACK', 'LoadGuard', 'guarded_load',
           'allocation_limit', 'refuse', 'numeric_dtype', 'reconstruct_array', 'array_scalar',
           'array_from_buffer', 'ARRAY_TYPE', 'torch_numpy_globals', 'pickle_numpy_table',
           'find_unsafe_value', 'SafeGlobal']

SafeGlobal = Union[Callable, Tuple[Any, str]]

# bool, signed and unsigned integers, floating point: what training statistics and detection
# results hold. Strings, bytes, dates, complex, structured and object dtypes are refused.
NUMERIC_KINDS = 'biuf'

# What one file may make the stand-ins allocate: its array data is stored in the file itself
# (protocol-2 pickles store bytes as latin-1 text, then copy them once more into a tensor), so a
# few times its size plus a constant covers every honest file and nothing like 2**40 elements.
ALLOCATION_FACTOR = 4
ALLOCATION_SLACK = 1 << 20

# numpy's module names at pickling time: numpy 1.x wrote numpy.core, numpy 2 writes numpy._core.
_NUMPY_CORE = ('numpy.core', 'numpy._core')

# Suffix that makes a registered name unreachable from a pickle (see the module docstring).
_BUILD_ONLY = '\n<lip_det: BUILD target only, never reachable by a GLOBAL opcode>'


class LoadGuard:
    """What one guarded load may still allocate, and the refusal that ended it (if any)."""

    def __init__(self, source: str, limit: int) -> None:
        self.source = source
        self.limit = limit
        self.used = 0
        self.refusal: Optional[str] = None
        self.trust_may_help = False

    def charge(self, nbytes: int, what: str) -> None:
        """Account for ``nbytes`` about to be allocated; refuse past the file's budget."""
        if nbytes > self.limit - self.used:
            refuse(f'{what} needs {nbytes:,} bytes, more than {self.source} can hold '
                   f'(at most {self.limit:,} bytes for this file, {self.used:,} already used)',
                   guard=self)
        self.used += nbytes


_GUARD: contextvars.ContextVar[Optional[LoadGuard]] = contextvars.ContextVar('lip_det_load_guard',
                                                                            default=None)


def allocation_limit(file_size: int) -> int:
    """Bytes the numpy stand-ins may allocate while reading a file of ``file_size`` bytes."""
    return ALLOCATION_FACTOR * max(int(file_size), 0) + ALLOCATION_SLACK


@contextlib.contextmanager
def guarded_load(source: str, file_size: int) -> Iterator[LoadGuard]:
    """Budget (from ``file_size``) and refusal record for the loads run inside the block."""
    guard = LoadGuard(source, allocation_limit(file_size))
    token = _GUARD.set(guard)
    try:
        yield guard
    finally:
        _GUARD.reset(token)


def _active_guard() -> LoadGuard:
    # A load outside guarded_load (another thread using torch's process-wide allow-list while a
    # guarded load is in progress) still gets a budget: the constant alone.
    guard = _GUARD.get()
    return guard if guard is not None else LoadGuard('an unguarded load', ALLOCATION_SLACK)


def refuse(message: str, trust_may_help: bool = False,
           guard: Optional[LoadGuard] = None) -> NoReturn:
    """Record why the active load is refused (for the caller's error message) and stop it."""
    guard = guard or _GUARD.get()
    if guard is not None and guard.refusal is None:
        guard.refusal = message
        guard.trust_may_help = trust_may_help
    raise pickle.UnpicklingError(message)


def _checked_dtype(dtype: np.dtype, spelled: Any) -> np.dtype:
    if dtype.hasobject or dtype.kind not in NUMERIC_KINDS or dtype.fields is not None \
            or dtype.subdtype is not None:
        what = 'Python objects' if dtype.hasobject else f'{dtype.kind!r}-kind values'
        refuse(f'refusing numpy dtype {spelled!r} ({what}): only bool, integer and floating-point '
               'arrays are loaded, never object arrays', trust_may_help=True)
    return dtype


def _as_dtype(spelled: Any) -> np.dtype:
    """A numeric dtype from a dtype instance or its str/bytes spelling (numpy pickles use both)."""
    if isinstance(spelled, np.dtype):
        return _checked_dtype(spelled, spelled)
    if isinstance(spelled, bytes):
        spelled = spelled.decode('latin1')
    if not isinstance(spelled, str) or len(spelled) > 16:
        refuse(f'refusing numpy dtype spelled as {type(spelled).__name__} {spelled!r:.40}')
    try:
        dtype = np.dtype(spelled)
    except (TypeError, ValueError) as exc:
        refuse(f'invalid numpy dtype {spelled!r}: {exc}')
    return _checked_dtype(dtype, spelled)


def numeric_dtype(spelled: Any, align: Any = False, copy: Any = False) -> np.dtype:
    """Stand-in for ``numpy.dtype(obj, align, copy)``: bool, integer and float dtypes only."""
    # older numpy releases wrote align/copy as the ints 0 and 1, current ones as bools
    if any(type(flag) not in (bool, int) or flag not in (0, 1) for flag in (align, copy)):
        refuse(f'refusing numpy.dtype with align={align!r:.20}, copy={copy!r:.20}: expected '
               'booleans')
    dtype = _as_dtype(spelled)  # align changes nothing for the plain numeric dtypes allowed
    # Always a fresh instance: BUILD then sets its byte order, never numpy's shared singleton.
    return np.dtype(dtype, copy=True)


class _ArrayType:
    """What ``numpy.ndarray`` resolves to in a pickle: an argument for reconstruct_array only.

    Calling or instantiating it is refused, so a pickle cannot call ``ndarray(shape, dtype)``
    to get an object array or an unbounded uninitialised one.
    """

    __slots__ = ()

    def __new__(cls, *args: Any) -> '_ArrayType':
        """One instance, made at import; NEWOBJ on that instance is refused."""
        if isinstance(cls, _ArrayType):
            refuse('refusing to create a numpy.ndarray directly: arrays are rebuilt only by '
                   "numpy's _reconstruct")
        return super().__new__(cls)

    def __call__(self, *args: Any) -> NoReturn:
        """Refuse ``numpy.ndarray(...)`` called by a pickle."""
        refuse('refusing to call numpy.ndarray(...) directly: arrays are rebuilt only by '
               "numpy's _reconstruct")

    def __repr__(self) -> str:
        return '<numpy.ndarray, as named in a pickle>'


ARRAY_TYPE = _ArrayType()


def _checked_shape(shape: Any) -> Tuple[int, ...]:
    if not isinstance(shape, tuple) or len(shape) > 32 or not all(
            type(n) is int and n >= 0 for n in shape):
        refuse(f'refusing numpy array shape {shape!r:.60}: expected a tuple of at most 32 '
               'non-negative ints')
    return shape


def reconstruct_array(subtype: Any, shape: Any, dtype: Any) -> np.ndarray:
    """Stand-in for numpy's ``_reconstruct``: a plain numeric ndarray, its size charged."""
    if subtype is not ARRAY_TYPE:
        refuse(f'refusing to reconstruct {subtype!r:.60}: only numpy.ndarray is rebuilt')
    shape = _checked_shape(shape)
    dtype = _as_dtype(dtype)
    _active_guard().charge(math.prod(shape) * dtype.itemsize,
                           f'a numpy array of shape {shape} and dtype {dtype}')
    return _multiarray._reconstruct(np.ndarray, shape, dtype)


def array_scalar(dtype: Any, data: Any = None) -> np.generic:
    """Stand-in for numpy's ``scalar``: a numeric numpy scalar from its raw bytes."""
    if not isinstance(dtype, np.dtype):
        refuse(f'refusing numpy scalar of {dtype!r:.40}: expected a dtype')
    dtype = _checked_dtype(dtype, dtype)
    if not isinstance(data, bytes) or len(data) != dtype.itemsize:
        refuse(f'refusing numpy {dtype} scalar: expected {dtype.itemsize} raw bytes')
    _active_guard().charge(len(data), f'a numpy {dtype} scalar')
    return _multiarray.scalar(dtype, data)


def array_from_buffer(buf: Any, dtype: Any, shape: Any, order: Any, axis_order: Any = None
                      ) -> np.ndarray:
    """Stand-in for numpy's protocol-5 ``_frombuffer``: a view of in-file bytes, numeric only."""
    dtype = _as_dtype(dtype)
    shape = _checked_shape(shape)
    if not isinstance(buf, (bytes, bytearray, pickle.PickleBuffer)) or order not in ('C', 'F', 'K'):
        refuse('refusing numpy _frombuffer with a non-bytes buffer or an unknown order')
    array = np.frombuffer(buf, dtype=dtype)  # a view: nothing allocated beyond the file's bytes
    if order == 'K' and axis_order is not None:
        return array.reshape(shape, order='C').transpose(axis_order)
    return array.reshape(shape, order=order)


def _numeric_dtype_classes() -> List[type]:
    # The DType class of every numeric dtype (numpy >= 1.25 gives each dtype its own class):
    # BUILD sets a dtype's byte order through __setstate__, which torch allows only on instances
    # of allow-listed classes.
    codes = '?' + np.typecodes['AllInteger'] + np.typecodes['Float']
    return sorted({type(np.dtype(c)) for c in codes if np.dtype(c).kind in NUMERIC_KINDS},
                  key=lambda cls: cls.__name__)


def torch_numpy_globals() -> List[SafeGlobal]:
    """numpy entries for ``torch.serialization.safe_globals``: stand-ins plus BUILD-only classes."""
    entries: List[SafeGlobal] = [(ARRAY_TYPE, 'numpy.ndarray'), (numeric_dtype, 'numpy.dtype')]
    for core in _NUMPY_CORE:
        entries.append((reconstruct_array, f'{core}.multiarray._reconstruct'))
        entries.append((array_scalar, f'{core}.multiarray.scalar'))
    build_only = [np.ndarray] + _numeric_dtype_classes()
    entries += [(cls, f'{cls.__module__}.{cls.__qualname__}{_BUILD_ONLY}') for cls in build_only]
    return entries


def pickle_numpy_table() -> Dict[Tuple[str, str], Any]:
    """numpy entries for a restricted ``pickle.Unpickler.find_class``: (module, name) -> object."""
    table: Dict[Tuple[str, str], Any] = {('numpy', 'ndarray'): ARRAY_TYPE,
                                         ('numpy', 'dtype'): numeric_dtype}
    for core in _NUMPY_CORE:
        table[(f'{core}.multiarray', '_reconstruct')] = reconstruct_array
        table[(f'{core}.multiarray', 'scalar')] = array_scalar
        table[(f'{core}.numeric', '_frombuffer')] = array_from_buffer
    return table


def find_unsafe_value(obj: Any) -> Optional[str]:
    """Description of the first non-numeric numpy array/scalar in a loaded object, else None.

    A second line of defence behind the stand-ins: an allow-listed class may still build an
    array from pickled arguments (mmengine's ``HistoryBuffer(log_history, ...)`` calls
    ``np.array`` on them), so every loaded object graph is walked once.
    """
    import torch
    stack, seen = [(obj, 'the loaded object')], set()
    while stack:
        value, where = stack.pop()
        if id(value) in seen or isinstance(value, (str, bytes, int, float, bool, type(None),
                                                   torch.Tensor)):
            continue
        seen.add(id(value))
        if isinstance(value, (np.ndarray, np.generic)):
            dtype = value.dtype
            if dtype.hasobject or dtype.kind not in NUMERIC_KINDS or dtype.fields is not None:
                return f'{where} is a numpy {type(value).__name__} of dtype {dtype}'
        elif isinstance(value, dict):
            stack.extend((v, f'{where}[{k!r:.40}]') for k, v in value.items())
            stack.extend((k, f'a key of {where}') for k in value)
        elif isinstance(value, (list, tuple, set, frozenset)):
            stack.extend((v, f'{where}[{i}]') for i, v in enumerate(value))
        elif hasattr(value, '__dict__') and not callable(value):
            stack.extend((v, f'{where}.{k}') for k, v in vars(value).items())
    return None
