"""--src-format mmpretrain: an ImageClassifier Runner checkpoint -> a detector backbone checkpoint."""
from __future__ import annotations

import pytest
import torch

from lip_det.checkpoints import CheckpointError, convert_checkpoint, detect_format
from lip_det.checkpoints.convert import config_backbone

from ..classification.test_classifier import build_classifier
from .tool_loader import load_tool

cli = load_tool('convert_checkpoint')

BACKBONE = dict(type='LIPResNet', depth=18, base_channels=8, logit_width=8)
CFG_TEXT = '''default_scope = 'mmdet'
model = dict(
    backbone=dict(
        base_channels={width},
        depth=18,
        frozen_stages=-1,
        logit_width=8,
        norm_eval=False,
        out_indices=(3, ),
        type='LIPResNet'),
    head=dict(in_channels={fc}, num_classes=3, type='LinearClsHead'),
    neck=dict(type='GlobalAveragePooling'),
    type='ImageClassifier')
'''


def _save(path, model, cfg_text=None):
    """Save as mmengine's Runner does: {'meta': {..., 'cfg': text}, 'state_dict': ...}."""
    meta = dict(epoch=1, iter=3, seed=0)
    if cfg_text is not None:
        meta['cfg'] = cfg_text
    torch.save(dict(meta=meta, state_dict=model.state_dict(), optimizer={}), str(path))
    return str(path)


@pytest.fixture(scope='module')
def classifier():
    torch.manual_seed(0)
    model = build_classifier(BACKBONE, 64)
    for p in model.parameters():  # not the init values: every tensor must really be carried
        p.data.normal_()
    return model


def test_detected_converted_and_loadable(tmp_path, classifier, capsys):
    src = _save(tmp_path / 'cls.pth', classifier, CFG_TEXT.format(width=8, fc=64))
    assert detect_format(classifier.state_dict(), {})[0] == 'mmpretrain'
    assert cli.main([src, str(tmp_path / 'bb.pth')]) == 0
    out = capsys.readouterr().out
    assert 'format       : mmpretrain' in out and 'dropped      : head.fc.bias, head.fc.weight' in out
    ckpt = torch.load(str(tmp_path / 'bb.pth'), weights_only=True)
    want = {k[len('backbone.'):]: v for k, v in classifier.state_dict().items()
            if k.startswith('backbone.')}
    assert set(ckpt['state_dict']) == set(want)
    assert all(torch.equal(ckpt['state_dict'][k], v) for k, v in want.items())
    # the backbone the detector must use: structure only (no out_indices/norm_eval/...)
    assert ckpt['meta']['backbone'] == dict(BACKBONE)
    assert ckpt['meta']['source_format'] == 'mmpretrain' and ckpt['meta']['arch'] == 'resnet18'


def test_without_config_meta_keys_decide(tmp_path):
    torch.manual_seed(0)
    model = build_classifier(dict(type='LIPResNet', depth=18), 512)  # standard widths
    src = _save(tmp_path / 'cls.pth', model)
    result = convert_checkpoint(src, None)
    assert result.backbone == dict(type='LIPResNet', depth=18) and result.ok
    assert any('no config' in n for n in result.notes)
    # plain ResNet keys: ResNet unless --backbone-type says SoftPoolResNet
    plain = _save(tmp_path / 'plain.pth', build_classifier(dict(type='ResNet', depth=18), 512))
    assert convert_checkpoint(plain, None).backbone['type'] == 'ResNet'
    assert convert_checkpoint(plain, None, backbone_type='SoftPoolResNet').backbone == \
        dict(type='SoftPoolResNet', depth=18)


def test_mismatched_checkpoints_are_refused(tmp_path, classifier, capsys):
    # the config says width 16, the tensors are width 8: strict shape comparison refuses it
    src = _save(tmp_path / 'bad.pth', classifier, CFG_TEXT.format(width=16, fc=128))
    assert cli.main([src, str(tmp_path / 'out.pth')]) == 1
    assert 'shape mismatch' in capsys.readouterr().err
    assert not (tmp_path / 'out.pth').exists()
    # the config says another family than the keys
    other = CFG_TEXT.format(width=8, fc=64).replace("type='LIPResNet'", "type='MaxEntResNet'")
    src = _save(tmp_path / 'other.pth', classifier, other)
    with pytest.raises(CheckpointError, match='config says MaxEntResNet, but its backbone keys'):
        convert_checkpoint(src, None)
    src = _save(tmp_path / 'ok.pth', classifier, CFG_TEXT.format(width=8, fc=64))
    with pytest.raises(CheckpointError, match='--backbone-type ResNet given'):
        convert_checkpoint(src, None, backbone_type='ResNet')
    with pytest.raises(CheckpointError, match='--arch resnet50 given'):
        convert_checkpoint(src, None, arch='50')
    # an extra tensor under backbone.* has no place in the backbone
    sd = dict(classifier.state_dict(), **{'backbone.extra.weight': torch.zeros(2)})
    torch.save(dict(meta=dict(cfg=CFG_TEXT.format(width=8, fc=64)), state_dict=sd),
               str(tmp_path / 'extra.pth'))
    with pytest.raises(CheckpointError, match='no place in'):
        convert_checkpoint(str(tmp_path / 'extra.pth'), None)
    with pytest.raises(ValueError, match='backbone_type applies to --src-format mmpretrain only'):
        convert_checkpoint(src, None, src_format='lip', backbone_type='LIPResNet')


def test_config_text_is_read_never_executed(tmp_path):
    marker = tmp_path / 'ran'
    evil = (f"import os\nos.system('touch {marker}')\n"
            f"model = dict(backbone=dict(type='LIPResNet', depth=__import__('os').getpid()))\n")
    assert config_backbone(dict(cfg=evil)) == (None, "meta['cfg'] model is not plain literal "
                                                     'data (Call)')
    assert not marker.exists()
    assert config_backbone(dict(cfg='model = dict(')) [0] is None
    assert config_backbone({})[1] == "no config in the checkpoint's meta"
    backbone, _ = config_backbone(dict(cfg="model = dict(backbone=dict(type='ResNet', "
                                           "depth=50, out_indices=(3, ), x=-1.5))"))
    assert backbone == dict(type='ResNet', depth=50, out_indices=(3,), x=-1.5)
