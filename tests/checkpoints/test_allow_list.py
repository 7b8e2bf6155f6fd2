"""MMEngine checkpoints load with weights_only=True through lip_det's loader, and nothing more.

The allow-list is scoped to mmengine's local-file checkpoint loader (which Runner.resume,
Runner.load_checkpoint and the Pretrained initialiser use): importing lip_det adds nothing to
``torch.load`` for the rest of the process.
"""
import io
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn as nn
from mmengine.logging import HistoryBuffer, MessageHub
from mmengine.runner.checkpoint import CheckpointLoader, _load_checkpoint

import lip_det  # noqa: F401  (installs the checkpoint loader)
from lip_det.checkpoints import CheckpointError
from lip_det.compat import load_from_local, runner_checkpoint_globals, runner_checkpoint_scope

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class _Evil:
    def __reduce__(self):
        return (os.system, ('echo pwned',))


def _save(obj, tmp_path, name='x.pth'):
    path = str(tmp_path / name)
    torch.save(obj, path)
    return path


def _toy_runner(work_dir, **kw):
    from mmengine.model import BaseModel
    from mmengine.runner import Runner

    class ToyModel(BaseModel):
        def __init__(self):
            super().__init__()
            self.linear = nn.Linear(2, 1)

        def forward(self, inputs, labels=None, mode='tensor'):
            out = self.linear(torch.stack(inputs)).squeeze(-1)
            return {'loss': ((out - torch.stack(labels)) ** 2).mean()} if mode == 'loss' else out

    class ToyData(torch.utils.data.Dataset):
        def __len__(self):
            return 8

        def __getitem__(self, i):
            return dict(inputs=torch.tensor([i / 8.0, 1.0]), labels=torch.tensor(float(i % 2)))

    return Runner(model=ToyModel(), work_dir=str(work_dir),
                  train_dataloader=dict(dataset=ToyData(),
                                        sampler=dict(type='DefaultSampler', shuffle=False),
                                        batch_size=4, num_workers=0),
                  optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1, momentum=0.9)),
                  train_cfg=dict(by_epoch=True, max_epochs=kw.pop('max_epochs', 2)),
                  default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=1)),
                  experiment_name=kw.pop('name'), **kw)


@pytest.fixture(scope='module')
def runner_checkpoint(tmp_path_factory):
    """A checkpoint written by a Runner after 2 epochs (HistoryBuffers, numpy values in meta)."""
    work_dir = tmp_path_factory.mktemp('toy_runner')
    _toy_runner(work_dir, name='first').train()
    return work_dir, str(work_dir / 'epoch_2.pth')


def test_runner_checkpoint_loads_and_resumes(runner_checkpoint):
    work_dir, ckpt = runner_checkpoint
    # the failure this module exists to fix: torch >= 2.6 refuses mmengine's own checkpoint...
    with pytest.raises(pickle.UnpicklingError, match='HistoryBuffer|weights_only'):
        torch.load(ckpt, weights_only=True)
    # ...while mmengine's loader (what --resume and load_from use) reads it with lip_det's list
    assert CheckpointLoader._get_checkpoint_loader(ckpt) is load_from_local
    loaded = _load_checkpoint(ckpt, map_location='cpu')
    assert isinstance(loaded['message_hub']['log_scalars']['train/loss'], HistoryBuffer)
    assert loaded['meta']['epoch'] == 2
    resumed = _toy_runner(work_dir, name='second', max_epochs=3, resume=True, load_from=ckpt)
    resumed.train()
    assert resumed.train_loop.epoch == 3 and resumed.iter == 6


def test_import_adds_nothing_process_wide():
    """A fresh interpreter: import lip_det allow-lists nothing for torch.load process-wide.

    (Importing mmdet makes torch.distributed.tensor register its own DTensor types: torch's.)
    """
    code = ('import torch, mmengine.logging\n'
            'before = set(torch.serialization.get_safe_globals())\n'
            'import lip_det\n'
            'added = set(torch.serialization.get_safe_globals()) - before\n'
            'mod = lambda g: getattr(g[0] if isinstance(g, tuple) else g, "__module__", "")\n'
            'print(sorted(repr(g) for g in added if not mod(g).startswith("torch.")))\n')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                         cwd=REPO, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == '[]'


