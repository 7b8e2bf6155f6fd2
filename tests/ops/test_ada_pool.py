"""adaPool (lip_det.ops.ada_pool*): the plain-PyTorch definition against a per-window loop
written from the formulas, the fused kernels against the definition over fuzzed geometries and
every β layout (outputs and the gradients of x and β), gradcheck, opcheck, torch.compile,
half types, the CUDA kernels run through host emulation, stability and every bad argument."""
from __future__ import annotations

import itertools
import math
import os.path as osp

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lip_det.ops import (ada_pool1d, ada_pool2d, ada_pool3d, edscw_pool2d, em_pool2d, soft_pool2d)
from lip_det.ops import ada_pool as ada
from lip_det.ops.reference import pooled_size

from .fused_helpers import needs_ext, seeded_randn
from .strategies import geometry

OPS = {1: ada_pool1d, 2: ada_pool2d, 3: ada_pool3d}
HERE = osp.dirname(osp.abspath(__file__))
CSRC = osp.join(osp.dirname(osp.dirname(HERE)), 'csrc')


def beta_shapes(n, c, out):
    """Every kind of β the op accepts, for input (n, c, ...) and spatial output ``out``."""
    nd = len(out)
    return {'scalar': (1,), 'channel': (1, c) + (1,) * nd, 'sample_channel': (n, c) + (1,) * nd,
            'location': tuple(out), 'full': (n, c) + tuple(out)}


def loop_oracle(x, beta, k, s, p, ceil_mode):
    """adaPool by its definition, one window at a time in Python floats (float64 inputs)."""
    nd = len(k)
    n, c = x.shape[:2]
    sizes = x.shape[2:]
    outs = [pooled_size(sz, kk, ss, pp, ceil_mode) for sz, kk, ss, pp in zip(sizes, k, s, p)]
    b = beta.expand(n, c, *outs)
    y = torch.empty(n, c, *outs, dtype=torch.float64)
    for ni, ci in itertools.product(range(n), range(c)):
        for o in itertools.product(*(range(v) for v in outs)):
            ranges = [range(max(0, oi * ss - pp), min(sz, oi * ss - pp + kk))
                      for oi, ss, pp, kk, sz in zip(o, s, p, k, sizes)]
            vals = [float(x[(ni, ci) + idx]) for idx in itertools.product(*ranges)]
            m = sum(vals) / len(vals)
            top = max(vals)
            em = [math.exp(v - top) for v in vals]
            y_m = sum(e * v for e, v in zip(em, vals)) / sum(em)
            d = [0.0 if v == 0 and m == 0 else 2 * abs(v * m) / (v * v + m * m) for v in vals]
            ed = [math.exp(di) for di in d]
            y_d = sum(e * v for e, v in zip(ed, vals)) / sum(ed)
            bv = float(b[(ni, ci) + o])
            y[(ni, ci) + o] = bv * y_d + (1 - bv) * y_m
    return y


@settings(max_examples=40)
@given(st.sampled_from([1, 2, 3]), st.data())
def test_reference_matches_the_per_window_loop(nd, data):
    shape, k, s, p, ceil = data.draw(geometry(nd=nd, max_kernel=4, max_extra=3))
    seed = data.draw(st.integers(0, 2**16))
    x = seeded_randn(shape, seed, 2.0)
    out = [pooled_size(sz, kk, ss, pp, ceil) for sz, kk, ss, pp in zip(shape[2:], k, s, p)]
    beta = torch.rand(shape[:2] + tuple(out), dtype=torch.float64,
                      generator=torch.Generator().manual_seed(seed))
    torch.testing.assert_close(ada.reference_ada_pool(x, beta, k, s, p, ceil),
                               loop_oracle(x, beta, k, s, p, ceil), rtol=1e-12, atol=1e-12)


