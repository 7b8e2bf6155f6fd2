"""Hostile files against every lip_det loader: refused in one named line, nothing ever run.

The three loaders share one mechanism (``lip_det.checkpoints.allow_list``): reference
checkpoints (``load_checkpoint_file``), mmengine Runner checkpoints (mmengine's local loader,
which lip_det replaces: ``--resume``, ``load_from``, ``Pretrained``) and result pickles
(``load_result_pickle``). Each case is run through all three, as a plain pickle and, where it is
one, as a ``torch.save`` zip archive and legacy (pre-1.6) file.
"""
from __future__ import annotations

import io
import os
import pickle
import random
import struct

import numpy as np
import pytest
import torch

import lip_det  # noqa: F401  (installs mmengine's checkpoint loader)
from lip_det.checkpoints import CheckpointError, load_checkpoint_file, load_result_pickle
from lip_det.checkpoints.allow_list import ALLOCATION_FACTOR, ALLOCATION_SLACK, allocation_limit

try:
    from numpy._core import multiarray
except ImportError:  # pragma: no cover - numpy 1.x
    from numpy.core import multiarray


def _runner_load(path):
    from mmengine.runner.checkpoint import _load_checkpoint
    return _load_checkpoint(path, map_location='cpu')


LOADERS = {'reference': load_checkpoint_file, 'runner': _runner_load,
           'result': load_result_pickle}
# Result pickles are plain pickles; torch's loaders meet all three file kinds.
LOADER_FORMATS = [(loader, how) for loader in sorted(LOADERS) for how in ('pickle', 'zip', 'legacy')
                  if loader != 'result' or how == 'pickle']


