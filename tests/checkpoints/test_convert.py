"""lip_det.checkpoints.convert.map_keys: the format table's prefix rules, and true rename counts."""
from __future__ import annotations

import pytest
import torch

from lip_det.checkpoints import CheckpointError, convert_state_dict, detect_format, map_keys

from ..classification.test_classifier import build_classifier
from ..tools.tool_loader import load_tool

reference_models = load_tool('reference_models')


@pytest.mark.parametrize('kind,depth', [('torchvision', 18), ('softpool', 18), ('maxent', 50),
                                        ('gaussian', 50), ('lip', 50), ('lip_densenet', 121)])
def test_reference_formats_keep_every_key_but_the_classifier(kind, depth):
    with torch.device('meta'):
        ref = (reference_models.RefLIPDenseNet(depth) if kind == 'lip_densenet'
               else reference_models.RefResNet(depth, kind))
    state = ref.state_dict()
    classifier = [k for k in state if k.startswith(('fc.', 'classifier.'))]
    assert len(classifier) == 2
    mapped, dropped, renamed = map_keys(kind, state)
    assert dropped == classifier and renamed == {}
    assert list(mapped) == [k for k in state if k not in classifier]
    assert all(mapped[k] is state[k] for k in mapped)
    result = convert_state_dict(state, {}, src_format=kind)
    assert result.ok and result.renamed == {}
    assert f'{len(state)} read, {len(state) - 2} written, 2 dropped, 0 renamed' in result.summary()


def test_mmpretrain_counts_each_stripped_backbone_key_as_renamed():
    torch.manual_seed(0)
    state = build_classifier(dict(type='ResNet', depth=18), 512).state_dict()
    backbone = [k for k in state if k.startswith('backbone.')]
    head = [k for k in state if k.startswith('head.')]
    assert backbone and head == ['head.fc.weight', 'head.fc.bias']
    assert detect_format(state, {})[0] == 'mmpretrain'
    result = convert_state_dict(state, {})
    assert result.ok and result.backbone == dict(type='ResNet', depth=18)
    assert result.renamed == {k: k[len('backbone.'):] for k in backbone}
    assert sorted(result.dropped) == sorted(head)
    assert (f'{len(state)} read, {len(backbone)} written, {len(head)} dropped, '
            f'{len(backbone)} renamed') in result.summary()
    assert all(torch.equal(result.state_dict[k[len('backbone.'):]], state[k]) for k in backbone)


def test_prefix_rules_keep_other_keys_and_refuse_collisions():
    t = torch.zeros(1)
    # only a prefix counts: 'fc.' inside a key, or a key merely named like a prefix, is kept
    mapped, dropped, renamed = map_keys('lip', {'fc.weight': t, 'layer1.0.fc.weight': t,
                                                'fc_extra.weight': t})
    assert dropped == ['fc.weight'] and renamed == {}
    assert list(mapped) == ['layer1.0.fc.weight', 'fc_extra.weight']
    # mmpretrain (via an alias): backbone. stripped, neck./head. dropped, anything else kept
    mapped, dropped, renamed = map_keys('mmcls', {'backbone.conv1.weight': t, 'neck.x': t,
                                                  'head.fc.bias': t, 'data_preprocessor.mean': t})
    assert list(mapped) == ['conv1.weight', 'data_preprocessor.mean']
    assert dropped == ['neck.x', 'head.fc.bias'] and renamed == {'backbone.conv1.weight': 'conv1.weight'}
    with pytest.raises(CheckpointError, match="maps two source keys onto 'conv1.weight'"):
        map_keys('mmpretrain', {'conv1.weight': t, 'backbone.conv1.weight': t})