def test_exact_gradient_of_the_definition_differs_from_the_reference_codes_constant_weights():
    """The reference code's backward holds the weights constant (g·w); ours differentiates them."""
    x = seeded_randn((1, 1, 4, 4), 3, 1.5).requires_grad_(True)
    beta = torch.full((1,), 0.5, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda t: ada.reference_ada_pool(t, beta, (2, 2), (2, 2), (0, 0)), (x,))


# ----------------------------------------------------------------------------- fused kernels
def _run(fn, x, beta, geom):
    xl, bl = x.detach().clone().requires_grad_(True), beta.detach().clone().requires_grad_(True)
    y = fn(xl, bl, *geom)
    g = seeded_randn(y.shape, 11, dtype=y.dtype)
    gx, gb = torch.autograd.grad(y, (xl, bl), g)
    return y.detach(), gx, gb


@needs_ext
@settings(max_examples=80)
@given(st.sampled_from([1, 2, 3]), st.data())
def test_fused_matches_reference(nd, data):
    shape, k, s, p, ceil = data.draw(geometry(nd=nd, max_kernel=5 if nd == 3 else 7,
                                              max_extra=4 if nd == 3 else 8))
    seed = data.draw(st.integers(0, 2**16))
    scale = data.draw(st.sampled_from([0.01, 1.0, 30.0]))
    out = [pooled_size(sz, kk, ss, pp, ceil) for sz, kk, ss, pp in zip(shape[2:], k, s, p)]
    layout = data.draw(st.sampled_from(sorted(beta_shapes(*shape[:2], out))))
    x = seeded_randn(shape, seed, scale)
    beta = torch.rand(beta_shapes(*shape[:2], out)[layout], dtype=torch.float64,
                      generator=torch.Generator().manual_seed(seed + 1)) * 1.5 - 0.25
    geom = (k, s, p, ceil)
    fused = _run(lambda *a: getattr(torch.ops.lip_det, f'ada_pool{nd}d')(*a), x, beta, geom)
    ref = _run(ada.reference_ada_pool, x, beta, geom)
    for name, a, b in zip(('y', 'grad x', 'grad beta'), fused, ref):
        assert a.shape == b.shape, name
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-10, msg=lambda m: f'{name}: {m}')


@needs_ext
@pytest.mark.parametrize('nd', [1, 2, 3])
def test_gradcheck_x_and_beta(nd):
    # one sample in 3-d: gradgradcheck's cost grows with the square of the input size
    shape = (2 if nd < 3 else 1, 2) + (5, 6, 4)[:nd][::-1]
    x = seeded_randn(shape, nd, 1.3).requires_grad_(True)
    out = [pooled_size(sz, 3, 2, 1, True) for sz in shape[2:]]
    beta = torch.rand((1, 2) + tuple(out), dtype=torch.float64).requires_grad_(True)
    fn = OPS[nd]
    assert torch.autograd.gradcheck(lambda a, b: fn(a, b, 3, 2, 1, True), (x, beta))
    assert torch.autograd.gradgradcheck(lambda a, b: fn(a, b, 3, 2, 1, True), (x, beta))


@needs_ext
@pytest.mark.parametrize('nd', [1, 2, 3])
def test_opcheck(nd):
    shape = (2, 3) + (6, 5, 4)[:nd]
    x = seeded_randn(shape, 1, dtype=torch.float32).requires_grad_(True)
    beta = torch.rand(1, 3, *(1,) * nd).requires_grad_(True)
    op = getattr(torch.ops.lip_det, f'ada_pool{nd}d')
    torch.library.opcheck(op, (x, beta, [2] * nd, [2] * nd, [0] * nd, False))
    torch.library.opcheck(op, (x, beta, [3] * nd, [2] * nd, [1] * nd, True))


@needs_ext
def test_compiled_equals_eager():
    x = seeded_randn((2, 3, 9, 8), 5, dtype=torch.float32)
    beta = torch.rand(1, 3, 1, 1)

    def f(a, b):
        return ada_pool2d(a, b, 3, 2, 1).sum(dim=1)

    compiled = torch.compile(f, fullgraph=True, backend='aot_eager')
    torch.testing.assert_close(compiled(x, beta), f(x, beta))


