"""Every fused op equals the plain-PyTorch op (forward and all gradients) over fuzzed geometries.

Float64 comparisons are tight (the kernels and reference differ only in summation order);
float32 ones check the kernels' own exp and the AVX2 row kernels against the same reference.
"""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from .fused_helpers import (assert_matches_reference, cpu_isa, needs_ext, out_size,
                            per_window_layouts, seeded_randn)
from .strategies import geometry

pytestmark = needs_ext
F64 = torch.float64


@settings(max_examples=300)
@given(geometry(nd=2), st.integers(0, 2**16), st.sampled_from([0.1, 1.0, 30.0]))
def test_lip_matches_reference(geom, seed, logit_scale):
    shape, k, s, p, ceil = geom
    x, logit = seeded_randn(shape, seed), seeded_randn(shape, seed + 1, logit_scale)
    assert_matches_reference('lip_pool2d', [x, logit], (k, s, p, ceil))


@settings(max_examples=300)
@given(geometry(nd=2), st.integers(0, 2**16), st.sampled_from([0.1, 1.0, 30.0]),
       st.sampled_from([-5.0, 0.0, 3.0]), st.sampled_from([(1e-5, 12.0), (0.5, 1.0)]))
def test_lip_gated_matches_reference(geom, seed, pre_scale, pre_shift, eps_coeff):
    """The fused norm + gate: logit = coeff·σ(IN(pre)) made in the kernel, every gradient."""
    shape, k, s, p, ceil = geom
    x = seeded_randn(shape, seed)
    pre = seeded_randn(shape, seed + 1, pre_scale) + pre_shift
    weight, bias = seeded_randn(shape[1:2], seed + 2, 2.0), seeded_randn(shape[1:2], seed + 3, 2.0)
    assert_matches_reference('lip_pool2d_gated', [x, pre, weight, bias], (*eps_coeff, k, s, p, ceil),
                             rtol=1e-8, atol=1e-9)


@settings(max_examples=300)
@given(st.sampled_from([1, 2, 3]), st.data())
def test_soft_pool_matches_reference(nd, data):
    shape, k, s, p, ceil = data.draw(geometry(nd=nd, max_kernel=5 if nd == 3 else 7,
                                              max_extra=4 if nd == 3 else 8))
    seed = data.draw(st.integers(0, 2**16))
    assert_matches_reference(f'soft_pool{nd}d', [seeded_randn(shape, seed, 2.0)], (k, s, p, ceil))


@settings(max_examples=600)
@given(geometry(nd=2), st.integers(0, 2**16),
       st.sampled_from(['scalar', 'channel', 'sample_channel', 'sample', 'window']),
       st.sampled_from(['maxent_pool2d', 'gauss_pool2d']))
def test_per_window_param_ops_match_reference(geom, seed, layout, name):
    shape, k, s, p, ceil = geom
    x = seeded_randn(shape, seed)
    lam_shape = per_window_layouts(shape[0], shape[1], out_size(shape, k, s, p, ceil))[layout]
    lam = seeded_randn(lam_shape, seed + 2, 2.0)
    assert_matches_reference(name, [x, lam], (k, s, p, ceil))


@settings(max_examples=200)
@given(geometry(nd=2, max_kernel=5), st.integers(0, 2**16),
       st.sampled_from(['lip_pool2d', 'lip_pool2d_gated', 'soft_pool2d', 'maxent_pool2d',
                        'gauss_pool2d']),
       st.sampled_from(['', 'avx2', 'default']))
def test_float32_matches_float64_reference(geom, seed, name, isa):
    """The float32 kernels (vectorised, own exp) against the float32 reference, in the best
    build of the CPU row kernels for this machine (AVX-512 here), the AVX2 one and the baseline
    one (lip_det.ops.set_cpu_isa)."""
    with cpu_isa(isa):
        _check_float32(geom, seed, name)


