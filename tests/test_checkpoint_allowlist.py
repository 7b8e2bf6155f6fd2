"""Importing lip_det makes MMEngine checkpoints load with weights_only=True, and nothing more."""
import io
import os
import pickle

import numpy as np
import pytest
import torch
import torch.nn as nn
from mmengine.logging import HistoryBuffer, MessageHub

import lip_det  # noqa: F401  (installs the allow-list)


class _Evil:
    def __reduce__(self):
        return (os.system, ('echo pwned',))


def _roundtrip(obj):
    buf = io.BytesIO()
    torch.save(obj, buf)
    buf.seek(0)
    return torch.load(buf, weights_only=True)


def test_runner_checkpoint_loads_and_resumes(tmp_path):
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

    def runner(work_dir, **kw):
        return Runner(model=ToyModel(), work_dir=str(work_dir),
                      train_dataloader=dict(dataset=ToyData(), sampler=dict(type='DefaultSampler', shuffle=False),
                                            batch_size=4, num_workers=0),
                      optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1, momentum=0.9)),
                      train_cfg=dict(by_epoch=True, max_epochs=kw.pop('max_epochs', 2)),
                      default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=1)),
                      experiment_name=kw.pop('name'), **kw)

    runner(tmp_path, name='first').train()
    ckpt = tmp_path / 'epoch_2.pth'
    loaded = torch.load(ckpt, weights_only=True)  # the failure this module exists to fix
    assert isinstance(loaded['message_hub']['log_scalars']['train/loss'], HistoryBuffer)
    assert loaded['meta']['epoch'] == 2
    resumed = runner(tmp_path, name='second', max_epochs=3, resume=True, load_from=str(ckpt))
    resumed.train()
    assert resumed.train_loop.epoch == 3 and resumed.iter == 6


def test_history_buffer_and_numpy_values_roundtrip():
    buf = HistoryBuffer()
    for v in (1.0, 2.0, 3.0):
        buf.update(v)
    obj = {'hub': buf, 'scalar': np.float64(2.5), 'int': np.int64(3), 'arr': np.arange(4.0),
           'dtype': np.dtype('float32')}
    out = _roundtrip(obj)
    assert out['hub'].mean() == pytest.approx(2.0) and out['scalar'] == 2.5 and out['int'] == 3
    np.testing.assert_array_equal(out['arr'], np.arange(4.0))


@pytest.mark.parametrize('payload', [_Evil(), {'meta': _Evil()}, [HistoryBuffer(), _Evil()],
                                     {'fn': np.load}, {'cls': MessageHub}])
def test_other_globals_are_still_refused(payload, tmp_path):
    buf = io.BytesIO()
    torch.save(payload, buf)
    buf.seek(0)
    with pytest.raises(pickle.UnpicklingError, match='weights_only'):
        torch.load(buf, weights_only=True)


def _reduce_payload(func, args):
    class _Payload:
        def __reduce__(self):
            return (func, args)
    return _Payload()


@pytest.mark.parametrize('target,attr', [(HistoryBuffer, '__init__'), (HistoryBuffer, 'update'),
                                         (np.ndarray, 'tofile'), (HistoryBuffer.mean, '__globals__')])
def test_getattr_stand_in_resolves_only_history_buffer_statistics(target, attr):
    buf = io.BytesIO()
    torch.save({'x': _reduce_payload(getattr, (target, attr))}, buf)
    buf.seek(0)
    with pytest.raises(pickle.UnpicklingError, match='getattr|weights_only'):
        torch.load(buf, weights_only=True)