class _Reduce:
    """Pickles as ``func(*args)`` with no BUILD: what a crafted file can ask for."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return (self.func, self.args)


def _write(tmp_path, obj, how, name='f.pth'):
    path = str(tmp_path / f'{how}-{name}')
    if how == 'pickle':
        with open(path, 'wb') as f:
            pickle.dump(obj, f, protocol=2)
    else:
        torch.save(obj, path, _use_new_zipfile_serialization=(how == 'zip'))
    return path


def _sha(path):
    import hashlib
    return hashlib.sha256(open(path, 'rb').read()).hexdigest()


def _refused(loader, path, match):
    before = _sha(path)
    with pytest.raises(CheckpointError, match=match) as info:
        LOADERS[loader](path)
    message = str(info.value)
    assert '\n' not in message and repr(path) in message, message
    assert _sha(path) == before
    return message


# ------------------------------------------------------------------ object arrays
OBJECT_ARRAYS = {
    # the crafted pickle: numpy.dtype('O8', False, True), reduced without BUILD
    'object-dtype': _Reduce(np.dtype, 'O8', False, True),
    'pickled-object-array': np.array([1, 'a', None], dtype=object),
    'ndarray-call': _Reduce(np.ndarray, (2,), 'O'),
    'reconstruct-object': _Reduce(multiarray._reconstruct, np.ndarray, (2,), b'O'),
    'structured-with-object': np.zeros(2, dtype=[('a', 'f4'), ('b', 'O')]),
    'unicode-array': np.array(['ab', 'c']),
    'datetime-array': np.array(['2024-01-01'], dtype='M8[D]'),
}


@pytest.mark.parametrize('loader,how', LOADER_FORMATS)
@pytest.mark.parametrize('case', sorted(OBJECT_ARRAYS))
def test_non_numeric_arrays_are_refused_everywhere(tmp_path, loader, how, case):
    path = _write(tmp_path, {'x': OBJECT_ARRAYS[case]}, how)
    message = _refused(loader, path, 'safely')
    if case == 'ndarray-call':  # numpy.ndarray names a token that cannot be called
        assert 'refusing to call numpy.ndarray(...) directly' in message
    else:
        assert 'numpy dtype' in message and 'never object arrays' in message
        if loader == 'reference':  # the one loader with a documented escape hatch
            assert '--trust-pickle' in message


@pytest.mark.parametrize('loader', ['reference', 'runner'])
def test_history_buffer_constructor_cannot_make_object_arrays(tmp_path, loader):
    """HistoryBuffer(log, count) calls np.array on pickled lists: the loaded graph is checked."""
    from mmengine.logging import HistoryBuffer
    path = _write(tmp_path, {'hub': _Reduce(HistoryBuffer, ['a', {'b': 1}], [1, 2])}, 'zip')
    # both loaders allow HistoryBuffer (the tools read tools/train.py checkpoints), and both
    # refuse the object array its constructor builds
    message = _refused(loader, path, 'safely')
    assert "_log_history is a numpy ndarray of dtype object" in message


def _formats(loader):
    # torch.load reads torch.save files only; result pickles are plain pickles
    return ['pickle'] if loader == 'result' else ['zip', 'legacy']


@pytest.mark.parametrize('loader', sorted(LOADERS))
def test_ndarray_named_in_a_pickle_cannot_be_called_or_instantiated(tmp_path, loader):
    path = tmp_path / 'ndarray.pkl'
    # NEWOBJ: ndarray.__new__(ndarray) with no BUILD (a torch loader reads this first pickle)
    path.write_bytes(b'\x80\x02cnumpy\nndarray\n)\x81.')
    message = _refused(loader, str(path), 'NEWOBJ class argument must be a type'
                       if loader == 'result' else 'refusing to create a numpy.ndarray directly')
    assert str(path) in message and ('NEWOBJ' in message or 'numpy.ndarray' in message), message
    # REDUCE: ndarray((2**40,), 'f8'), an unbounded uninitialised allocation if it ran
    path.write_bytes(pickle.dumps(_Reduce(np.ndarray, (2 ** 40,), 'f8'), protocol=2))
    message = _refused(loader, str(path), r'refusing to call numpy\.ndarray\(\.\.\.\) directly')
    assert 'ndarray' in message and str(path) in message


def test_old_numpy_dtype_pickles_with_int_flags_load(tmp_path):
    """Older numpy wrote numpy.dtype('f8', 0, 1): still read, by every loader."""
    data = pickle.dumps(np.arange(3.0), protocol=2).replace(b'\x89\x88\x87', b'K\x00K\x01\x87')
    assert b'K\x00K\x01' in data
    path = tmp_path / 'old.pkl'
    path.write_bytes(data)
    assert np.array_equal(load_result_pickle(str(path)), np.arange(3.0))
    path.write_bytes(pickle.dumps(_Reduce(np.dtype, 'f8', 0, 2), protocol=2))
    _refused('result', str(path), 'expected booleans')


def test_numeric_arrays_and_scalars_still_load(tmp_path):
    values = {'f4': np.arange(6, dtype='f4').reshape(2, 3), 'bool': np.array([True, False]),
              'u1': np.arange(3, dtype='u1'), 'fortran': np.asfortranarray(np.eye(3)),
              'big': np.arange(3, dtype='>i4'), 'scalar': np.float64(0.5), 'i8': np.int64(7),
              'dtype': np.dtype('i2'), 'large': np.ones(200_000)}
    for loader in LOADERS:
        for how in _formats(loader):
            out = LOADERS[loader](_write(tmp_path, values, how))
            for key, value in values.items():
                assert np.array_equal(out[key], value), (how, loader, key)


# ------------------------------------------------------------------ allocation bounds
@pytest.mark.parametrize('loader', sorted(LOADERS))
@pytest.mark.parametrize('shape,dtype', [((2 ** 40,), b'b'), ((2 ** 20, 2 ** 20), b'f8'),
                                         ((2 ** 31,), b'f8'), ((3, 2 ** 62, 5), b'u1')])
def test_oversized_reconstruct_is_refused_before_allocating(tmp_path, loader, shape, dtype):
    path = _write(tmp_path, _Reduce(multiarray._reconstruct, np.ndarray, shape, dtype), 'pickle')
    assert os.path.getsize(path) < 200
    message = _refused(loader, path, 'needs [0-9,]+ bytes, more than')
    assert f'at most {allocation_limit(os.path.getsize(path)):,} bytes' in message


@pytest.mark.parametrize('loader', sorted(LOADERS))
def test_allocation_budget_is_the_files_size_times_a_factor_plus_a_constant(tmp_path, loader):
    how = _formats(loader)[0]

    def write(nbytes):
        return _write(tmp_path, _Reduce(multiarray._reconstruct, np.ndarray, (nbytes,), b'u1'), how)

    size = os.path.getsize(write(ALLOCATION_SLACK))
    limit = ALLOCATION_FACTOR * size + ALLOCATION_SLACK
    assert allocation_limit(size) == limit
    # the result unpickler also charges the two bytes of b'u1' its _codecs.encode stand-in makes
    limit -= 2 if loader == 'result' else 0
    path = write(limit)  # exactly what is left: allowed
    assert os.path.getsize(path) == size
    assert len(LOADERS[loader](path)) == limit
    path = write(limit + 1)
    assert os.path.getsize(path) == size
    _refused(loader, path, f'needs {limit + 1:,} bytes, more than')


@pytest.mark.parametrize('loader', sorted(LOADERS))
@pytest.mark.parametrize('shape', [(-1,), (2.0,), [4], (True,), tuple([1] * 33)])
def test_malformed_shapes_are_refused(tmp_path, loader, shape):
    path = _write(tmp_path, _Reduce(multiarray._reconstruct, np.ndarray, shape, b'b'), 'pickle')
    message = _refused(loader, path, 'shape')
    assert path in message and 'shape' in message


def _encoded_many_times(text, times):
    body = b'\x80\x02(X' + struct.pack('<I', len(text)) + text.encode() + b'q\x00'
    body += b'c_codecs\nencode\nh\x00X\x06\x00\x00\x00latin1\x86R' * times
    return body + b'l.'


def test_result_pickle_memo_amplification_is_bounded(tmp_path):
    """A memoised 256 KiB string encoded 40 times would cost 10 MiB from a 256 KiB file."""
    text = 'x' * (256 * 1024)
    path = tmp_path / 'amplify.pkl'
    path.write_bytes(_encoded_many_times(text, 2))
    assert load_result_pickle(str(path))[1:] == [text.encode()] * 2
    path.write_bytes(_encoded_many_times(text, 40))
    _refused('result', str(path), 'a bytes object needs')


def test_legacy_storage_claiming_terabytes_fails_cleanly(tmp_path):
    """torch allocates a legacy storage by its claimed size: refused as unreadable, in one line."""
    class Marker:
        pass

    class Pickler(pickle.Pickler):
        def persistent_id(self, obj):
            return ('storage', torch.FloatStorage, '0', 'cpu', 2 ** 40, None) \
                if isinstance(obj, Marker) else None

    buf = io.BytesIO()
    for obj in (0x1950a86a20f9469cfc6c, 1001,
                {'protocol_version': 1001, 'little_endian': True,
                 'type_sizes': {'short': 2, 'int': 4, 'long': 4}}):
        pickle.dump(obj, buf, protocol=2)
    Pickler(buf, protocol=2).dump({'w': Marker()})
    pickle.dump(['0'], buf, protocol=2)
    path = tmp_path / 'storage.pth'
    path.write_bytes(buf.getvalue() + struct.pack('<q', 8) + bytes(32))
    for loader in ('reference', 'runner'):
        _refused(loader, str(path), 'is not a PyTorch checkpoint')


# ------------------------------------------------------------------ globals are named
def _payloads(marker):
    return {
        'os.system': (_Reduce(os.system, f'touch {marker}'), r'posix\.system \(os\.system\)'),
        'eval': (_Reduce(eval, f'open({str(marker)!r}, "w")'), r'builtins\.eval'),
        'getattr-walk': (_Reduce(getattr, np.ndarray, 'tofile'), r'builtins\.getattr|getattr\('),
        'nested': ({'meta': [1, {'hook': _Reduce(os.makedirs, str(marker))}]},
                   r'posix\.makedirs|os\.makedirs'),
    }


@pytest.mark.parametrize('loader,how', LOADER_FORMATS)
@pytest.mark.parametrize('case', ['os.system', 'eval', 'getattr-walk', 'nested'])
def test_code_is_refused_and_the_global_named(tmp_path, loader, how, case):
    marker = tmp_path / 'code-ran'
    payload, named = _payloads(marker)[case]
    path = _write(tmp_path, {'x': payload}, how)
    message = _refused(loader, path, named)
    assert not marker.exists(), 'a loader executed pickled code'
    # only the reference-checkpoint tools have the documented --trust-pickle escape hatch
    assert ('--trust-pickle' in message) == (loader == 'reference'), message


def test_protocol_4_stack_global_is_named(tmp_path):
    marker = tmp_path / 'code-ran'
    path = tmp_path / 'p4.pkl'
    path.write_bytes(pickle.dumps({'x': _Reduce(os.system, f'touch {marker}')}, protocol=4))
    assert b'\x93' in path.read_bytes()  # STACK_GLOBAL: the name is on the stack, not inline
    for loader in ('reference', 'runner', 'result'):
        message = _refused(loader, str(path), r'posix\.system')
        assert 'posix.system' in message and not marker.exists(), (loader, message)


# ------------------------------------------------------------------ garbage is not "trust it"
def _garbage(seed):
    rng = random.Random(seed)
    return b'\x80' + bytes(rng.randrange(256) for _ in range(rng.randrange(1, 4096)))


@pytest.mark.parametrize('loader', sorted(LOADERS))
@pytest.mark.parametrize('seed', range(12))
def test_random_bytes_are_unreadable_not_untrusted(tmp_path, loader, seed):
    path = tmp_path / f'garbage{seed}.pth'
    path.write_bytes(_garbage(seed))
    message = _refused(loader, str(path), 'not a PyTorch checkpoint|not a readable pickle|safely')
    assert '--trust-pickle' not in message  # trusting garbage would only run it


@pytest.mark.parametrize('loader', ['reference', 'runner'])
@pytest.mark.parametrize('content,match', [
    (b'', 'is empty \\(0 bytes\\)'), (b'PK\x03\x04' + bytes(60), 'not a PyTorch checkpoint'),
    (b'hello world', 'neither a torch.save zip archive nor a pickle')])
def test_empty_and_foreign_files(tmp_path, loader, content, match):
    path = tmp_path / 'x.pth'
    path.write_bytes(content)
    _refused(loader, str(path), match)


def test_truncated_checkpoint_is_unreadable(tmp_path):
    path = _write(tmp_path, {'w': torch.ones(1000)}, 'zip')
    data = open(path, 'rb').read()
    with open(path, 'wb') as f:
        f.write(data[:len(data) // 2])
    for loader in ('reference', 'runner'):
        message = _refused(loader, path, 'not a PyTorch checkpoint')
        assert '--trust-pickle' not in message


@pytest.mark.parametrize('loader', ['reference', 'runner', 'result'])
def test_missing_and_directory_paths(tmp_path, loader):
    with pytest.raises(CheckpointError, match='does not exist'):
        LOADERS[loader](str(tmp_path / 'nope.pth'))
    with pytest.raises(CheckpointError, match='is a directory'):
        LOADERS[loader](str(tmp_path))


def test_the_tools_loader_reads_a_runner_checkpoint_without_trust(tmp_path):
    """visualize_importance / importance_stats / convert_checkpoint take tools/train.py output."""
    import numpy as np
    import torch
    from mmengine.logging import HistoryBuffer

    from lip_det.checkpoints import load_checkpoint_file
    buf = HistoryBuffer()
    buf.update(1.5)
    path = tmp_path / 'epoch_1.pth'
    torch.save({'state_dict': {'backbone.w': torch.ones(2)},
                'message_hub': {'log_scalars': {'loss': buf}},
                'meta': {'seed': np.int64(3), 'arr': np.zeros(2)}}, path)
    ckpt = load_checkpoint_file(str(path))
    assert torch.equal(ckpt['state_dict']['backbone.w'], torch.ones(2))
    assert ckpt['message_hub']['log_scalars']['loss'].current() == 1.5
    # the allow-list is scoped to the call: a plain torch.load still refuses the file
    with pytest.raises(Exception):
        torch.load(path, weights_only=True)
