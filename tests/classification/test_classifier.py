"""The ImageClassifier builds for every backbone family, trains a step and has mmpretrain's layout."""
from __future__ import annotations

import sys
import types

import pytest
import torch
from mmengine.optim import OptimWrapper
from mmengine.registry import DefaultScope, Registry
from mmengine.structures import BaseDataElement

import lip_det.classification as cls_pkg

# (backbone, fc input channels): every family, tiny where the family allows it
FAMILIES = [
    (dict(type='ResNet', depth=18, base_channels=8), 64),
    (dict(type='LIPResNet', depth=18, base_channels=8, logit_width=8), 64),
    (dict(type='SoftPoolResNet', depth=18, base_channels=8), 64),
    (dict(type='MaxEntResNet', depth=18, base_channels=8), 64),
    (dict(type='GaussianResNet', depth=18, base_channels=8), 64),
    (dict(type='LIPDenseNet', depth=121, logit_width=8), 1024),
]


def build_classifier(backbone: dict, in_channels: int, num_classes: int = 3):
    """An ImageClassifier around ``backbone`` from mmdet's registry."""
    from mmdet.registry import MODELS
    cfg = dict(type='ImageClassifier',
               data_preprocessor=dict(type='ClsDataPreprocessor', mean=[127.5] * 3,
                                      std=[60.0] * 3, to_rgb=True),
               backbone=dict(backbone, out_indices=(3,), frozen_stages=-1, norm_eval=False),
               neck=dict(type='GlobalAveragePooling'),
               head=dict(type='LinearClsHead', num_classes=num_classes, in_channels=in_channels))
    with DefaultScope.overwrite_default_scope('mmdet'):
        return MODELS.build(cfg)


def _batch(n: int = 2, size: int = 32):
    g = torch.Generator().manual_seed(0)
    samples = []
    for i in range(n):
        s = BaseDataElement()
        s.gt_label = torch.tensor([i % 3])
        samples.append(s)
    return dict(inputs=[torch.randint(0, 256, (3, size, size), dtype=torch.uint8, generator=g)
                        for _ in range(n)], data_samples=samples)


@pytest.mark.parametrize('backbone,channels', FAMILIES, ids=[b['type'] for b, _ in FAMILIES])
def test_builds_trains_a_step_and_predicts(backbone, channels):
    torch.manual_seed(0)
    model = build_classifier(backbone, channels)
    keys = list(model.state_dict())
    # mmpretrain's layout: the backbone's tensors, then the head's fc; nothing else
    assert [k for k in keys if not k.startswith('backbone.')] == ['head.fc.weight', 'head.fc.bias']
    before = {k: v.clone() for k, v in model.state_dict().items()}
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1))
    model.train()
    # 64 px, not 32: at 32 (or 48) px layer4 runs on 1x1 maps, so with this batch of 2 its
    # train-mode BNs normalise 2 values per channel; their backward (with the GFGP BNs', also 2
    # values) multiplies the gradient ~100x and one step moves GaussianResNet's conv weights by
    # ~25. Eval, with running stats still near (0, 1), is then unnormalised, and Gaussian pooling
    # (η = softplus(affine(GAP x)) times σ) squares the scale at each of its 5 pools (outputs
    # 1.6e5, 6e8, then 7e41 > float32's max): layer2's pool gets 3e21, its Σx² overflows and
    # inf - inf = NaN, on both backends (in float64 the logits are finite but ~1e198).
    # A diverged model, not an op bug; batch 8 at 32 px or batch 2 at 64 px trains normally.
    losses = model.train_step(_batch(size=64), optim)
    assert set(losses) == {'loss'} and torch.isfinite(losses['loss'])
    changed = [k for k, v in model.state_dict().items() if not torch.equal(v, before[k])]
    assert 'head.fc.weight' in changed and any(k.startswith('backbone.') for k in changed)
    model.eval()
    out = model.val_step(_batch(size=64))
    assert len(out) == 2
    for sample in out:
        assert sample.pred_score.shape == (3,)
        assert torch.allclose(sample.pred_score.sum(), torch.tensor(1.0))
        assert int(sample.pred_label) == int(sample.pred_score.argmax())


def test_rejects_bad_arguments():
    with pytest.raises(ValueError, match='mode must be one of'):
        build_classifier(*FAMILIES[0])(torch.zeros(1, 3, 32, 32), mode='bogus')
    with pytest.raises(ValueError, match='num_classes must be a positive int'):
        cls_pkg.LinearClsHead(num_classes=0, in_channels=4)
    with pytest.raises(ValueError, match='train_cfg must be None'):
        cls_pkg.ImageClassifier(backbone=FAMILIES[0][0], head=dict(type='LinearClsHead',
                                num_classes=2, in_channels=64), train_cfg=dict(augments=[]))


def test_registers_backbones_in_mmpretrain_when_importable(monkeypatch):
    # mmpretrain cannot be imported on the CPU stack (torchvision): a stub stands in for it.
    registry = Registry('model', scope='mmpretrain')
    pkg, sub = types.ModuleType('mmpretrain'), types.ModuleType('mmpretrain.registry')
    sub.MODELS = registry
    pkg.registry = sub
    monkeypatch.setitem(sys.modules, 'mmpretrain', pkg)
    monkeypatch.setitem(sys.modules, 'mmpretrain.registry', sub)
    assert cls_pkg.register_in_mmpretrain() == list(cls_pkg.BACKBONE_NAMES)
    from lip_det.models import LIPResNet
    assert registry.get('LIPResNet') is LIPResNet
    # same arguments: the class itself is registered
    model = registry.build(dict(type='LIPResNet', depth=18, base_channels=8, logit_width=8))
    assert isinstance(model, LIPResNet)
    assert cls_pkg.register_in_mmpretrain() == []  # idempotent


def test_no_mmpretrain_is_a_no_op(monkeypatch):
    monkeypatch.setitem(sys.modules, 'mmpretrain', None)  # import raises ImportError
    assert cls_pkg.register_in_mmpretrain() == []
