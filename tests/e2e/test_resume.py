"""Kill a training run after its first checkpoint, --resume it, and check the restored state."""
from __future__ import annotations

import os
import os.path as osp
import signal
import subprocess
import sys
import time

import pytest
import torch

from lip_det.compat import load_runner_checkpoint

from .conftest import LIP_SYNTH_CONFIG, REPO, read_scalars, run_tool, tool_env, write_child_config

HERE = osp.dirname(osp.abspath(__file__))
EPOCHS = 3
ITERS_PER_EPOCH = 4


def _assert_same(a, b, path='state'):
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype, path
        assert torch.equal(a, b), path
    elif isinstance(a, dict):
        assert set(a) == set(b), (path, set(a) ^ set(b))
        for k in a:
            _assert_same(a[k], b[k], f'{path}.{k}')
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_same(x, y, f'{path}[{i}]')
    else:
        assert a == b, (path, a, b)


@pytest.mark.slow
def test_kill_and_resume_restores_identical_state(tmp_path, tiny_synthetic):
    probe = str(tmp_path / 'probe.pth')
    extra = f'''
custom_imports = dict(imports=['lip_det', 'probe_hooks'], allow_failed_imports=False)
custom_hooks = [dict(type='ResumeProbeHook', out={probe!r})]
train_cfg = dict(max_epochs={EPOCHS}, val_interval=100)
param_scheduler = [dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=6)]
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=1, max_keep_ckpts=5))
'''
    cfg = write_child_config(str(tmp_path / 'resume.py'), LIP_SYNTH_CONFIG, tiny_synthetic,
                             extra)
    work_dir = str(tmp_path / 'work')
    env = tool_env()
    env['PYTHONPATH'] = HERE + os.pathsep + env['PYTHONPATH']
    cmd = [sys.executable, osp.join(REPO, 'tools', 'train.py'), cfg, '--work-dir', work_dir]
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    marker = osp.join(work_dir, 'last_checkpoint')
    deadline = time.time() + 300
    try:
        while not osp.exists(marker):
            if proc.poll() is not None:
                pytest.fail(f'training ended before its first checkpoint:\n{proc.stderr.read()}')
            if time.time() > deadline:
                pytest.fail('no checkpoint within 300 s')
            time.sleep(0.05)
        # last_checkpoint is written after the checkpoint file is complete.
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    with open(marker) as f:
        last = f.read().strip()
    assert not osp.exists(osp.join(work_dir, f'epoch_{EPOCHS}.pth')), 'run was not interrupted'
    # Runner checkpoints hold HistoryBuffers: read them as --resume does, with lip_det's loader.
    ckpt = load_runner_checkpoint(last)
    done_epochs = ckpt['meta']['epoch']
    assert done_epochs >= 1 and ckpt['meta']['iter'] == done_epochs * ITERS_PER_EPOCH

    resumed = run_tool([osp.join(REPO, 'tools', 'train.py'), cfg, '--work-dir', work_dir,
                        '--resume'], env=env, timeout=300)
    assert f'resumed epoch: {done_epochs}, iter: {ckpt["meta"]["iter"]}' in \
        resumed.stdout + resumed.stderr
    state = torch.load(probe, map_location='cpu', weights_only=True)
    assert state['epoch'] == done_epochs and state['iter'] == ckpt['meta']['iter']
    _assert_same(state['state_dict'], ckpt['state_dict'], 'state_dict')
    _assert_same(state['optimizer'], ckpt['optimizer'], 'optimizer')
    assert state['optimizer']['state'], 'SGD momentum buffers were not restored'
    _assert_same(state['param_schedulers'], ckpt['param_schedulers'], 'param_schedulers')
    final = load_runner_checkpoint(osp.join(work_dir, f'epoch_{EPOCHS}.pth'))
    assert final['meta']['iter'] == EPOCHS * ITERS_PER_EPOCH
    # The resumed run logged exactly the iterations that were left.
    iters = [r['iter'] for r in read_scalars(work_dir) if 'loss' in r]
    assert iters[-1] == EPOCHS * ITERS_PER_EPOCH
    assert ckpt['meta']['iter'] + 1 in iters
