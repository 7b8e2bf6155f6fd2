"""mmdet's own Faster R-CNN R50-FPN (plain ResNet) on this stack: build, one train step, predict."""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch


@pytest.fixture(scope='module')
def faster_rcnn_cfg(tmp_path_factory):
    from mmengine.config import Config
    path = tmp_path_factory.mktemp('cfg') / 'smoke.py'
    # Config.fromfile('mmdet::...') is not supported; inheritance through _base_ is.
    path.write_text("_base_ = 'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'\n"
                    "model = dict(backbone=dict(init_cfg=None))\n")
    return Config.fromfile(str(path))


def _batch(n=2, size=160, seed=0):
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData
    g = torch.Generator().manual_seed(seed)
    inputs, samples = [], []
    for _ in range(n):
        inputs.append(torch.randint(0, 256, (3, size, size), generator=g, dtype=torch.uint8))
        s = DetDataSample(metainfo=dict(img_shape=(size, size), ori_shape=(size, size),
                                        scale_factor=(1.0, 1.0), pad_shape=(size, size)))
        xy = torch.rand(3, 2, generator=g) * (size - 80)
        wh = 20 + torch.rand(3, 2, generator=g) * 60
        s.gt_instances = InstanceData(bboxes=torch.cat([xy, xy + wh], 1),
                                      labels=torch.tensor([1, 5, 17]))
        samples.append(s)
    return dict(inputs=inputs, data_samples=samples)


def test_mmdet_faster_rcnn_r50_fpn_builds_trains_one_step_and_predicts(faster_rcnn_cfg):
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    from mmengine.optim import build_optim_wrapper
    register_all_modules()
    torch.manual_seed(0)
    model = MODELS.build(copy.deepcopy(faster_rcnn_cfg.model))
    model.init_weights()
    assert type(model.backbone).__name__ == 'ResNet' and model.backbone.depth == 50
    n_params = sum(p.numel() for p in model.parameters())
    assert 41.0e6 < n_params < 42.0e6  # 41.5M: the model-zoo figure for R50-FPN, 80 classes
    optim = build_optim_wrapper(model, copy.deepcopy(faster_rcnn_cfg.optim_wrapper))
    model.train()
    before = {k: v.detach().clone() for k, v in model.named_parameters() if v.requires_grad}
    losses = model.train_step(_batch(), optim)
    for key in ('loss_rpn_cls', 'loss_rpn_bbox', 'loss_cls', 'loss_bbox', 'acc'):
        assert key in losses, key
    assert all(torch.isfinite(v).all() for v in losses.values())
    assert losses['loss_cls'] > 0 and losses['loss_rpn_cls'] > 0
    changed = [k for k, v in model.named_parameters()
               if v.requires_grad and not torch.equal(v, before[k])]
    # frozen_stages=1 keeps the stem and layer1 fixed; everything trainable moved.
    assert not any(k.startswith(('backbone.conv1', 'backbone.layer1.')) for k in changed)
    assert any(k.startswith('backbone.layer4') for k in changed)
    assert any(k.startswith('roi_head.bbox_head') for k in changed)
    assert any(k.startswith('rpn_head') for k in changed)
    assert any(k.startswith('neck') for k in changed)

    model.eval()
    with torch.no_grad():
        preds = model.test_step(_batch(n=1, seed=1))
    inst = preds[0].pred_instances
    assert inst.bboxes.shape[1] == 4 and len(inst) <= 100
    assert len(inst.scores) == len(inst.labels) == len(inst.bboxes)
    if len(inst):
        assert float(inst.scores.min()) >= 0.05 and int(inst.labels.max()) < 80
        b = inst.bboxes.numpy()
        assert np.all(b[:, 2] >= b[:, 0]) and np.all(b[:, 3] >= b[:, 1])
        assert b.min() >= 0 and b.max() <= 160
