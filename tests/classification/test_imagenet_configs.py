"""Every configs/imagenet config (and the synthetic one) loads, builds and states its top-1 and command."""
from __future__ import annotations

import glob
import os.path as osp

import pytest
import torch
from mmengine.config import Config

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIGS = sorted(glob.glob(osp.join(REPO, 'configs', 'imagenet', '*.py')))


def test_one_config_per_family():
    names = {osp.basename(c) for c in CONFIGS}
    assert names == {'resnet50_8xb32_in1k.py', 'lip_r50_8xb32_in1k.py', 'softpool_r50_8xb32_in1k.py',
                     'maxent_r50_8xb32_in1k.py', 'gaussian_r50_8xb32_in1k.py',
                     'lip_r18_8xb32_in1k.py', 'lip_densenet121_8xb32_in1k.py'}


@pytest.mark.parametrize('path', CONFIGS + [osp.join(REPO, 'configs', 'synthetic',
                                                     'lip_r18_cls_synthetic.py')],
                         ids=osp.basename)
def test_config_builds_with_matching_head(path):
    from lip_det.registry import build_mmdet_model
    cfg = Config.fromfile(path)
    assert cfg.default_scope == 'mmdet'
    text = open(path).read()
    assert 'top-1' in text or 'synthetic' in path
    assert 'tools/train.py' in text or 'tools/dist_train.sh' in text
    model_cfg = dict(cfg.model, data_preprocessor=cfg.data_preprocessor)
    model = build_mmdet_model(model_cfg)  # real build: the head must fit the backbone
    size = 64 if 'synthetic' in path else 96
    model.eval()
    with torch.no_grad():
        logits = model(torch.zeros(1, 3, size, size), mode='tensor')
    assert logits.shape == (1, cfg.model.head.num_classes)