def _check_float32(geom, seed, name):
    shape, k, s, p, ceil = geom
    x = seeded_randn(shape, seed, dtype=torch.float32)
    c = shape[1:2]
    extra = {'lip_pool2d': [seeded_randn(shape, seed + 1, 3.0, torch.float32)], 'soft_pool2d': [],
             'lip_pool2d_gated': [seeded_randn(shape, seed + 1, 3.0, torch.float32),
                                  seeded_randn(c, seed + 2, 1.0, torch.float32),
                                  seeded_randn(c, seed + 3, 1.0, torch.float32)],
             'maxent_pool2d': [seeded_randn((shape[0], shape[1], 1, 1), seed + 1, 1.0, torch.float32)],
             'gauss_pool2d': [seeded_randn((1,), seed + 1, 1.0, torch.float32)]}[name]
    from .fused_helpers import fused, run
    from lip_det.ops import reference
    geom = ((1e-5, 12.0) if name == 'lip_pool2d_gated' else ()) + (k, s, p, ceil)
    tensors = [x] + extra
    out_f, grads_f = run(name, fused(), tensors, geom)
    out_r, grads_r = run(name, reference, tensors, geom)
    out_64, grads_64 = run(name, reference, [t.double() for t in tensors], geom)
    # Measured against the float64 reference, the kernels may err by the float32 reference's own
    # error (twice, for rounding that differs) plus a small tolerance: Gaussian pooling's
    # E[x²] − μ² cancels catastrophically in float32 for near-constant windows, in any order.
    _assert_float32_close(out_f, out_r, out_64, 1e-5, 1e-5, 'output')
    for i, (gf, gr, g64) in enumerate(zip(grads_f, grads_r, grads_64)):
        # λ/η gradients sum over many windows: scale the tolerance with their magnitude.
        _assert_float32_close(gf, gr, g64, 1e-4, 1e-4 * max(1.0, g64.abs().max().item()), f'grad {i}')


def _assert_float32_close(fused32, ref32, ref64, rtol, atol, what):
    err = (fused32.double() - ref64).abs()
    allowed = atol + rtol * ref64.abs() + 2 * (ref32.double() - ref64).abs()
    bad = ~(err <= allowed)
    assert not bad.any(), (f'{what}: {int(bad.sum())} elements off, worst error {err[bad].max().item():.3g} '
                           f'where {allowed[bad][err[bad].argmax()].item():.3g} was allowed')


@pytest.mark.parametrize('scale', [1e2, 1e4])
def test_huge_logits_stay_finite_and_exact(scale):
    """Window-max subtraction: logits of ±1e4 neither overflow nor lose the winner."""
    x = seeded_randn((2, 3, 9, 10), 1)
    logit = seeded_randn((2, 3, 9, 10), 2, scale)
    assert_matches_reference('lip_pool2d', [x, logit], ((3, 3), (2, 2), (1, 1), True))
    from .fused_helpers import fused
    y = fused().lip_pool2d(x.float(), logit.float(), (3, 3), (2, 2), (1, 1))
    assert torch.isfinite(y).all()
    # logit = β·x with β = 1e4 is max pooling: the window's argmax wins (e^-1e4·Δ underflows).
    y_max = fused().lip_pool2d(x, x * 1e4, (2, 2), (2, 2), (0, 0))
    torch.testing.assert_close(y_max, torch.nn.functional.max_pool2d(x, 2), rtol=0, atol=1e-6)