def test_scope_allows_exactly_the_runner_types_and_restores():
    from torch import _weights_only_unpickler as wo
    before = set(torch.serialization.get_safe_globals())
    names_before = set(wo._get_user_allowed_globals())
    with runner_checkpoint_scope():
        during = set(torch.serialization.get_safe_globals()) - before
        resolves = {k: v for k, v in wo._get_user_allowed_globals().items()
                    if k not in names_before}
    assert set(torch.serialization.get_safe_globals()) == before
    assert during == set(runner_checkpoint_globals())
    # A GLOBAL opcode reads module and name line by line: it can never spell a name with '\n'.
    reachable = {k: v for k, v in resolves.items() if '\n' not in k}
    assert set(reachable) == {
        'mmengine.logging.history_buffer.HistoryBuffer', 'builtins.getattr', 'numpy.ndarray',
        'numpy.dtype', 'numpy.core.multiarray._reconstruct', 'numpy._core.multiarray._reconstruct',
        'numpy.core.multiarray.scalar', 'numpy._core.multiarray.scalar'}
    # ...and none of them is the real getattr or numpy's real class/function: only stand-ins.
    assert not {id(v) for v in reachable.values()} & {id(getattr), id(np.ndarray), id(np.dtype)}
    # BUILD-only entries: ndarray and the numeric dtype classes, no str/bytes/datetime/object.
    build_only = {v for k, v in resolves.items() if '\n' in k}
    assert np.ndarray in build_only and type(np.dtype('f4')) in build_only
    for code in ('U', 'S', 'M8', 'm8', 'O', 'V8', 'c8'):
        assert type(np.dtype(code)) not in build_only, code


def test_history_buffer_and_numpy_values_roundtrip(tmp_path):
    buf = HistoryBuffer()
    for v in (1.0, 2.0, 3.0):
        buf.update(v)
    obj = {'hub': buf, 'scalar': np.float64(2.5), 'int': np.int64(3), 'arr': np.arange(4.0),
           'big_endian': np.arange(3, dtype='>i4'), 'bool': np.array([True, False]),
           'dtype': np.dtype('float32')}
    out = load_from_local(_save(obj, tmp_path), 'cpu')
    assert out['hub'].mean() == pytest.approx(2.0) and out['scalar'] == 2.5 and out['int'] == 3
    np.testing.assert_array_equal(out['arr'], np.arange(4.0))
    np.testing.assert_array_equal(out['big_endian'], np.arange(3))
    assert out['big_endian'].dtype.kind == 'i' and out['dtype'] == np.float32
    assert np.dtype('i4').byteorder == '='  # BUILD never touched numpy's shared dtype


@pytest.mark.parametrize('payload,named', [
    (_Evil(), 'posix.system'), ({'meta': _Evil()}, 'posix.system'),
    ([HistoryBuffer(), _Evil()], 'posix.system'), ({'fn': np.load}, 'load'),
    ({'cls': MessageHub}, 'MessageHub')])
def test_other_globals_are_still_refused(payload, named, tmp_path):
    path = _save(payload, tmp_path)
    with pytest.raises(CheckpointError, match=f'pickles .*{named.split(".")[-1]}'):
        _load_checkpoint(path)
    with pytest.raises(pickle.UnpicklingError, match='weights_only'):
        torch.load(path, weights_only=True)


def _reduce_payload(func, args):
    class _Payload:
        def __reduce__(self):
            return (func, args)
    return _Payload()


@pytest.mark.parametrize('target,attr', [(HistoryBuffer, '__init__'), (HistoryBuffer, 'update'),
                                         (np.ndarray, 'tofile'), (HistoryBuffer.mean, '__globals__')])
def test_getattr_stand_in_resolves_only_history_buffer_statistics(target, attr, tmp_path):
    buf = io.BytesIO()
    torch.save({'x': _reduce_payload(getattr, (target, attr))}, buf)
    path = tmp_path / 'getattr.pth'
    path.write_bytes(buf.getvalue())
    with pytest.raises(CheckpointError, match='getattr|outside the allow-list'):
        _load_checkpoint(str(path))


def test_resume_from_broken_checkpoint_is_one_clear_error(runner_checkpoint, tmp_path):
    work_dir, _ = runner_checkpoint
    broken = tmp_path / 'broken.pth'
    broken.write_bytes(b'\x80\x02' + os.urandom(64))
    runner = _toy_runner(tmp_path, name='broken', resume=True, load_from=str(broken))
    with pytest.raises(CheckpointError,
                       match="checkpoint '.*broken.pth' is not a PyTorch checkpoint"):
        runner.train()
