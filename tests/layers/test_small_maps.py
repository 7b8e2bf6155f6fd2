"""The pooling layers and LIP logit modules on maps smaller than their window, down to 1x1:
the defined behaviour (a window cut to the map, InstanceNorm of one pixel = its bias), the
same in the fused and the reference op path, and unchanged results wherever the window fits."""
import pytest
import torch
import torch.nn as nn

import lip_det  # noqa: F401  (registers the layers)
from lip_det import ops
from lip_det.layers import (GaussianPool2d, LIPPool2d, MaxEntPool2d, SoftPool1d, SoftPool2d,
                            SoftPool3d)
from lip_det.layers.lip_logits import (BottleneckLIP, BottleneckShared, DenseBottleneckLIP,
                                       LogitInstanceNorm2d, ProjectionLIP, SimplifiedLIP)
from lip_det.layers.pooling import fit_window

BACKENDS = ['fused', 'reference']


def _x(shape, seed=0, dtype=torch.float64):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


@pytest.fixture(params=BACKENDS)
def backend(request, monkeypatch):
    """Run the test with each op path."""
    if request.param == 'fused' and not ops.fused_available():
        pytest.skip('lip_det._C not built')
    monkeypatch.setenv('LIP_DET_OPS', request.param)
    return request.param


@pytest.mark.parametrize('shape, kernel, stride, padding', [
    ((2, 3, 8, 8), 2, None, 0), ((2, 3, 2, 2), (2, 2), 2, 0), ((1, 1, 1, 1), 3, 2, 1),
    ((1, 1, 3, 1), (3, 1), (2, 1), (1, 0)), ((2, 3, 5, 7), [3, 3], [2, 2], [1, 1]),
])
def test_fit_window_keeps_a_window_that_fits(shape, kernel, stride, padding):
    """The very same argument objects come back: the layers then call the op as before."""
    k, s = fit_window(torch.empty(shape), kernel, stride, padding)
    assert k is kernel and s is stride


@pytest.mark.parametrize('shape, kernel, stride, padding, expected', [
    ((1, 1, 1, 1), 2, None, 0, ((1, 1), 2)),
    ((1, 1, 1, 3), 2, 2, 0, ((1, 2), 2)),
    ((1, 1, 3, 1), (2, 2), (2, 2), (0, 0), ((2, 1), (2, 2))),
    ((1, 1, 1, 1), 5, 2, 1, ((3, 3), 2)),
])
def test_fit_window_cuts_the_window_to_the_padded_map(shape, kernel, stride, padding, expected):
    assert fit_window(torch.empty(shape), kernel, stride, padding) == expected


def test_fit_window_leaves_bad_arguments_to_the_op():
    x = torch.empty(1, 1, 1, 1)
    for kernel, padding in [('2', 0), ((2, 2, 2), 0), (2, -1), (True, 0)]:
        assert fit_window(x, kernel, None, padding) == (kernel, None)
    assert fit_window(torch.empty(1, 1, 0, 3), 2, None, 0) == (2, None)
    with pytest.raises(TypeError, match='kernel_size'):
        SoftPool2d('2')(x)


def test_pooling_layers_return_the_pixel_of_a_1x1_map(backend):
    x = _x((2, 4, 1, 1)).requires_grad_()
    for layer, y in [(SoftPool2d(2), SoftPool2d(2)(x)),
                     (LIPPool2d(), LIPPool2d()(x, _x((2, 4, 1, 1), 1))),
                     (LIPPool2d(kernel_size=2, stride=2, padding=0),
                      LIPPool2d(kernel_size=2, stride=2, padding=0)(x, _x((2, 4, 1, 1), 1))),
                     (MaxEntPool2d, MaxEntPool2d(4).double().eval()(x)),
                     (MaxEntPool2d, MaxEntPool2d(4).double().train()(x))]:
        assert torch.equal(y, x), layer
        (g,) = torch.autograd.grad(y.sum(), x)
        torch.testing.assert_close(g, torch.ones_like(x))
    assert torch.equal(SoftPool1d(3)(_x((2, 4, 1))), _x((2, 4, 1)))
    assert torch.equal(SoftPool3d(2)(_x((1, 2, 1, 1, 1))), _x((1, 2, 1, 1, 1)))


