"""The four pooling ops against independent oracles, over fuzzed geometries, on every backend."""
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from lip_det import ops
from lip_det.ops import gauss_pool2d, lip_pool2d, maxent_pool2d, soft_pool1d, soft_pool2d, soft_pool3d

from .oracles import naive_gauss, naive_maxent, out_len, weighted_avg_expression
from .strategies import geometry

BACKENDS = ['reference'] + (['fused'] if ops.fused_available() else [])
SOFT_POOL = {1: soft_pool1d, 2: soft_pool2d, 3: soft_pool3d}


@pytest.fixture(params=BACKENDS)
def backend(request, monkeypatch):
    monkeypatch.setenv('LIP_DET_OPS', request.param)
    return request.param


def _rand(shape, seed, dtype=torch.float64, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g, dtype=dtype) * scale


def _lam_layouts(n, c, out):
    return [(1,), (1, c, 1, 1), (n, c, 1, 1), (n, 1, 1, 1), (n, c) + tuple(out)]


def _out_shape(shape, k, s, p, ceil_mode):
    return tuple(out_len(*a, ceil_mode) for a in zip(shape[2:], k, s, p))


# --------------------------------------------------------------------------- forward vs oracle
@settings(max_examples=120)
@given(geo=geometry(), seed=st.integers(0, 2**16))
def test_lip_equals_authors_expression(backend, geo, seed):
    shape, k, s, p, ceil_mode = geo
    x, logit = _rand(shape, seed), _rand(shape, seed + 1)
    y = lip_pool2d(x, logit, k, s, p, ceil_mode)
    ref = weighted_avg_expression(x, logit, k, s, p, ceil_mode)
    assert y.shape == ref.shape
    torch.testing.assert_close(y, ref)


@settings(max_examples=90)
@given(nd=st.sampled_from([1, 2, 3]), data=st.data(), seed=st.integers(0, 2**16))
def test_soft_pool_equals_lip_with_logit_x(backend, nd, data, seed):
    # avg_pool3d (the oracle) refuses inputs smaller than the kernel even when padded.
    shape, k, s, p, ceil_mode = data.draw(geometry(nd=nd, max_kernel=7 if nd < 3 else 4,
                                                   max_extra=8 if nd < 3 else 3,
                                                   unpadded_fit=nd == 3))
    x = _rand(shape, seed)
    y = SOFT_POOL[nd](x, k, s, p, ceil_mode)
    torch.testing.assert_close(y, weighted_avg_expression(x, x, k, s, p, ceil_mode))


@settings(max_examples=60)
@given(geo=geometry(max_extra=4), layout=st.integers(0, 4), seed=st.integers(0, 2**16))
def test_maxent_equals_naive_loop_for_every_lambda_layout(backend, geo, layout, seed):
    shape, k, s, p, ceil_mode = geo
    x = _rand(shape, seed)
    out = _out_shape(shape, k, s, p, ceil_mode)
    lam = _rand(_lam_layouts(shape[0], shape[1], out)[layout], seed + 1).abs() * 2
    y = maxent_pool2d(x, lam, k, s, p, ceil_mode)
    ref = naive_maxent(x, lam.expand(shape[:2] + out), k, s, p, ceil_mode)
    torch.testing.assert_close(y, ref)
    if layout < 4:  # λ per input pixel: it is LIP with logit λx
        torch.testing.assert_close(y, weighted_avg_expression(x, lam * x, k, s, p, ceil_mode))


@settings(max_examples=60)
@given(geo=geometry(max_extra=4), layout=st.integers(0, 4), seed=st.integers(0, 2**16))
def test_gauss_equals_naive_loop_for_every_eta_layout(backend, geo, layout, seed):
    shape, k, s, p, ceil_mode = geo
    x = _rand(shape, seed)
    out = _out_shape(shape, k, s, p, ceil_mode)
    eta = _rand(_lam_layouts(shape[0], shape[1], out)[layout], seed + 1).abs()
    y = gauss_pool2d(x, eta, k, s, p, ceil_mode)
    torch.testing.assert_close(y, naive_gauss(x, eta.expand(shape[:2] + out), k, s, p, ceil_mode))


@settings(max_examples=40)
@given(geo=geometry(), seed=st.integers(0, 2**16))
def test_gauss_mean_is_valid_only_average(backend, geo, seed):
    shape, k, s, p, ceil_mode = geo
    x = _rand(shape, seed)
    y = gauss_pool2d(x, x.new_zeros(1), k, s, p, ceil_mode)
    torch.testing.assert_close(y, F.avg_pool2d(x, k, s, p, ceil_mode, count_include_pad=False))