@pytest.mark.parametrize('name', ['lip_pool2d', 'soft_pool2d'])
def test_float32_widely_spread_logits_take_the_exact_path(name):
    """Logits spread by ~100 within a row: the per-row shift underflows some windows entirely;
    those windows must fall back to their own maximum and still match the float32 reference."""
    from .fused_helpers import fused, run
    from lip_det.ops import reference
    x = seeded_randn((2, 3, 11, 13), 7, 100.0, torch.float32)
    extra = [seeded_randn((2, 3, 11, 13), 8, 100.0, torch.float32)] if name == 'lip_pool2d' else []
    geom = ((3, 3), (2, 2), (1, 1), False)
    out_f, grads_f = run(name, fused(), [x] + extra, geom)
    out_r, grads_r = run(name, reference, [x] + extra, geom)
    assert torch.isfinite(out_f).all()
    torch.testing.assert_close(out_f, out_r, rtol=1e-5, atol=1e-4)
    for gf, gr in zip(grads_f, grads_r):
        torch.testing.assert_close(gf, gr, rtol=1e-4, atol=1e-4 * max(1.0, gr.abs().max().item()))


def test_gaussian_variance_floor_matches_reference():
    """Constant windows (var = 0 < 1e-6): σ is the floor and carries no gradient to x."""
    x = torch.ones(1, 2, 6, 6, dtype=F64)
    x[:, :, :, 3:] = torch.randn(1, 2, 6, 3, dtype=F64)
    eta = torch.full((1, 2, 1, 1), 0.7, dtype=F64)
    assert_matches_reference('gauss_pool2d', [x, eta], ((3, 3), (3, 3), (0, 0), False))


def test_special_cases_of_lip():
    """l = 0 is average pooling over valid pixels; l = x is SoftPool."""
    from .fused_helpers import fused
    x = seeded_randn((2, 4, 11, 9), 3)
    geom = ((3, 3), (2, 2), (1, 1), True)
    avg = torch.nn.functional.avg_pool2d(x, 3, 2, 1, ceil_mode=True, count_include_pad=False)
    torch.testing.assert_close(fused().lip_pool2d(x, torch.zeros_like(x), *geom), avg)
    torch.testing.assert_close(fused().lip_pool2d(x, x, *geom), fused().soft_pool2d(x, *geom))


def test_gate_saturation_and_constant_planes():
    """A saturated gate (|IN output| ~ 1e3) gives 0 or coeff without NaN; a zero norm weight gives
    the constant logit coeff·σ(bias), i.e. average pooling, and no gradient to pre; a constant
    plane (variance 0 < eps) is exact too."""
    from .fused_helpers import fused
    x = seeded_randn((2, 3, 9, 10), 4)
    pre = seeded_randn((2, 3, 9, 10), 5)
    big = torch.full((3,), 1e3, dtype=F64)
    geom = ((3, 3), (2, 2), (1, 1), True)
    assert_matches_reference('lip_pool2d_gated', [x, pre, big, 0 * big], (1e-5, 12.0, *geom))
    y = fused().lip_pool2d_gated(x.float(), pre.float(), big.float(), 0 * big.float(), 1e-5, 12.0, *geom)
    assert torch.isfinite(y).all()
    avg = torch.nn.functional.avg_pool2d(x, 3, 2, 1, ceil_mode=True, count_include_pad=False)
    p = pre.clone().requires_grad_()
    y0 = fused().lip_pool2d_gated(x, p, 0 * big, big / 1e3, 1e-5, 12.0, *geom)
    torch.testing.assert_close(y0, avg)
    (g,) = torch.autograd.grad(y0.sum(), p)
    assert torch.equal(g, torch.zeros_like(g))
    flat = torch.ones_like(pre) * 7.0
    flat[1, 2] = pre[1, 2]
    assert_matches_reference('lip_pool2d_gated', [x, flat, big / 1e3, big / 1e3], (1e-5, 12.0, *geom))


