"""Pretrain -> convert -> detect, on the CPU: the whole ImageNet-pretraining path in miniature.

A LIP-ResNet-18 (base width 8) classifier trains a few iterations on the synthetic
classification set through tools/train.py; its Runner checkpoint (mmpretrain's layout) is
converted by tools/convert_checkpoint.py; a synthetic Faster R-CNN loads it with
``init_cfg=dict(type='Pretrained')`` and its backbone must then compute exactly what the
classifier's backbone computes; finally the detector trains a few iterations through
tools/train.py.
"""
from __future__ import annotations

import os.path as osp

import pytest
import torch

from .conftest import LIP_SYNTH_CONFIG, REPO, read_scalars, run_tool, write_child_config

CLS_CONFIG = osp.join(REPO, 'configs', 'synthetic', 'lip_r18_cls_synthetic.py')
WIDTH = 8
BACKBONE_ARGS = dict(base_channels=WIDTH, logit_width=8)


def _cls_config(path: str, data_root: str) -> str:
    text = f'''_base_ = {CLS_CONFIG!r}
data_root = {data_root.rstrip('/') + '/'!r}
model = dict(backbone=dict(base_channels={WIDTH}, logit_width=8), head=dict(in_channels={WIDTH * 8}))
train_dataloader = dict(batch_size=5, dataset=dict(data_root=data_root))
val_dataloader = dict(batch_size=5, dataset=dict(data_root=data_root))
test_dataloader = val_dataloader
train_cfg = dict(max_epochs=2, val_interval=2)
param_scheduler = [dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=2)]
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=2))
log_processor = dict(window_size=1)
'''
    with open(path, 'w') as f:
        f.write(text)
    return path


def _build(cfg_path: str):
    from mmengine.config import Config

    from lip_det.registry import build_mmdet_model
    import lip_det.classification  # noqa: F401  (registers the classifier)
    return build_mmdet_model(Config.fromfile(cfg_path).model)


@pytest.mark.slow
def test_pretrain_convert_detect(tmp_path, tiny_synthetic):
    import logging

    from mmengine.logging import MMLogger
    MMLogger.get_current_instance().setLevel(logging.WARNING)  # one init line per tensor
    data = str(tmp_path / 'cls_set')
    run_tool([osp.join(REPO, 'tools', 'make_synthetic_imagenet.py'), '--out', data,
              '--num-train-per-class', '3', '--num-val-per-class', '1', '--size', '32'],
             timeout=120)
    cls_cfg = _cls_config(str(tmp_path / 'cls.py'), data)
    cls_work = str(tmp_path / 'cls_work')
    run_tool([osp.join(REPO, 'tools', 'train.py'), cls_cfg, '--work-dir', cls_work], timeout=300)
    records = read_scalars(cls_work)
    assert len([r for r in records if 'loss' in r]) == 6  # 15 images, batch 5, 2 epochs
    assert any('accuracy/top1' in r for r in records)

    backbone_ckpt = str(tmp_path / 'backbone.pth')
    proc = run_tool([osp.join(REPO, 'tools', 'convert_checkpoint.py'),
                     osp.join(cls_work, 'epoch_2.pth'), backbone_ckpt], timeout=120)
    assert 'format       : mmpretrain' in proc.stdout

    det_extra = f'''
model = dict(
    backbone=dict(type='LIPResNet', logit_module='bottleneck', base_channels={WIDTH},
                  logit_width=8, init_cfg=dict(_delete_=True, type='Pretrained',
                                checkpoint={backbone_ckpt!r})),
    neck=dict(in_channels=[{WIDTH}, {WIDTH * 2}, {WIDTH * 4}, {WIDTH * 8}]))
train_cfg = dict(max_epochs=1, val_interval=1)
param_scheduler = [dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=2)]
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=1))
log_processor = dict(window_size=1)
'''
    det_cfg = write_child_config(str(tmp_path / 'det.py'), LIP_SYNTH_CONFIG, tiny_synthetic,
                                 det_extra, batch_size=8)

    # Before the detector trains: its backbone, after init_weights(), is the classifier's.
    from lip_det.compat import load_runner_checkpoint
    classifier = _build(cls_cfg)
    classifier.load_state_dict(load_runner_checkpoint(osp.join(cls_work, 'epoch_2.pth'))['state_dict'])
    detector = _build(det_cfg)
    detector.init_weights()
    cls_bb, det_bb = classifier.backbone, detector.backbone
    cls_bb.eval()
    det_bb.eval()
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        want = cls_bb(x)
        det_bb.out_indices = cls_bb.out_indices  # the detector also returns stages 0..2
        got = det_bb(x)
    assert len(want) == len(got) == 1
    assert torch.equal(want[0], got[0])
    cls_sd = cls_bb.state_dict()
    assert all(torch.equal(v, cls_sd[k]) for k, v in det_bb.state_dict().items())

    det_work = str(tmp_path / 'det_work')
    run_tool([osp.join(REPO, 'tools', 'train.py'), det_cfg, '--work-dir', det_work], timeout=300)
    losses = [r['loss'] for r in read_scalars(det_work) if 'loss' in r]
    assert len(losses) == 2 and all(torch.isfinite(torch.tensor(losses)))