# --------------------------------------------------------------------------- special cases
@settings(max_examples=40)
@given(geo=geometry(), seed=st.integers(0, 2**16))
def test_zero_logit_is_average_pooling_over_valid_pixels(backend, geo, seed):
    shape, k, s, p, ceil_mode = geo
    x = _rand(shape, seed)
    y = lip_pool2d(x, torch.zeros_like(x), k, s, p, ceil_mode)
    torch.testing.assert_close(y, F.avg_pool2d(x, k, s, p, ceil_mode, count_include_pad=False))


@settings(max_examples=40)
@given(geo=geometry(), seed=st.integers(0, 2**16))
def test_logit_x_is_soft_pool(backend, geo, seed):
    shape, k, s, p, ceil_mode = geo
    x = _rand(shape, seed)
    torch.testing.assert_close(lip_pool2d(x, x, k, s, p, ceil_mode), soft_pool2d(x, k, s, p, ceil_mode))


@settings(max_examples=40)
@given(geo=geometry(max_extra=3), seed=st.integers(0, 2**16))
def test_large_logit_scale_approaches_max_pooling(backend, geo, seed):
    shape, k, s, p, ceil_mode = geo
    numel = shape[2] * shape[3]
    g = torch.Generator().manual_seed(seed)
    # Distinct values 0.25 apart in each plane: the window max leads the runner-up by >= 0.25.
    x = torch.stack([torch.randperm(numel, generator=g) for _ in range(shape[0] * shape[1])])
    x = (x.to(torch.float64) * 0.25).reshape(shape)
    y = lip_pool2d(x, 50 * x, k, s, p, ceil_mode)
    assert (y - F.max_pool2d(x, k, s, p, ceil_mode=ceil_mode)).abs().max() < 1e-3


# --------------------------------------------------------------------------- numerics
@pytest.mark.parametrize('scale', [1e2, 1e3, 1e4])
def test_extreme_logits_stay_finite_and_convex(backend, scale):
    x = _rand((2, 3, 17, 15), 0, torch.float32)
    logit = _rand((2, 3, 17, 15), 1, torch.float32, scale)
    y = lip_pool2d(x, logit, 3, 2, 1)
    assert torch.isfinite(y).all()
    # A weighted mean lies between the window's min and max.
    assert (y <= F.max_pool2d(x, 3, 2, 1) + 1e-5).all()
    assert (y >= -F.max_pool2d(-x, 3, 2, 1) - 1e-5).all()
    lam = torch.full((1,), scale)
    assert torch.isfinite(maxent_pool2d(x * scale, lam, 3, 2, 1)).all()
    assert torch.isfinite(soft_pool2d(x * scale, 3, 2, 1)).all()


def test_window_far_below_plane_max_is_not_zero_over_zero(backend):
    # One window at +1e4 and another at -1e4: subtracting a global max would underflow to 0/0.
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    logit = torch.full_like(x, -1e4)
    logit[..., :2, :2] = 1e4
    y = lip_pool2d(x, logit, 2, 2)
    torch.testing.assert_close(y, F.avg_pool2d(x, 2, 2))


@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
def test_half_precision_soft_gate_range_is_finite_and_close(backend, dtype):
    x = _rand((2, 8, 33, 31), 0, torch.float32)
    logit = torch.sigmoid(_rand((2, 8, 33, 31), 1, torch.float32, 4)) * 12  # SoftGate's (0, 12)
    # Compare with float32 on the same rounded inputs: what is left is accumulation and output rounding.
    x, logit = x.to(dtype).float(), logit.to(dtype).float()
    ref = lip_pool2d(x, logit, 3, 2, 1)
    y = lip_pool2d(x.to(dtype), logit.to(dtype), 3, 2, 1)
    assert y.dtype == dtype and torch.isfinite(y).all()
    torch.testing.assert_close(y.float(), ref, atol=2e-2, rtol=1e-2)
    for nd, fn in SOFT_POOL.items():
        xs = logit.flatten(2)[..., :64].reshape((2, 8) + {1: (64,), 2: (8, 8), 3: (4, 4, 4)}[nd])
        xs = xs.to(dtype).float()
        out = fn(xs.to(dtype), 2)
        assert torch.isfinite(out).all()
        torch.testing.assert_close(out.float(), fn(xs, 2), atol=6e-2, rtol=3e-2)
    lam = torch.rand(2, 8, 1, 1).to(dtype).float()
    torch.testing.assert_close(maxent_pool2d(x.to(dtype), lam.to(dtype), 2).float(),
                               maxent_pool2d(x, lam, 2), atol=3e-2, rtol=3e-2)
    torch.testing.assert_close(gauss_pool2d(x.to(dtype), lam.to(dtype), 2).float(),
                               gauss_pool2d(x, lam, 2), atol=5e-2, rtol=3e-2)


