"""Pooling layers: the modules compute their op, keep reference key names, and build from configs."""
import textwrap

import pytest
import torch
import torch.nn.functional as F

import lip_det  # noqa: F401  (registers the layers)
from lip_det.layers import (POOLING_LAYERS, GaussianPool2d, LIPPool2d, MaxEntPool2d, SoftGate,
                            SoftPool1d, SoftPool2d, SoftPool3d, build_pooling_layer)
from lip_det.ops import gauss_pool2d, maxent_pool2d


def _x(shape=(2, 8, 12, 10), seed=0):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


def test_soft_gate_range_and_validation():
    z = torch.linspace(-50, 50, 101)
    g = SoftGate()(z)
    assert g.min() >= 0 and g.max() <= 12 and torch.isclose(g[50], torch.tensor(6.0))
    assert SoftGate(3.0)(torch.zeros(1)).item() == pytest.approx(1.5)
    with pytest.raises(ValueError, match='coeff must be positive'):
        SoftGate(0)


def test_lip_layer_defaults_are_the_reference_k3_s2_p1():
    x = _x()
    y = LIPPool2d()(x, torch.zeros_like(x))
    torch.testing.assert_close(y, F.avg_pool2d(x, 3, 2, 1, count_include_pad=False))


def test_soft_pool_layers_default_stride_is_kernel():
    assert SoftPool1d(2)(_x((1, 2, 9))).shape == (1, 2, 4)
    assert SoftPool2d()(_x()).shape == (2, 8, 6, 5)
    assert SoftPool3d(2)(_x((1, 2, 4, 6, 8))).shape == (1, 2, 2, 3, 4)


def test_maxent_layer_uses_gfgp_lambda_and_reference_keys():
    pool = MaxEntPool2d(8, kernel_size=2).eval()
    keys = set(pool.state_dict())
    assert {'ToParam.1.weight', 'ToParam.1.bias', 'ToParam.2.running_mean', 'ToParam.4.weight',
            'ToParam.4.bias', 'ToParam.5.weight'} <= keys
    x = _x()
    lam = pool.estimate_lambda(x)
    assert lam.shape == (2, 8, 1, 1) and ((lam > 0) & (lam < 1)).all()
    torch.testing.assert_close(pool(x), maxent_pool2d(x, lam, 2))
    soft = MaxEntPool2d(8, activation='softplus').eval()
    assert (soft.estimate_lambda(x) > 0).all()
    with pytest.raises(ValueError, match="activation must be one of"):
        MaxEntPool2d(8, activation='relu')
    with pytest.raises(ValueError, match='channels must be an int >= 2'):
        MaxEntPool2d(1)


def test_gfgp_lambda_receives_gradients():
    torch.manual_seed(0)
    pool = MaxEntPool2d(8, kernel_size=3, stride=2, padding=1)
    pool(_x()).square().sum().backward()
    # ToParam.1 is a conv with bias feeding a train-mode BatchNorm (the reference layout): the
    # norm subtracts the batch mean, so that bias's gradient is zero up to rounding.
    for name, p in pool.named_parameters():
        assert p.grad is not None, name
        if name == 'ToParam.1.bias':
            assert p.grad.abs().max() < 1e-4, name
        else:
            assert p.grad.abs().sum() > 0, name


@pytest.mark.parametrize('stochasticity', ['CN', 'HWCN'])
def test_gaussian_is_stochastic_in_training_deterministic_in_eval(stochasticity):
    pool = GaussianPool2d(8, kernel_size=3, stride=2, padding=1, stochasticity=stochasticity)
    assert {'ToHidden.1.weight', 'ToHidden.2.weight', 'ToMean.0.weight', 'ToMean.1.weight',
            'ToSigma.0.weight', 'ToSigma.1.weight'} <= set(pool.state_dict())
    x = _x()
    pool.train()
    a, b = pool(x), pool(x)
    assert not torch.allclose(a, b)
    pool.eval()
    c, d = pool(x), pool(x)
    torch.testing.assert_close(c, d)
    eta = F.softplus(pool.ToMean(pool.ToHidden(x)))
    torch.testing.assert_close(c, gauss_pool2d(x, eta, 3, 2, 1))


def test_gaussian_noise_shapes_and_none():
    x = _x()
    pool = GaussianPool2d(8, stochasticity='HWCN').train()
    assert pool.estimate_eta(x, (6, 5)).shape == (2, 8, 6, 5)
    assert GaussianPool2d(8, stochasticity='CN').train().estimate_eta(x).shape == (2, 8, 1, 1)
    det = GaussianPool2d(8, stochasticity=None).train()
    torch.testing.assert_close(det(x), det(x))
    with pytest.raises(ValueError, match=r"stochasticity must be one of \(None, 'CN', 'HWCN'\)"):
        GaussianPool2d(8, stochasticity='NCHW')


def test_factory_builds_every_registered_pooling_type():
    x = _x()
    cfgs = [dict(type='LIPPool2d'), dict(type='SoftPool2d', kernel_size=3, stride=2, padding=1),
            dict(type='MaxEntPool2d', channels=8), dict(type='GaussianPool2d', channels=8),
            dict(type='SoftPool1d', kernel_size=2), dict(type='SoftPool3d', kernel_size=2),
            dict(type='AdaPool1d', channels=8), dict(type='AdaPool2d', channels=8),
            dict(type='AdaPool3d', channels=8), dict(type='SimplifiedLIP', channels=8),
            dict(type='ProjectionLIP', channels=8), dict(type='DenseBottleneckLIP', channels=8)]
    built = [build_pooling_layer(c) for c in cfgs]
    assert [type(m).__name__ for m in built] == [c['type'] for c in cfgs]
    assert {c['type'] for c in cfgs} == set(POOLING_LAYERS)
    assert built[1](x).shape == (2, 8, 6, 5)
    assert build_pooling_layer(dict(type='MaxEntPool2d'), channels=8).channels == 8


def test_factory_unknown_type_lists_registered_types():
    with pytest.raises(KeyError, match=r"unknown pooling type 'LIPPool3d'.*'GaussianPool2d'.*'SoftPool3d'"):
        build_pooling_layer(dict(type='LIPPool3d'))
    with pytest.raises(ValueError, match='must have a "type" key'):
        build_pooling_layer(dict(kernel_size=2))
    with pytest.raises(TypeError, match='cfg must be a dict'):
        build_pooling_layer('SoftPool2d')


def test_config_with_custom_imports_builds_layers_through_mmdet_registry(tmp_path):
    pytest.importorskip('mmdet')
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    from mmengine.config import Config
    register_all_modules()
    cfg_file = tmp_path / 'pool_cfg.py'
    cfg_file.write_text(textwrap.dedent("""
        custom_imports = dict(imports=['lip_det'], allow_failed_imports=False)
        pool = dict(type='SoftPool2d', kernel_size=2)
        gauss = dict(type='GaussianPool2d', channels=8, stochasticity=None)
        gate = dict(type='SoftGate', coeff=12.0)
    """))
    cfg = Config.fromfile(str(cfg_file))
    assert isinstance(MODELS.build(cfg.pool), SoftPool2d)
    assert isinstance(MODELS.build(cfg.gauss), GaussianPool2d)
    assert isinstance(MODELS.build(cfg.gate), SoftGate)
