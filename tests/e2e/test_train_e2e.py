"""Train a tiny LIP Faster R-CNN on a generated set with tools/train.py, then test it with tools/test.py."""
from __future__ import annotations

import json
import os
import os.path as osp
import pickle
import subprocess
import sys

import numpy as np
import pytest

from .conftest import LIP_SYNTH_CONFIG, REPO, read_scalars, run_tool, write_child_config

EPOCHS = 8
ITERS_PER_EPOCH = 4  # 16 images, batch 4

TRAIN_EXTRA = f'''
train_cfg = dict(max_epochs={EPOCHS}, val_interval={EPOCHS})
param_scheduler = [dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=4)]
optim_wrapper = dict(optimizer=dict(lr=0.01))
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval={EPOCHS}))
log_processor = dict(window_size=1)
'''


@pytest.fixture(scope='module')
def trained(tmp_path_factory, tiny_synthetic):
    """Config, work dir and stdout of a finished 32-iteration LIP-R18 training run."""
    tmp = tmp_path_factory.mktemp('train')
    cfg = write_child_config(str(tmp / 'lip_tiny.py'), LIP_SYNTH_CONFIG, tiny_synthetic,
                             TRAIN_EXTRA)
    work_dir = str(tmp / 'work')
    proc = run_tool([osp.join(REPO, 'tools', 'train.py'), cfg, '--work-dir', work_dir],
                    timeout=400)
    return dict(cfg=cfg, work_dir=work_dir, stdout=proc.stdout + proc.stderr,
                ckpt=osp.join(work_dir, f'epoch_{EPOCHS}.pth'))


@pytest.mark.slow
def test_loss_decreases_and_coco_metrics_come_out(trained):
    records = read_scalars(trained['work_dir'])
    losses = [r['loss'] for r in records if 'loss' in r]
    assert len(losses) == EPOCHS * ITERS_PER_EPOCH
    assert all(np.isfinite(losses))
    first, last = np.mean(losses[:4]), np.mean(losses[-4:])
    assert last < 0.8 * first, (first, last)
    val = [r for r in records if 'coco/bbox_mAP_s' in r]
    assert len(val) == 1
    for key in ('coco/bbox_mAP', 'coco/bbox_mAP_50', 'coco/bbox_mAP_75', 'coco/bbox_mAP_s',
                'coco/bbox_mAP_m', 'coco/bbox_mAP_l'):
        # -1 means "no ground truth in this range"; the tiny set has every range.
        assert 0.0 <= val[0][key] <= 1.0, (key, val[0][key])
    assert 'Average Precision  (AP) @[ IoU=0.50:0.95 | area= small' in trained['stdout']
    # The backbone really was LIP-ResNet-18 (its logit modules are in the checkpoint).
    from lip_det.compat import load_runner_checkpoint  # a Runner checkpoint: HistoryBuffers
    sd = load_runner_checkpoint(trained['ckpt'])['state_dict']
    assert 'backbone.maxpool.logit.conv.weight' in sd
    assert any('bottleneck_shared' in k for k in sd)


@pytest.mark.slow
def test_checkpoint_needs_and_gets_the_allow_list(trained):
    import lip_det  # noqa: F401
    from mmengine.logging import HistoryBuffer
    from mmengine.runner.checkpoint import _load_checkpoint
    ckpt = _load_checkpoint(trained['ckpt'], map_location='cpu')  # what --resume/load_from use
    assert ckpt['meta']['epoch'] == EPOCHS and ckpt['meta']['iter'] == EPOCHS * ITERS_PER_EPOCH
    buffers = ckpt['message_hub']['log_scalars']
    assert isinstance(buffers['train/loss'], HistoryBuffer)
    # torch's safe unpickler refuses mmengine's checkpoint, with or without lip_det imported:
    # lip_det's allow-list is scoped to mmengine's checkpoint loader, never process-wide.
    code = ('import pickle, sys, torch\n'
            'if sys.argv[2] == "1":\n    import lip_det\n'
            'try:\n    torch.load(sys.argv[1], weights_only=True)\n'
            'except pickle.UnpicklingError as e:\n    print("refused", e)\n')
    for with_lip_det in ('0', '1'):
        out = subprocess.run([sys.executable, '-c', code, trained['ckpt'], with_lip_det],
                             capture_output=True, text=True, timeout=120, cwd=REPO)
        assert out.stdout.startswith('refused') and 'HistoryBuffer' in out.stdout, out.stderr


@pytest.mark.slow
def test_test_tool_on_trained_checkpoint(trained, tmp_path):
    metrics_json = str(tmp_path / 'metrics.json')
    out_pkl = str(tmp_path / 'preds.pkl')
    proc = run_tool([osp.join(REPO, 'tools', 'test.py'), trained['cfg'], trained['ckpt'],
                     '--work-dir', str(tmp_path / 'test'), '--out', out_pkl,
                     '--show-dir', 'painted', '--metrics-json', metrics_json], timeout=300)
    text = proc.stdout
    # The 12-number pycocotools summary and our AP table.
    assert text.count('Average Precision  (AP)') == 6
    assert text.count('Average Recall     (AR)') == 6
    assert 'AP_S' in text and 'AP_M' in text
    with open(metrics_json) as f:
        metrics = json.load(f)
    train_val = [r for r in read_scalars(trained['work_dir']) if 'coco/bbox_mAP_s' in r][0]
    # Same weights, same data, deterministic eval: test.py reproduces the training-time val.
    for key in ('bbox_mAP', 'bbox_mAP_s', 'bbox_mAP_m', 'bbox_mAP_l'):
        assert metrics['coco/' + key] == pytest.approx(train_val['coco/' + key], abs=1e-9)
    with open(out_pkl, 'rb') as f:
        preds = pickle.load(f)  # written by this test's own run
    assert len(preds) == 8 and all('pred_instances' in p for p in preds)
    painted = []
    for root, _dirs, files in os.walk(str(tmp_path / 'test')):
        if osp.basename(root) == 'painted':
            painted += [f for f in files if f.endswith('.png')]
    assert len(painted) == 8