@needs_ext
@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
def test_half_types_accumulate_in_float32(dtype):
    x = seeded_randn((2, 4, 10, 9), 8, 3.0, dtype=dtype)
    beta = torch.rand(1, 4, 1, 1).to(dtype)
    y = ada_pool2d(x, beta, 3, 2, 1, True)
    assert y.dtype == dtype
    ref = ada.reference_ada_pool(x.double(), beta.double(), (3, 3), (2, 2), (1, 1), True)
    tol = 1e-2 if dtype == torch.float16 else 4e-2
    torch.testing.assert_close(y.double(), ref, rtol=tol, atol=tol)
    xl = x.clone().requires_grad_(True)
    ada_pool2d(xl, beta, 3, 2, 1, True).float().sum().backward()
    assert xl.grad.dtype == dtype and torch.isfinite(xl.grad).all()


@needs_ext
@pytest.mark.parametrize('scale', [1e4, 1e20])
def test_huge_inputs_stay_finite(scale):
    """eM subtracts the window maximum; dsc is computed as a ratio, so x² never overflows."""
    x = (seeded_randn((1, 2, 8, 8), 4, dtype=torch.float32) * scale).requires_grad_(True)
    beta = torch.full((1,), 0.3)
    y = ada_pool2d(x, beta, 2)
    y.sum().backward()
    assert torch.isfinite(y).all() and torch.isfinite(x.grad).all()
    ref = ada.reference_ada_pool(x.detach().double(), beta.double(), (2, 2), (2, 2), (0, 0))
    torch.testing.assert_close(y.double(), ref, rtol=1e-5, atol=0)


@needs_ext
def test_zero_windows_pool_to_zero_with_finite_gradients():
    x = torch.zeros(1, 1, 4, 4, dtype=torch.float64, requires_grad=True)
    beta = torch.full((1,), 0.5, dtype=torch.float64, requires_grad=True)
    y = ada_pool2d(x, beta, 2)
    y.sum().backward()
    assert torch.equal(y, torch.zeros_like(y))
    assert torch.isfinite(x.grad).all() and torch.isfinite(beta.grad).all()


def test_extremes_of_beta_are_the_two_poolings():
    x = seeded_randn((2, 3, 7, 9), 2, 2.0)
    geom = dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)
    torch.testing.assert_close(ada_pool2d(x, x.new_zeros(1), **geom), soft_pool2d(x, **geom))
    torch.testing.assert_close(ada_pool2d(x, x.new_ones(1), **geom), edscw_pool2d(x, **geom))
    assert em_pool2d is soft_pool2d
    # eDSCW favours pixels whose magnitude is the window mean's: a window (1, 1, 1, 9) has mean 3
    # and eDSCW's output lies below its arithmetic mean, SoftPool's far above.
    w = torch.tensor([[[[1.0, 1.0], [1.0, 9.0]]]], dtype=torch.float64)
    assert edscw_pool2d(w, 2).item() < 3.0 < soft_pool2d(w, 2).item()


# ----------------------------------------------------------------------------- CUDA kernels
@pytest.fixture(scope='module')
def emu(tmp_path_factory):
    """torch.ops.lip_det_ada_pool_emulation: ada_pool_cuda.cu compiled as host C++."""
    from torch.utils.cpp_extension import load
    build = tmp_path_factory.mktemp('ada_pool_emulation_build')
    sources = [osp.join(HERE, 'ada_pool_cuda_emulation.cpp'), osp.join(CSRC, 'pool_args.cpp'),
               osp.join(CSRC, 'ops', 'ada_pool', 'ada_pool.cpp')]
    load(name='lip_det_ada_pool_emulation', sources=sources, extra_include_paths=[CSRC],
         extra_cflags=['-O1', '-std=c++20', '-DLIPDET_CUDA_EMULATION'],
         build_directory=str(build), is_python_module=False, verbose=False)
    return torch.ops.lip_det_ada_pool_emulation


