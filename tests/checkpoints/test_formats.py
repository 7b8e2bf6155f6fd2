"""lip_det.checkpoints.formats: the one format table, and the architectures detection accepts
are the ones the target backbones build."""
from __future__ import annotations

import pytest
import torch

from tests.models.common import MODELS, build  # noqa: F401  (imports mmdet or skips)

from lip_det.checkpoints import CheckpointError, convert_state_dict, detect_arch, detect_format
from lip_det.checkpoints.formats import (_DENSENET_DEPTHS, _RESNET_DEPTHS, FORMATS,
                                         backbone_config)


def test_each_format_row_names_its_backbone_and_key_rule():
    for spec in FORMATS.values():
        assert spec.drop_prefixes and all(p.endswith('.') for p in spec.drop_prefixes), spec.name
        if spec.family == 'classifier':  # its backbone is read from the checkpoint
            assert spec.backbone is None and spec.strip_prefix == 'backbone.'
            with pytest.raises(ValueError, match='no fixed backbone type'):
                backbone_config(spec.name, 'resnet50')
        else:  # a reference ImageNet model: drop its classifier, keep every other key
            assert spec.strip_prefix == ''
            assert spec.drop_prefixes == (('classifier.',) if spec.family == 'densenet' else ('fc.',))
            assert MODELS.get(spec.backbone) is not None, spec.backbone
            assert backbone_config(spec.name, f'{spec.family}50') == dict(type=spec.backbone,
                                                                         depth=50)


def test_detected_architectures_are_the_ones_the_backbones_build():
    """detect_arch's depth tables and the backbones' arch tables must list the same layouts."""
    for spec in FORMATS.values():
        if spec.family == 'resnet':
            built = {depth: (block.__name__, blocks)
                     for depth, (block, blocks) in MODELS.get(spec.backbone).arch_settings.items()}
            detected = {depth: ('BasicBlock' if block == 'basic' else 'Bottleneck', blocks)
                        for (block, blocks), depth in _RESNET_DEPTHS.items()}
        elif spec.family == 'densenet':
            built = {depth: (growth, blocks) for depth, (growth, blocks, _)
                     in MODELS.get(spec.backbone).arch_settings.items()}
            detected = {depth: (growth, blocks) for (blocks, growth), depth in _DENSENET_DEPTHS.items()}
        else:
            continue
        assert built == detected, spec.name


def test_densenet201_state_dict_round_trips():
    """torchvision's densenet201 layout (blocks 6/12/48/32, growth 32, 64 stem channels): a
    LIP-DenseNet-201 with a 1920 -> 1000 classifier converts back onto LIPDenseNet(depth=201)."""
    torch.manual_seed(0)
    model = build('LIPDenseNet', depth=201)
    assert model.num_features == 1920  # torchvision densenet201's classifier width
    state = dict(model.state_dict())
    assert state['features.conv0.weight'].shape == (64, 3, 7, 7)
    state['classifier.weight'], state['classifier.bias'] = torch.randn(1000, 1920), torch.zeros(1000)
    assert detect_format(state, {})[0] == 'lip_densenet'
    assert detect_arch(state, 'densenet') == 'densenet201'
    result = convert_state_dict(state, {})
    assert result.ok and result.arch == 'densenet201'
    assert result.backbone == dict(type='LIPDenseNet', depth=201)
    assert result.dropped == ['classifier.bias', 'classifier.weight'] and result.renamed == {}
    own = model.state_dict()
    assert result.state_dict.keys() == own.keys()
    assert all(torch.equal(result.state_dict[k], v) for k, v in own.items())


def test_nonstandard_densenet_is_refused_naming_the_supported_depths():
    state = {'features.denseblock1.denselayer1.conv2.weight': torch.empty(32, 128, 3, 3),
             'features.denseblock4.denselayer40.conv2.weight': torch.empty(32, 128, 3, 3)}
    with pytest.raises(CheckpointError, match=r'supported: 121, 161, 169, 201'):
        detect_arch(state, 'densenet')