@pytest.mark.parametrize('isa', ['', 'avx2', 'default'])
@pytest.mark.parametrize('dtype', [torch.float32, F64])
@pytest.mark.parametrize('name,where', [('lip_pool2d', 'x'), ('lip_pool2d', 'logit'), ('soft_pool2d', 'x')])
def test_nan_reaches_exactly_the_windows_that_hold_it(name, where, dtype, isa, monkeypatch):
    """A NaN input spoils the outputs (and gradients) of the windows that contain it, as in the
    reference, and nothing else: the row maximum of the shifted weights must not spread it."""
    from .fused_helpers import fused, run
    from lip_det.ops import reference
    x = seeded_randn((2, 3, 11, 40), 9, 1.0, dtype)
    tensors = [x] + ([seeded_randn((2, 3, 11, 40), 10, 2.0, dtype)] if name == 'lip_pool2d' else [])
    tensors[1 if where == 'logit' else 0][1, 2, 5, 17] = float('nan')
    geom = ((3, 3), (2, 2), (1, 1), False)
    with cpu_isa(isa):
        out_f, grads_f = run(name, fused(), tensors, geom)
    out_r, grads_r = run(name, reference, tensors, geom)
    assert out_f.isnan().sum() == 4  # rows 2, 3 x columns 8, 9 of plane (1, 2)
    assert torch.equal(out_f.isnan(), out_r.isnan())
    torch.testing.assert_close(out_f, out_r, equal_nan=True, rtol=1e-5, atol=1e-5)
    for gf, gr in zip(grads_f, grads_r):
        torch.testing.assert_close(gf, gr, equal_nan=True, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize('name', ['lip_pool2d', 'lip_pool2d_gated', 'soft_pool2d', 'maxent_pool2d',
                                  'gauss_pool2d'])
@pytest.mark.parametrize('k,s', [((2, 2), (2, 2)), ((2, 2), (3, 3)), ((3, 1), (2, 2))])
def test_pixels_outside_every_window_get_zero_gradient(name, k, s):
    """The backward writes every gradient element without a zeroing pass (a row's first
    contribution is stored): pixels that no window covers, after the last window or between
    windows, must still come out exactly 0, also when the allocator hands out dirty memory."""
    from .fused_helpers import fused
    shape = (2, 3, 11, 13)  # odd sizes: the last row and column lie outside every window
    x = seeded_randn(shape, 11, dtype=torch.float32)
    extra = {'lip_pool2d': [seeded_randn(shape, 12, 2.0, torch.float32)], 'soft_pool2d': [],
             'lip_pool2d_gated': [seeded_randn(shape, 12, 1.0, torch.float32), torch.ones(3), torch.zeros(3)],
             'maxent_pool2d': [torch.full((1,), 0.5)], 'gauss_pool2d': [torch.full((1,), 0.5)]}[name]
    scalars = (1e-5, 12.0) if name == 'lip_pool2d_gated' else ()
    op = getattr(fused(), name)
    covered = torch.zeros(shape[2:], dtype=torch.bool)
    out_h, out_w = (shape[2] - k[0]) // s[0] + 1, (shape[3] - k[1]) // s[1] + 1
    for oh in range(out_h):
        for ow in range(out_w):
            covered[oh * s[0]:oh * s[0] + k[0], ow * s[1]:ow * s[1] + k[1]] = True
    assert not covered.all()
    for _ in range(3):
        torch.full((4 * x.numel(),), float('nan')).sum()  # leave NaN in freed heap memory
        leaves = [t.clone().requires_grad_(True) for t in [x] + extra[:1]]
        y = op(*leaves, *extra[1:], *scalars, k, s, (0, 0), False)
        grads = torch.autograd.grad(y, leaves, torch.ones_like(y))
        assert all(torch.isfinite(g).all() for g in grads)
        # gated's pre reaches every pixel's gradient through the InstanceNorm statistics; λ, η are [1]
        for g in grads[:1] if name in ('lip_pool2d_gated', 'maxent_pool2d', 'gauss_pool2d') else grads:
            assert torch.equal(g[:, :, ~covered], torch.zeros_like(g[:, :, ~covered]))
    assert_matches_reference(name, [t.double() for t in [x] + extra], scalars + (k, s, (0, 0), False))
