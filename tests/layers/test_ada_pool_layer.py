"""AdaPool1d/2d/3d: β per channel in (0, 1), size-independent, learned; built by the factory."""
import pytest
import torch

from lip_det.layers import POOLING_LAYERS, AdaPool1d, AdaPool2d, AdaPool3d, build_pooling_layer
from lip_det.ops import ada_pool2d


def test_beta_is_a_per_channel_sigmoid_and_the_layer_is_the_op():
    layer = AdaPool2d(4, kernel_size=3, stride=2, padding=1, init_beta=0.25).double()
    beta = layer.beta()
    assert beta.shape == (1, 4, 1, 1)
    torch.testing.assert_close(beta, torch.full_like(beta, 0.25))
    x = torch.randn(2, 4, 9, 7, dtype=torch.float64)
    torch.testing.assert_close(layer(x), ada_pool2d(x, beta, 3, 2, 1))


def test_one_layer_runs_at_every_input_size_and_beta_learns():
    torch.manual_seed(0)
    layer = AdaPool2d(3)
    for size in (1, 2, 5, 16, 33):
        assert layer(torch.randn(2, 3, size, size + 1)).shape[:2] == (2, 3)
    x = torch.randn(2, 3, 16, 16)
    layer(x).square().sum().backward()
    assert layer.beta_logit.grad is not None and layer.beta_logit.grad.abs().sum() > 0
    assert [n for n, _ in layer.named_parameters()] == ['beta_logit']


@pytest.mark.parametrize('cls,shape', [(AdaPool1d, (2, 3, 9)), (AdaPool3d, (1, 3, 4, 6, 5))])
def test_other_dimensions(cls, shape):
    layer = cls(3, kernel_size=2)
    y = layer(torch.randn(shape))
    assert y.shape == shape[:2] + tuple(s // 2 for s in shape[2:])


def test_registered_in_the_factory():
    for name in ('AdaPool1d', 'AdaPool2d', 'AdaPool3d'):
        assert name in POOLING_LAYERS
    layer = build_pooling_layer(dict(type='AdaPool2d', init_beta=0.7), channels=8, kernel_size=2,
                                stride=2)
    assert isinstance(layer, AdaPool2d) and layer.channels == 8


@pytest.mark.parametrize('kwargs,match', [
    (dict(channels=0), 'channels must be a positive int'),
    (dict(channels=3.0), 'channels must be a positive int'),
    (dict(channels=3, init_beta=1.0), r'init_beta must be a number in \(0, 1\)'),
    (dict(channels=3, init_beta=True), 'init_beta'),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        AdaPool2d(**kwargs)


def test_wrong_channel_count_is_named():
    with pytest.raises(ValueError, match='built for 3 channels'):
        AdaPool2d(3)(torch.randn(1, 4, 8, 8))
