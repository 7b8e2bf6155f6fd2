"""Two-process torchrun training and validation with the gloo backend on the CPU (dist_train.sh)."""
from __future__ import annotations

import os
import os.path as osp
import sys

import pytest
import torch

from .conftest import (LIP_SYNTH_CONFIG, REPO, read_scalars, run_tool, tool_env,
                       write_child_config)

HERE = osp.dirname(osp.abspath(__file__))


@pytest.mark.slow
def test_two_process_gloo_training_keeps_ranks_in_sync(tmp_path, tiny_synthetic, free_port):
    probe_dir = tmp_path / 'probe'
    probe_dir.mkdir()
    extra = f'''
custom_imports = dict(imports=['lip_det', 'probe_hooks'], allow_failed_imports=False)
custom_hooks = [dict(type='RankProbeHook', out_dir={str(probe_dir)!r})]
train_cfg = dict(max_epochs=1, val_interval=1)
param_scheduler = [dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=2)]
default_hooks = dict(logger=dict(interval=1))
'''
    cfg = write_child_config(str(tmp_path / 'dist.py'), LIP_SYNTH_CONFIG, tiny_synthetic, extra,
                             batch_size=2)
    env = tool_env()
    env.update(PYTHONPATH=HERE + os.pathsep + env['PYTHONPATH'], PORT=str(free_port),
               OMP_NUM_THREADS='1', PYTHON=sys.executable)
    work_dir = str(tmp_path / 'work')
    run_tool(['bash', osp.join(REPO, 'tools', 'dist_train.sh'), cfg, '2', '--work-dir',
              work_dir], env=env, timeout=300)
    ranks = [torch.load(str(probe_dir / f'rank{r}.pth'), map_location='cpu',
                        weights_only=True) for r in (0, 1)]
    for r in ranks:
        assert r['world_size'] == 2 and r['backend'] == 'gloo'
        # 16 images, 2 per process, 2 processes: 4 iterations of one epoch.
        assert r['iter'] == 4
    # DDP averaged the gradients: both replicas hold the same parameters after 4 steps...
    params0, params1 = ranks[0]['params'], ranks[1]['params']
    assert set(params0) == set(params1)
    for k in params0:
        assert torch.equal(params0[k], params1[k]), k
    # ...while BN statistics (not broadcast) differ: the ranks saw different images.
    stats = [k for k in ranks[0]['state_dict'] if k.endswith('running_mean')]
    assert stats and any(not torch.equal(ranks[0]['state_dict'][k], ranks[1]['state_dict'][k])
                         for k in stats)
    # Validation ran on both ranks; their results were gathered for one COCO evaluation.
    val = [r for r in read_scalars(work_dir) if 'coco/bbox_mAP_s' in r]
    assert len(val) == 1 and -1.0 <= val[0]['coco/bbox_mAP_s'] <= 1.0
    # Rank 0 wrote the checkpoint with those parameters.
    from lip_det.compat import load_runner_checkpoint  # a Runner checkpoint: HistoryBuffers
    ckpt = load_runner_checkpoint(osp.join(work_dir, 'epoch_1.pth'))
    assert ckpt['meta']['iter'] == 4
    for k, v in params0.items():
        assert torch.equal(ckpt['state_dict'][k], v), k
