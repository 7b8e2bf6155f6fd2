"""The CUDA kernels, run on the CPU: csrc/ops/weighted_pool/weighted_pool_cuda.cu and
csrc/ops/gauss_pool/gauss_pool_cuda.cu compiled as host C++
(csrc/cuda/emulation.h walks each launch's grid block by block, thread by thread) and registered
as torch.ops.lip_det_cuda_emulation. Every op's forward and backward equals the CPU kernels'
over fuzzed geometries, so the CUDA indexing, window bounds, gather backward and half-type
handling are tested here although no GPU ever runs them."""
import os.path as osp

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from .fused_helpers import needs_ext, out_size, per_window_layouts, seeded_randn
from .strategies import geometry

pytestmark = needs_ext
HERE = osp.dirname(osp.abspath(__file__))
CSRC = osp.join(osp.dirname(osp.dirname(HERE)), 'csrc')


@pytest.fixture(scope='module')
def emu(tmp_path_factory):
    """torch.ops.lip_det_cuda_emulation, built once per session (~15 s); a build error fails."""
    from torch.utils.cpp_extension import load
    build = tmp_path_factory.mktemp('cuda_emulation_build')
    sources = [osp.join(HERE, 'cuda_emulation.cpp'), osp.join(CSRC, 'pool_args.cpp'),
               osp.join(CSRC, 'ops', 'weighted_pool', 'weighted_pool.cpp'),
               osp.join(CSRC, 'ops', 'gauss_pool', 'gauss_pool.cpp')]
    load(name='lip_det_cuda_emulation', sources=sources, extra_include_paths=[CSRC],
         extra_cflags=['-O1', '-std=c++20', '-DLIPDET_CUDA_EMULATION'], build_directory=str(build), is_python_module=False,
         verbose=False)
    return torch.ops.lip_det_cuda_emulation



def assert_emulation_matches_cpu(name, emu_ops, args, rtol=1e-9, atol=1e-11):
    """Forward and backward of op `name`: emulated CUDA kernels == CPU kernels."""
    cpu_ops = torch.ops.lip_det
    y_cpu = getattr(cpu_ops, name)(*args)
    y_emu = getattr(emu_ops, name)(*args)
    assert y_emu.dtype == y_cpu.dtype and y_emu.shape == y_cpu.shape
    torch.testing.assert_close(y_emu, y_cpu, rtol=rtol, atol=atol, msg=lambda m: f'{name}: {m}')
    g = seeded_randn(y_cpu.shape, 7, dtype=y_cpu.dtype)
    back = name + '_backward'
    gr_cpu = getattr(cpu_ops, back)(g, *args)
    gr_emu = getattr(emu_ops, back)(g, *args)
    gr_cpu = gr_cpu if isinstance(gr_cpu, (tuple, list)) else (gr_cpu,)
    gr_emu = gr_emu if isinstance(gr_emu, (tuple, list)) else (gr_emu,)
    for i, (a, b) in enumerate(zip(gr_emu, gr_cpu)):
        assert a.shape == b.shape, f'{back} output {i}: {a.shape} != {b.shape}'
        torch.testing.assert_close(a, b, rtol=rtol, atol=atol, msg=lambda m: f'{back} output {i}: {m}')


@settings(max_examples=100)
@given(geometry(nd=2), st.integers(0, 2**16), st.sampled_from([0.1, 1.0, 30.0]))
def test_lip(emu, geom, seed, logit_scale):
    shape, k, s, p, ceil = geom
    x, logit = seeded_randn(shape, seed), seeded_randn(shape, seed + 1, logit_scale)
    assert_emulation_matches_cpu('lip_pool2d', emu, (x, logit, k, s, p, ceil))


@settings(max_examples=100)
@given(geometry(nd=2), st.integers(0, 2**16), st.sampled_from([0.1, 1.0, 30.0]))
def test_lip_gated(emu, geom, seed, pre_scale):
    """The fused norm + gate, including the InstanceNorm backward kernels."""
    shape, k, s, p, ceil = geom
    x, pre = seeded_randn(shape, seed), seeded_randn(shape, seed + 1, pre_scale) + 1.5
    weight, bias = seeded_randn(shape[1:2], seed + 2, 2.0), seeded_randn(shape[1:2], seed + 3, 2.0)
    args = (x, pre, weight, bias, 1e-5, 12.0, k, s, p, ceil)
    assert_emulation_matches_cpu('lip_pool2d_gated', emu, args, rtol=1e-8, atol=1e-9)


@settings(max_examples=100)
@given(st.sampled_from([1, 2, 3]), st.data())
def test_soft_pool(emu, nd, data):
    shape, k, s, p, ceil = data.draw(geometry(nd=nd, max_kernel=5 if nd == 3 else 7,
                                              max_extra=4 if nd == 3 else 8))
    seed = data.draw(st.integers(0, 2**16))
    assert_emulation_matches_cpu(f'soft_pool{nd}d', emu, (seeded_randn(shape, seed, 2.0), k, s, p, ceil))


@settings(max_examples=150)
@given(geometry(nd=2), st.integers(0, 2**16),
       st.sampled_from(['scalar', 'channel', 'sample_channel', 'sample', 'window']),
       st.sampled_from(['maxent_pool2d', 'gauss_pool2d']))
def test_per_window_param_ops(emu, geom, seed, layout, name):
    """Max-Ent's λ and Gaussian's η in every accepted layout (their gradients reduced to it)."""
    shape, k, s, p, ceil = geom
    lay = per_window_layouts(shape[0], shape[1], out_size(shape, k, s, p, ceil))[layout]
    param = torch.sigmoid(seeded_randn(lay, seed + 1)) + (0.0 if name == 'maxent_pool2d' else 0.1)
    assert_emulation_matches_cpu(name, emu, (seeded_randn(shape, seed), param, k, s, p, ceil))


@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
def test_half_types_read_and_write_their_dtype_and_accumulate_in_float32(emu, dtype):
    """The CUDA dispatch's half types: result in the input dtype, equal to the float32 kernels
    on the same (rounded) inputs up to the output's rounding."""
    shape, geom = (2, 3, 13, 17), ([3, 3], [2, 2], [1, 1], False)
    x = seeded_randn(shape, 0, 3.0, dtype)
    cases = {'lip_pool2d': (x, seeded_randn(shape, 1, 4.0, dtype)),
             'soft_pool2d': (x,),
             'maxent_pool2d': (x, torch.full((1,), 0.7, dtype=dtype)),
             'gauss_pool2d': (x, torch.full((1, 3, 1, 1), 0.5, dtype=dtype))}
    eps = torch.finfo(dtype).eps
    for name, args in cases.items():
        y = getattr(emu, name)(*args, *geom)
        y32 = getattr(torch.ops.lip_det, name)(*(a.float() for a in args), *geom)
        assert y.dtype == dtype and torch.isfinite(y).all(), name
        torch.testing.assert_close(y.float(), y32, rtol=2 * eps, atol=2 * eps * y32.abs().max().item(),
                                   msg=lambda m: f'{name} {dtype}: {m}')
        g = torch.ones_like(y)
        grads = getattr(emu, name + '_backward')(g, *args, *geom)
        grads = grads if isinstance(grads, (tuple, list)) else (grads,)
        for a, gr in zip(args, grads):
            assert gr.dtype == a.dtype and gr.shape == a.shape and torch.isfinite(gr).all(), name