def test_pooling_layers_pool_a_whole_side_that_is_too_short(backend):
    """A 1x5 map, 2x2/s2 window: one output row, each output pooling a 1x2 window."""
    x = _x((2, 3, 1, 5))
    y = SoftPool2d(2)(x)
    assert y.shape == (2, 3, 1, 2)
    windows = torch.stack([x[..., 0:2], x[..., 2:4]], dim=-2)  # (2, 3, 1, 2 windows, 2 pixels)
    torch.testing.assert_close(y, (windows.softmax(-1) * windows).sum(-1))


def test_gaussian_pooling_of_one_pixel_is_x_plus_eta_times_1e_minus_3(backend):
    """σ² of a one-pixel window is floored at 1e-6, as for any window of equal values."""
    layer = GaussianPool2d(4).double().eval()
    x = _x((2, 4, 1, 1))
    eta = layer.estimate_eta(x)
    torch.testing.assert_close(layer(x), x + eta * 1e-3)
    layer.train()  # HWCN noise: one draw per output location, here (N, C, 1, 1)
    y = layer(_x((2, 4, 1, 3)))
    assert y.shape == (2, 4, 1, 1) and torch.isfinite(y).all()


@pytest.mark.parametrize('shape', [(2, 6, 7, 9), (2, 6, 8, 8), (1, 6, 3, 5)])
def test_layers_on_maps_the_window_fits_are_unchanged(shape, backend):
    """Bit-identical to the op with the layer's own geometry, as before fit_window existed."""
    x = _x(shape, dtype=torch.float32)
    torch.testing.assert_close(SoftPool2d(2)(x), ops.soft_pool2d(x, 2), rtol=0, atol=0)
    layer = MaxEntPool2d(6, kernel_size=3, stride=2, padding=1).eval()
    torch.testing.assert_close(layer(x), ops.maxent_pool2d(x, layer.estimate_lambda(x), 3, 2, 1),
                               rtol=0, atol=0)


def test_instance_norm_of_one_pixel_is_its_bias():
    norm = LogitInstanceNorm2d(3, affine=True)
    with torch.no_grad():
        norm.weight.copy_(torch.tensor([2.0, -1.0, 0.5]))
        norm.bias.copy_(torch.tensor([0.3, -0.7, 1.1]))
    x = _x((2, 3, 1, 1), dtype=torch.float32).requires_grad_()
    for mode in (True, False):
        norm.train(mode)
        y = norm(x)
        torch.testing.assert_close(y, norm.bias.detach().view(1, 3, 1, 1).expand(2, 3, 1, 1),
                                   rtol=0, atol=0)
    gx, gw, gb = torch.autograd.grad(y.sum(), (x, norm.weight, norm.bias))
    assert torch.equal(gx, torch.zeros_like(x)) and torch.equal(gw, torch.zeros(3))
    torch.testing.assert_close(gb, torch.full((3,), 2.0))
    # The written-out formula of the reference gated op gives the same.
    var, mean = torch.var_mean(x, dim=(2, 3), keepdim=True, correction=0)
    formula = (x - mean) * torch.rsqrt(var + norm.eps) * norm.weight[:, None, None] \
        + norm.bias[:, None, None]
    torch.testing.assert_close(y, formula)
    assert LogitInstanceNorm2d(3)(x).abs().max() == 0  # no affine: 0
    assert torch.equal(LogitInstanceNorm2d(3, affine=True)(x[0]), torch.zeros(3, 1, 1))  # unbatched


