"""Every backbone family trains one step inside mmdet's Faster R-CNN + FPN on the CPU."""
import copy
import os

import pytest
import torch

from tests.models.common import MODELS, mmdet

from mmengine.config import Config
from mmengine.optim import OptimWrapper
from mmdet.testing import demo_mm_inputs

_BASE = os.path.join(os.path.dirname(mmdet.__file__), '.mim', 'configs', '_base_', 'models',
                     'faster-rcnn_r50_fpn.py')

BACKBONES = [
    (dict(type='LIPResNet', depth=50), [256, 512, 1024, 2048]),
    (dict(type='SoftPoolResNet', depth=18), [64, 128, 256, 512]),
    (dict(type='AdaPoolResNet', depth=18), [64, 128, 256, 512]),
    (dict(type='MaxEntResNet', depth=18), [64, 128, 256, 512]),
    (dict(type='GaussianResNet', depth=18), [64, 128, 256, 512]),
    (dict(type='LIPDenseNet', depth=121), [256, 512, 1024, 1024]),
]


@pytest.fixture(scope='module')
def base_model_cfg():
    if not os.path.exists(_BASE):
        pytest.skip(f'mmdet config not installed: {_BASE}')
    return Config.fromfile(_BASE).model


@pytest.mark.slow
@pytest.mark.parametrize('backbone,channels', BACKBONES,
                         ids=[f"{b['type']}{b['depth']}" for b, _ in BACKBONES])
def test_one_training_step(base_model_cfg, backbone, channels):
    torch.manual_seed(0)
    cfg = copy.deepcopy(base_model_cfg)
    # As in a detection config: frozen stem + stage 1, BN in eval mode, no download.
    cfg.backbone = dict(backbone, frozen_stages=1, norm_eval=True, init_cfg=None)
    cfg.neck.in_channels = channels
    cfg.roi_head.bbox_head.num_classes = 3
    model = MODELS.build(cfg)
    model.init_weights()
    data = demo_mm_inputs(batch_size=1, image_shapes=[(3, 128, 128)], num_items=[2], num_classes=3)
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9))
    frozen = {k: v.clone() for k, v in model.backbone.state_dict().items()
              if k.startswith(('conv1', 'bn1', 'layer1', 'features.conv0', 'features.denseblock1'))}
    model.train()
    log_vars = model.train_step(data, optim)
    assert {'loss_rpn_cls', 'loss_rpn_bbox', 'loss_cls', 'loss_bbox', 'loss'} <= set(log_vars)
    assert all(torch.isfinite(torch.as_tensor(v)).all() for v in log_vars.values())
    assert frozen and all(torch.equal(v, model.backbone.state_dict()[k]) for k, v in frozen.items())
    model.eval()
    with torch.no_grad():
        results = model.test_step(dict(inputs=data['inputs'], data_samples=data['data_samples']))
    assert len(results) == 1 and results[0].pred_instances.bboxes.shape[-1] == 4