@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
def test_autocast_conv_softgate_lip_is_finite(backend, dtype):
    conv = torch.nn.Conv2d(8, 8, 3, padding=1)
    x = _rand((2, 8, 24, 24), 3, torch.float32, 3)
    with torch.autocast('cpu', dtype=dtype):
        logit = torch.sigmoid(conv(x) * 10) * 12
        y = lip_pool2d(x.to(logit.dtype), logit, 3, 2, 1)
    assert y.dtype == dtype and torch.isfinite(y).all()


# --------------------------------------------------------------------------- gradients
GRAD_GEOMETRIES = [((3, 3), (2, 2), (1, 1), False), ((2, 3), (2, 1), (0, 1), True),
                   ((3, 2), (3, 2), (1, 0), True), ((1, 1), (1, 1), (0, 0), False)]


@pytest.mark.parametrize('k,s,p,ceil_mode', GRAD_GEOMETRIES)
def test_gradcheck_lip_and_soft_pool(backend, k, s, p, ceil_mode):
    x = _rand((2, 2, 6, 5), 0).requires_grad_()
    logit = _rand((2, 2, 6, 5), 1).requires_grad_()
    assert torch.autograd.gradcheck(lambda a, b: lip_pool2d(a, b, k, s, p, ceil_mode), (x, logit))
    assert torch.autograd.gradcheck(lambda a: soft_pool2d(a, k, s, p, ceil_mode), (x,))
    x1 = _rand((2, 2, 7), 2).requires_grad_()
    assert torch.autograd.gradcheck(lambda a: soft_pool1d(a, k[0], s[0], p[0], ceil_mode), (x1,))
    x3 = _rand((1, 2, 4, 5, 3), 3).requires_grad_()
    assert torch.autograd.gradcheck(lambda a: soft_pool3d(a, (2,) + k, (1,) + s, (1,) + p, ceil_mode), (x3,))


@pytest.mark.parametrize('layout', range(5))
@pytest.mark.parametrize('k,s,p,ceil_mode', GRAD_GEOMETRIES[:2])
def test_gradcheck_maxent_and_gauss_every_layout(backend, layout, k, s, p, ceil_mode):
    x = _rand((2, 3, 6, 5), 0).requires_grad_()
    out = _out_shape(x.shape, k, s, p, ceil_mode)
    param = (_rand(_lam_layouts(2, 3, out)[layout], 1).abs() + 0.1).requires_grad_()
    assert torch.autograd.gradcheck(lambda a, b: maxent_pool2d(a, b, k, s, p, ceil_mode), (x, param))
    assert torch.autograd.gradcheck(lambda a, b: gauss_pool2d(a, b, k, s, p, ceil_mode), (x, param))


def test_exact_gradient_formulas(backend):
    """The spec's closed forms: ∂y/∂l_i = w_i (x_i − y), SoftPool ∂y/∂x_i = w_i (1 + x_i − y)."""
    x = _rand((1, 1, 2, 2), 0).requires_grad_()
    logit = _rand((1, 1, 2, 2), 1).requires_grad_()
    y = lip_pool2d(x, logit, 2)
    gx, gl = torch.autograd.grad(y.sum(), (x, logit))
    w = torch.softmax(logit.detach().flatten(), 0).reshape(x.shape)
    torch.testing.assert_close(gx, w)
    torch.testing.assert_close(gl, w * (x.detach() - y.detach()))
    y = soft_pool2d(x, 2)
    (gx,) = torch.autograd.grad(y.sum(), (x,))
    w = torch.softmax(x.detach().flatten(), 0).reshape(x.shape)
    torch.testing.assert_close(gx, w * (1 + x.detach() - y.detach()))
    lam = torch.tensor([0.7], dtype=torch.float64, requires_grad=True)
    y = maxent_pool2d(x, lam, 2)
    gx, glam = torch.autograd.grad(y.sum(), (x, lam))
    w = torch.softmax(0.7 * x.detach().flatten(), 0).reshape(x.shape)
    xd, yd = x.detach(), y.detach()
    torch.testing.assert_close(gx, w * (1 + 0.7 * (xd - yd)))
    torch.testing.assert_close(glam, ((w * xd * xd).sum() - yd.sum() ** 2).reshape(1))


@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
def test_autocast_promotes_mixed_x_and_logit_dtypes(backend, dtype):
    x = _rand((2, 4, 9, 9), 5, torch.float32)
    logit = torch.sigmoid(_rand((2, 4, 9, 9), 6, torch.float32)) * 12
    with torch.autocast('cpu', dtype=dtype):
        y = lip_pool2d(x.to(dtype), logit, 3, 2, 1)  # float32 logit, as InstanceNorm would give
    assert y.dtype == torch.float32
    torch.testing.assert_close(y, lip_pool2d(x.to(dtype).float(), logit, 3, 2, 1))
    with pytest.raises(TypeError, match='logit must have the dtype of x'):
        lip_pool2d(x.to(dtype), logit, 3, 2, 1)  # outside autocast a mismatch is a bug