@needs_ext
@settings(max_examples=60)
@given(st.sampled_from([1, 2, 3]), st.data())
def test_emulated_cuda_kernels_match_cpu(emu, nd, data):
    shape, k, s, p, ceil = data.draw(geometry(nd=nd, max_kernel=5 if nd == 3 else 7,
                                              max_extra=4 if nd == 3 else 8))
    seed = data.draw(st.integers(0, 2**16))
    dtype = data.draw(st.sampled_from([torch.float64, torch.float32, torch.bfloat16]))
    out = [pooled_size(sz, kk, ss, pp, ceil) for sz, kk, ss, pp in zip(shape[2:], k, s, p)]
    layout = data.draw(st.sampled_from(sorted(beta_shapes(*shape[:2], out))))
    x = seeded_randn(shape, seed, 2.0, dtype=dtype)
    beta = torch.rand(beta_shapes(*shape[:2], out)[layout],
                      generator=torch.Generator().manual_seed(seed)).to(dtype)
    args = (x, beta, list(k), list(s), list(p), ceil)
    name = f'ada_pool{nd}d'
    y_cpu, y_emu = getattr(torch.ops.lip_det, name)(*args), getattr(emu, name)(*args)
    # Same header functions, same order of summation: equal to the last bit.
    assert torch.equal(y_cpu, y_emu)
    g = seeded_randn(y_cpu.shape, seed + 2, dtype=dtype)
    for a, b in zip(getattr(torch.ops.lip_det, name + '_backward')(g, *args),
                    getattr(emu, name + '_backward')(g, *args)):
        assert a.shape == b.shape and torch.equal(a, b)


# ----------------------------------------------------------------------------- bad arguments
@pytest.mark.parametrize('beta, error, words', [
    ('0.5', TypeError, 'beta must be a torch.Tensor'),
    (torch.ones(1, dtype=torch.int64), TypeError, 'beta must be a floating-point'),
    (torch.ones(1, 3, 2, 2), ValueError, 'beta must broadcast to the output shape (2, 3, 4, 4)'),
    (torch.ones(5), ValueError, 'per channel'),
    (torch.ones(1, 1, 1, 1, 1), ValueError, 'beta must broadcast'),
])
def test_bad_beta(beta, error, words):
    with pytest.raises(error, match=None) as info:
        ada_pool2d(torch.randn(2, 3, 8, 8), beta, 2)
    assert words in str(info.value)


def test_beta_on_another_device_is_refused():
    with pytest.raises(ValueError, match='beta must be on the same device as x'):
        ada_pool2d(torch.randn(1, 1, 4, 4), torch.ones(1, device='meta'), 2)


@pytest.mark.parametrize('kwargs, error, words', [
    (dict(x=torch.randn(2, 3, 8)), ValueError, 'x must be a 4-D tensor (N, C, H, W)'),
    (dict(kernel_size=0), ValueError, 'kernel_size must be positive'),
    (dict(stride=(1, 2, 3)), TypeError, 'stride must be an int or a tuple of 2 ints'),
    (dict(padding=2), ValueError, 'padding must be at most half of kernel_size'),
    (dict(ceil_mode='yes'), TypeError, 'ceil_mode must be a bool'),
    (dict(x=torch.ones(2, 3, 8, 8, dtype=torch.int32)), TypeError, 'x must be a floating-point'),
])
def test_bad_pooling_arguments(kwargs, error, words):
    args = dict(x=torch.randn(2, 3, 8, 8), beta=torch.ones(1), kernel_size=2)
    args.update(kwargs)
    with pytest.raises(error) as info:
        ada_pool2d(**args)
    assert words in str(info.value)


@needs_ext
def test_raw_op_refuses_a_beta_that_does_not_broadcast():
    with pytest.raises(ValueError, match='beta must broadcast to the output shape'):
        torch.ops.lip_det.ada_pool2d(torch.randn(1, 2, 4, 4), torch.ones(3, 1, 1), [2, 2], [2, 2],
                                     [0, 0], False)
