"""The layers' torch-only norm builder makes what mmcv's ``build_norm_layer`` makes."""
import pytest
import torch

from lip_det.layers.norm import NORM_LAYERS, build_norm_layer

CFGS = [dict(type='BN'), dict(type='BN', requires_grad=False, momentum=0.3),
        dict(type='SyncBN', requires_grad=True), dict(type='GN', num_groups=4),
        dict(type='IN', affine=True), dict(type='LN', eps=1e-6), dict(type='BN1d'),
        dict(type='BN3d'), dict(type='IN1d'), dict(type='IN3d'), dict(type='BN2d'),
        dict(type='IN2d'), dict(type=torch.nn.BatchNorm2d)]


@pytest.mark.parametrize('cfg', CFGS, ids=lambda c: str(c['type']))
@pytest.mark.parametrize('postfix', ['', 1])
def test_same_module_as_mmcv(cfg, postfix):
    mmcv_cnn = pytest.importorskip('mmcv.cnn')
    name, layer = build_norm_layer(cfg, 8, postfix)
    ref_name, ref = mmcv_cnn.build_norm_layer(cfg, 8, postfix)
    # mmcv's SyncBN is mmengine's subclass of torch's, which only changes input checks on parrots.
    assert name == ref_name and isinstance(ref, type(layer)) and repr(layer) == repr(ref)
    assert type(layer) is type(ref) or cfg['type'] == 'SyncBN'
    assert list(layer.state_dict()) == list(ref.state_dict())
    assert [p.requires_grad for p in layer.parameters()] == \
        [p.requires_grad for p in ref.parameters()]


def test_every_table_type_is_mmcvs():
    mmcv_cnn = pytest.importorskip('mmcv.cnn')
    from mmengine.registry import MODELS
    for type_name, cls in NORM_LAYERS.items():
        mmcv_cls = MODELS.get(type_name)
        assert mmcv_cls is cls or (type_name == 'SyncBN' and issubclass(mmcv_cls, cls)), type_name
    assert mmcv_cnn  # mmcv registered them in mmengine's MODELS


def test_config_is_not_modified_and_errors():
    cfg = dict(type='GN', num_groups=2, requires_grad=False)
    build_norm_layer(cfg, 4)
    assert cfg == dict(type='GN', num_groups=2, requires_grad=False)
    with pytest.raises(KeyError, match='num_groups'):
        build_norm_layer(dict(type='GN'), 4)
    with pytest.raises(KeyError, match='type'):
        build_norm_layer(dict(num_groups=2), 4)
    with pytest.raises(TypeError, match='cfg must be a dict'):
        build_norm_layer('BN', 4)