@pytest.mark.parametrize('shape', [(2, 3, 1, 2), (2, 3, 4, 5)])
def test_instance_norm_of_larger_planes_is_unchanged(shape):
    norm = LogitInstanceNorm2d(3, affine=True)
    plain = nn.InstanceNorm2d(3, affine=True)
    with torch.no_grad():
        for p in (norm, plain):
            p.weight.copy_(torch.tensor([2.0, -1.0, 0.5]))
            p.bias.copy_(torch.tensor([0.3, -0.7, 1.1]))
    x = _x(shape, dtype=torch.float32)
    assert torch.equal(norm(x), plain(x))
    assert isinstance(norm, nn.InstanceNorm2d)
    assert sorted(norm.state_dict()) == sorted(plain.state_dict())


def _lip_layers():
    return [('simplified', SimplifiedLIP(4), False), ('projection', ProjectionLIP(4), False),
            ('bottleneck', BottleneckLIP(4, width=8), True),
            ('dense', DenseBottleneckLIP(4, width=8), False)]


@pytest.mark.parametrize('shape', [(2, 4, 1, 1), (2, 4, 1, 3), (2, 4, 3, 1)])
def test_lip_layers_run_on_one_pixel_sides(shape, backend):
    """Every LIP layer: finite output and gradients; a 1x1 map pools to the pixel itself and its
    logit is the gate of the norm's bias (coeff/2 at init: average pooling)."""
    torch.manual_seed(0)
    for name, layer, shared in _lip_layers():
        layer = layer.double()
        for p in layer.parameters():  # random logits, not the average-pooling init
            nn.init.normal_(p)
        trunk = BottleneckShared(4, 8).double() if shared else None
        x = _x(shape).requires_grad_()
        s = trunk(x) if shared else None
        y = layer(x, s)
        grads = torch.autograd.grad(y.square().sum(), [x, *layer.parameters()], allow_unused=True)
        assert torch.isfinite(y).all(), name
        assert all(g is None or torch.isfinite(g).all() for g in grads), name
        if shape[2:] == (1, 1):
            assert torch.equal(y, x), name
            norm, gate = layer.logit_module()[-2], layer.logit_module()[-1]
            logit = layer.compute_logit(x, s)
            torch.testing.assert_close(logit, gate(norm.bias.view(1, 4, 1, 1)).expand_as(x))


def test_lip_layer_logit_at_init_on_1x1_is_the_gate_midpoint():
    layer = SimplifiedLIP(4)
    x = _x((1, 4, 1, 1), dtype=torch.float32)
    torch.testing.assert_close(layer.compute_logit(x, None), torch.full_like(x, 6.0))


def test_fused_and_reference_gated_op_agree_on_one_pixel_planes():
    """The fused kernel's InstanceNorm of a 1x1 plane is the reference's: normalised value 0."""
    if not ops.fused_available():
        pytest.skip('lip_det._C not built')
    from lip_det.ops import fused, reference
    for shape, geom in [((2, 3, 1, 1), ((3, 3), (2, 2), (1, 1), False)),
                        ((2, 3, 1, 1), ((1, 1), (2, 2), (0, 0), False)),
                        ((2, 3, 1, 4), ((1, 2), (2, 2), (0, 0), False))]:
        tensors = [_x(shape, 1), _x(shape, 2), _x((3,), 3), _x((3,), 4)]
        results = []
        for impl in (fused, reference):
            leaves = [t.clone().requires_grad_() for t in tensors]
            out = impl.lip_pool2d_gated(*leaves, 1e-5, 12.0, *geom)
            results.append((out, *torch.autograd.grad(out.square().sum(), leaves)))
        for a, b in zip(*results):
            torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)
        if shape[2:] == (1, 1):
            assert torch.equal(results[0][0], tensors[0])
    # Why LogitInstanceNorm2d exists: PyTorch's InstanceNorm2d refuses 1x1 planes, even in eval.
    with pytest.raises(ValueError, match='more than 1 spatial element'):
        nn.InstanceNorm2d(3).eval()(_x((2, 3, 1, 1)))
