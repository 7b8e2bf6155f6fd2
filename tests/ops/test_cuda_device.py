"""The fused CUDA kernels on a real GPU, for every op of ``torch.ops.lip_det``.

The rest of the suite runs the CUDA kernels only through host emulation (test_cuda_emulation.py);
these tests run them on the device: against the plain-PyTorch reference on the GPU (float64
tight, float32 against float64 with the float32 reference's own error allowed, float16/bfloat16
against float32 on the same rounded inputs), against the CPU kernels, under gradcheck, opcheck and
torch.compile(fullgraph=True), with logits of ±1e4, with non-contiguous inputs, a side stream and
grids too large for one pass.

Every test but ``test_table_lists_every_op`` skips unless ``torch.cuda.is_available()`` and
lip_det._C was built with CUDA kernels; tools/gpu_check.sh builds it and runs this file (< 3 min
on an H200, mostly compilation and hypothesis). ``LIP_DET_CUDA_EXAMPLES`` (a factor, default 1)
scales the hypothesis example counts. ``LIP_DET_CUDA_TESTS_ON_CPU=1`` runs the same tests on CPU
tensors (those that need a device, the stream and grid tests, skip): a dry run of this file's own
inputs and tolerances against the CPU kernels, which share the kernels' math; it tests no CUDA.

Adding an op is one ``OpCase`` in ``OPS`` (``test_table_lists_every_op`` fails until every
forward op of ``torch.ops.lip_det`` has one). ``op`` names the compiled op, ``torch.ops.lip_det.<op>``,
with a ``<op>_backward`` that takes the upstream gradient first; the fused function is
``lip_det.ops.fused.<op>`` if that exists, else the compiled op itself; the plain-PyTorch one is
``reference=`` or ``lip_det.ops.reference.<op>``. All are called as
``f(*tensors, *scalars, kernel_size, stride, padding, ceil_mode)``.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Callable, List, Optional, Sequence, Tuple

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lip_det.ops import _ext, reference
from lip_det.ops.ada_pool import reference_ada_pool

from .fused_helpers import fused, out_size, seeded_randn
from .strategies import geometry

F64, F32 = torch.float64, torch.float32
HALF_TYPES = (torch.float16, torch.bfloat16)

# (tensors as float64 on the CPU, scalars between the tensors and the geometry)
Made = Tuple[List[torch.Tensor], tuple]
# make(input shape, output spatial size, seed, scale) -> Made. `scale` is the magnitude of the
# op's exponent (the logit, λ·x, or x itself); 1e4 in the large-logit test.
Builder = Callable[[Tuple[int, ...], Tuple[int, ...], int, float], Made]


@dataclass(frozen=True)
class OpCase:
    id: str                 # test id
    op: str                 # the compiled op: torch.ops.lip_det.<op> and <op>_backward
    nd: int                 # spatial dimensions
    make: Builder
    max_kernel: int = 7     # fuzzed geometry bounds (strategies.geometry)
    max_extra: int = 8
    half: bool = True       # has float16/bfloat16 kernels
    tol: float = 1.0        # factor on the float64 tolerances (the fused norm sums differently)
    big: float = 1e4        # `scale` of the large-logit test
    reference: Optional[Callable] = None  # default: lip_det.ops.reference.<op>


# ----------------------------------------------------------------------------- builders
def _lip(shape, out, seed, scale) -> Made:
    return [seeded_randn(shape, seed), seeded_randn(shape, seed + 1, scale)], ()


def _lip_gated(shape, out, seed, scale) -> Made:
    c = shape[1:2]
    x, pre = seeded_randn(shape, seed), seeded_randn(shape, seed + 1) + 1.5
    # The norm's output does not depend on pre's scale; the norm weight sets how hard the gate is
    # driven (saturated at 1e4). Both (eps, coeff): LIP-ResNet's and a soft one.
    eps_coeff = ((1e-5, 12.0), (0.5, 1.0))[seed % 2]
    return [x, pre, seeded_randn(c, seed + 2, scale), seeded_randn(c, seed + 3)], eps_coeff


def _soft(shape, out, seed, scale) -> Made:
    return [seeded_randn(shape, seed, scale)], ()


PLANE_LAYOUTS = ('scalar', 'channel', 'sample_channel', 'sample')


def _param_layouts(n: int, c: int, out: Sequence[int]) -> dict:
    """per_window_layouts for any number of spatial dimensions (the same for 2-D)."""
    ones = (1,) * len(out)
    return {'scalar': (1,), 'channel': (1, c) + ones, 'sample_channel': (n, c) + ones,
            'sample': (n, 1) + ones, 'window': (n, c) + tuple(out)}


def _with_param(per_output: bool, scaled: str) -> Builder:
    """x plus a parameter tensor (λ, η, β) of one of the per-plane layouts (picked by the seed)
    or one per output; `scaled` ('x' or 'param') says which of the two carries the scale."""
    def make(shape, out, seed, scale) -> Made:
        layouts = _param_layouts(shape[0], shape[1], out)
        layout = 'window' if per_output else PLANE_LAYOUTS[seed % len(PLANE_LAYOUTS)]
        x = seeded_randn(shape, seed, scale if scaled == 'x' else 1.0)
        param = seeded_randn(layouts[layout], seed + 1, scale if scaled == 'param' else 1.0)
        return [x, param], ()
    return make


OPS: List[OpCase] = [
    OpCase('lip_pool2d', 'lip_pool2d', 2, _lip),
    OpCase('lip_pool2d_gated', 'lip_pool2d_gated', 2, _lip_gated, tol=10.0),
    OpCase('soft_pool1d', 'soft_pool1d', 1, _soft),
    OpCase('soft_pool2d', 'soft_pool2d', 2, _soft),
    OpCase('soft_pool3d', 'soft_pool3d', 3, _soft, max_kernel=5, max_extra=4),
    # Max-Ent's logit is λ·x: λ carries the scale.
    OpCase('maxent_pool2d[plane]', 'maxent_pool2d', 2, _with_param(False, 'param')),
    OpCase('maxent_pool2d[output]', 'maxent_pool2d', 2, _with_param(True, 'param')),
    # Gaussian pooling has no exponent: η carries the scale. A scale on x would only measure
    # float32's cancellation in E[x²] − μ² (a 1-pixel window's variance is 0 in one summation
    # order and 1e-4 for x ~ 30 in another); 1e3 keeps μ + η·σ inside float16.
    OpCase('gauss_pool2d[plane]', 'gauss_pool2d', 2, _with_param(False, 'param'), big=1e3),
    OpCase('gauss_pool2d[output]', 'gauss_pool2d', 2, _with_param(True, 'param'), big=1e3),
    # adaPool's β is unbounded here, so outputs reach several times x: big=1e3 keeps the float16
    # large-input check inside float16's range.
    OpCase('ada_pool1d[plane]', 'ada_pool1d', 1, _with_param(False, 'x'), big=1e3,
           reference=reference_ada_pool),
    OpCase('ada_pool2d[plane]', 'ada_pool2d', 2, _with_param(False, 'x'), big=1e3,
           reference=reference_ada_pool),
    OpCase('ada_pool2d[output]', 'ada_pool2d', 2, _with_param(True, 'x'), big=1e3,
           reference=reference_ada_pool),
    OpCase('ada_pool3d[output]', 'ada_pool3d', 3, _with_param(True, 'x'), max_kernel=5,
           max_extra=4, big=1e3, reference=reference_ada_pool),
]

# One geometry per dimensionality for the non-fuzzed tests: uneven kernel, stride and padding,
# ceil_mode windows that run past the input.
FIXED = {1: ((2, 3, 9), (3,), (2,), (1,), True),
         2: ((2, 3, 7, 8), (2, 3), (1, 2), (1, 0), True),
         3: ((1, 2, 4, 5, 6), (2, 2, 3), (2, 1, 2), (1, 0, 1), True)}


# ----------------------------------------------------------------------------- skip logic
def _cuda_skip_reason() -> Optional[str]:
    if not torch.cuda.is_available():
        return 'no CUDA device (torch.cuda.is_available() is False)'
    if not _ext.available():
        return f'lip_det._C not built: {_ext.load_error()}'
    try:
        has_cuda = torch._C._dispatch_has_kernel_for_dispatch_key('lip_det::lip_pool2d', 'CUDA')
    except RuntimeError:
        has_cuda = False
    if not has_cuda:
        return 'lip_det._C has no CUDA kernels (build it with FORCE_CUDA=1, e.g. tools/gpu_check.sh)'
    return None


ON_CPU = os.environ.get('LIP_DET_CUDA_TESTS_ON_CPU') == '1'
DEV = 'cpu' if ON_CPU else 'cuda'
GPU_SKIP_REASON = _cuda_skip_reason()
SKIP_REASON = (None if _ext.available() else f'lip_det._C not built: {_ext.load_error()}') if ON_CPU \
    else GPU_SKIP_REASON
needs_cuda = pytest.mark.skipif(SKIP_REASON is not None, reason=SKIP_REASON or '')
# Tests that only make sense on a device, also in the CPU dry run.
needs_gpu = pytest.mark.skipif(GPU_SKIP_REASON is not None, reason=GPU_SKIP_REASON or '')
each_op = pytest.mark.parametrize('case', OPS, ids=[c.id for c in OPS])


def _examples(n: int) -> int:
    return max(1, math.ceil(n * float(os.environ.get('LIP_DET_CUDA_EXAMPLES', '1'))))


def _fuzz(n: int):
    # No deadline: the first example of a test pays for CUDA context and kernel loading.
    return settings(max_examples=_examples(n), deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


# ----------------------------------------------------------------------------- helpers
def _draw(data, case: OpCase, scales=(0.1, 1.0, 30.0), small: bool = False) -> Tuple[Made, tuple]:
    """Draw a geometry, seed and scale; return the case's inputs and the geometry args."""
    kw = dict(max_kernel=min(case.max_kernel, 4), max_extra=3) if small else \
        dict(max_kernel=case.max_kernel, max_extra=case.max_extra)
    shape, k, s, p, ceil = data.draw(geometry(nd=case.nd, **kw), label='shape, kernel, stride, padding, ceil')
    seed = data.draw(st.integers(0, 2**16), label='seed')
    scale = data.draw(st.sampled_from(scales), label='scale')
    return case.make(shape, out_size(shape, k, s, p, ceil), seed, scale), (k, s, p, ceil)


def _fixed(case: OpCase, scale: float = 1.0, seed: int = 0) -> Tuple[Made, tuple]:
    shape, k, s, p, ceil = FIXED[case.nd]
    return case.make(shape, out_size(shape, k, s, p, ceil), seed, scale), (k, s, p, ceil)


def _on(tensors: Sequence[torch.Tensor], dtype: torch.dtype, device=DEV) -> List[torch.Tensor]:
    return [t.to(device=device, dtype=dtype) for t in tensors]


def _fused_fn(case: OpCase) -> Callable:
    return getattr(fused(), case.op, None) or getattr(torch.ops.lip_det, case.op)


def _reference_fn(case: OpCase) -> Callable:
    fn = case.reference or getattr(reference, case.op, None)
    assert fn is not None, f'{case.id}: no lip_det.ops.reference.{case.op}; give the OpCase a reference='
    return fn


def _run(fn: Callable, tensors: Sequence[torch.Tensor], rest: tuple,
         grad: Optional[torch.Tensor] = None):
    """Output and gradients w.r.t. every tensor for upstream `grad` (seeded if None); and `grad`."""
    leaves = [t.detach().clone().requires_grad_(True) for t in tensors]
    out = fn(*leaves, *rest)
    if grad is None:
        grad = seeded_randn(out.shape, 99).to(device=out.device, dtype=out.dtype)
    grads = torch.autograd.grad(out, leaves, grad)
    return out.detach(), [g.detach() for g in grads], grad


def _names(n: int) -> List[str]:
    return ['output'] + [f'grad {i}' for i in range(n)]


def _assert_close(actual, expected, rtol, atol, what):
    assert actual.shape == expected.shape, f'{what}: shape {tuple(actual.shape)} != {tuple(expected.shape)}'
    assert actual.dtype == expected.dtype, f'{what}: dtype {actual.dtype} != {expected.dtype}'
    torch.testing.assert_close(actual.cpu(), expected.cpu(), rtol=rtol, atol=atol,
                               msg=lambda m: f'{what}: {m}')


def _assert_no_worse(actual, ref64, peer, rtol, atol, what):
    """`actual`'s error against `ref64` (float64; float32 for half types) is at most twice
    `peer`'s (a computation in the same precision on the same inputs) plus rtol/atol: rounding
    may differ, accuracy may not."""
    assert actual.shape == ref64.shape, f'{what}: shape {tuple(actual.shape)} != {tuple(ref64.shape)}'
    actual, ref64, peer = actual.double().cpu(), ref64.cpu(), peer.double().cpu()
    err = (actual - ref64).abs()
    allowed = atol + rtol * ref64.abs() + 2 * (peer - ref64).abs()
    bad = ~(err <= allowed)  # NaN is bad too
    assert not bad.any(), (f'{what}: {int(bad.sum())} of {bad.numel()} elements off, worst error '
                           f'{err[bad].max().item():.3g} where {allowed[bad][err[bad].argmax()].item():.3g} '
                           f'was allowed')


def _compare_32(case, label, fused32, ref32, ref64):
    """fused float32 (output, grads) vs the float64 reference, the float32 one's error allowed."""
    (yf, gf), (yr, gr), (y64, g64) = fused32, ref32, ref64
    _assert_no_worse(yf, y64, yr, 1e-5, 1e-5, f'{case.id} {label} output')
    for i, (a, b, c) in enumerate(zip(gf, gr, g64)):
        # λ/η gradients sum over many windows: the tolerance scales with their magnitude.
        _assert_no_worse(a, c, b, 1e-4, 1e-4 * max(1.0, c.abs().max().item()), f'{case.id} {label} grad {i}')


# ----------------------------------------------------------------------------- the table itself
def test_table_lists_every_op():
    """Every compiled op has an entry, so a new op cannot skip the GPU checks by being
    forgotten; every entry resolves to a compiled op, a backward and a reference."""
    if not _ext.available():
        pytest.skip(f'lip_det._C not built: {_ext.load_error()}')
    # The op table lists every compiled pooling op (tests/ops/test_op_table.py checks that).
    from lip_det.ops.table import OPS as TABLE
    names = {n.split('::', 1)[1] for n in torch._C._dispatch_get_all_op_names() if n.startswith('lip_det::')}
    forward = set(TABLE)
    missing = forward - {c.op for c in OPS}
    assert not missing, f'add an OpCase to OPS in {__file__} for: {sorted(missing)}'
    assert len({c.id for c in OPS}) == len(OPS), 'OpCase ids must be unique'
    for case in OPS:
        assert case.op in forward and f'{case.op}_backward' in names, f'{case.id}: no torch.ops.lip_det.{case.op}'
        assert callable(_fused_fn(case)) and callable(_reference_fn(case))


# ----------------------------------------------------------------------------- correctness
@needs_cuda
@each_op
@_fuzz(30)
@given(data=st.data())
def test_matches_reference_on_gpu(case, data):
    """Fused CUDA == the definition (lip_det.ops.reference) on the GPU, output and every gradient: float64 to 1e-9,
    float32 no worse than twice the float32 reference's error against float64."""
    (tensors, scalars), geom = _draw(data, case)
    rest = scalars + geom
    dtype = data.draw(st.sampled_from([F64, F32]), label='dtype')
    t = _on(tensors, dtype)
    y, grads, g = _run(_fused_fn(case), t, rest)
    yr, grads_r, _ = _run(_reference_fn(case), t, rest, g)
    if dtype == F64:
        for what, a, b in zip(_names(len(grads)), [y] + grads, [yr] + grads_r):
            _assert_close(a, b, 1e-9 * case.tol, 1e-10 * case.tol, f'{case.id} float64 {what}')
    else:
        y64, grads_64, _ = _run(_reference_fn(case), [x.double() for x in t], rest, g.double())
        _compare_32(case, 'float32', (y, grads), (yr, grads_r), (y64, grads_64))


@needs_cuda
@each_op
@_fuzz(20)
@given(data=st.data())
def test_matches_cpu_kernels(case, data):
    """Fused CUDA == fused CPU on the same inputs: float64 to 1e-9 (the two backends shift the
    logits differently, csrc/README.md), float32 no worse than twice the CPU kernels' error."""
    (tensors, scalars), geom = _draw(data, case)
    rest = scalars + geom
    dtype = data.draw(st.sampled_from([F64, F32]), label='dtype')
    op = _fused_fn(case)
    y, grads, g = _run(op, _on(tensors, dtype), rest)
    yc, grads_c, _ = _run(op, _on(tensors, dtype, 'cpu'), rest, g.cpu())
    assert y.device.type == DEV and all(x.device.type == DEV for x in grads)
    if dtype == F64:
        for what, a, b in zip(_names(len(grads)), [y] + grads, [yc] + grads_c):
            _assert_close(a, b, 1e-9 * case.tol, 1e-10 * case.tol, f'{case.id} CUDA vs CPU {what}')
    else:
        t64 = _on(tensors, dtype, 'cpu')
        y64, grads_64, _ = _run(_reference_fn(case), [x.double() for x in t64], rest, g.cpu().double())
        _compare_32(case, 'float32 CUDA vs CPU', (y, grads), (yc, grads_c), (y64, grads_64))


@needs_cuda
@each_op
@_fuzz(20)
@given(data=st.data())
def test_half_types_match_float32_reference(case, data):
    """float16/bfloat16 kernels read and write their dtype and accumulate in float32: equal to the
    float32 reference on the same rounded inputs up to the result's own rounding, or else no
    worse than twice the reference run in the half type (which rounds intermediates, e.g. the
    gated op's logit, whose gradient then loses digits in the norm's backward)."""
    if not case.half:
        pytest.skip(f'{case.op} has no half-type kernels')
    (tensors, scalars), geom = _draw(data, case)
    rest = scalars + geom
    dtype = data.draw(st.sampled_from(HALF_TYPES), label='dtype')
    t = _on(tensors, dtype)
    y, grads, g = _run(_fused_fn(case), t, rest)
    yr, grads_r, _ = _run(_reference_fn(case), [x.float() for x in t], rest, g.float())
    yh, grads_h, _ = _run(_reference_fn(case), t, rest, g)
    eps = torch.finfo(dtype).eps
    for what, a, b, h, inp in zip(_names(len(grads)), [y] + grads, [yr] + grads_r, [yh] + grads_h,
                                  [None] + t):
        assert a.dtype == dtype, f'{case.id} {dtype} {what}: dtype {a.dtype}'
        if inp is not None:
            assert a.shape == inp.shape, f'{case.id} {dtype} {what}: shape {tuple(a.shape)}'
        assert torch.isfinite(a).all(), f'{case.id} {dtype} {what}: not finite'
        # Half an ulp of the largest value, and float32 noise: a gradient that is 0 in exact
        # arithmetic (1x1 windows) comes out as ~1e-8 from sums in one order and 0 in another.
        atol = 0.5 * eps * b.abs().max().item() + 1e-5
        _assert_no_worse(a, b.double(), h, 2 * eps, atol, f'{case.id} {dtype} {what}')


@needs_cuda
@each_op
@_fuzz(6)
@given(data=st.data())
def test_gradcheck_float64(case, data):
    """Finite differences against the CUDA backward kernels, every differentiable input."""
    (tensors, scalars), geom = _draw(data, case, scales=(1.0,), small=True)
    leaves = [t.requires_grad_(True) for t in _on(tensors, F64)]
    op = _fused_fn(case)
    assert torch.autograd.gradcheck(lambda *ts: op(*ts, *scalars, *geom), leaves)


@needs_cuda
@each_op
@pytest.mark.parametrize('dtype', [F64, F32] + list(HALF_TYPES), ids=str)
def test_large_logits_stay_finite(case, dtype):
    """Logits of ±1e4 (λ·x, x for SoftPool; a saturated gate): the window-max shift keeps every
    output and gradient finite and, in float32/64, as accurate as the reference."""
    if dtype in HALF_TYPES and not case.half:
        pytest.skip(f'{case.op} has no half-type kernels')
    (tensors, scalars), geom = _fixed(case, scale=case.big, seed=3)
    rest = scalars + geom
    t = _on(tensors, dtype)
    y, grads, g = _run(_fused_fn(case), t, rest)
    assert torch.isfinite(y).all(), f'{case.id} {dtype}: output not finite'
    if dtype in HALF_TYPES:
        return  # gradients of 1e4-scale inputs may overflow float16 legitimately
    for i, gr in enumerate(grads):
        assert torch.isfinite(gr).all(), f'{case.id} {dtype}: grad {i} not finite'
    yr, grads_r, _ = _run(_reference_fn(case), t, rest, g)
    if dtype == F64:
        for what, a, b in zip(_names(len(grads)), [y] + grads, [yr] + grads_r):
            _assert_close(a, b, 1e-9 * case.tol, 1e-10 * case.tol * max(1.0, b.abs().max().item()),
                          f'{case.id} {what}')
    else:
        y64, grads_64, _ = _run(_reference_fn(case), [x.double() for x in t], rest, g.double())
        _compare_32(case, 'float32 large logits', (y, grads), (yr, grads_r), (y64, grads_64))


@needs_cuda
@each_op
def test_layouts_streams_and_determinism(case):
    """Non-contiguous inputs equal contiguous ones, a side stream equals the default stream, and
    two runs agree bit for bit (the backward gathers; it has no atomics)."""
    (tensors, scalars), geom = _fixed(case, seed=5)
    rest = scalars + geom
    op = _fused_fn(case)
    t = _on(tensors, F32)
    y, grads, g = _run(op, t, rest)
    # Every other element of a stacked tensor: doubled strides, storage offset 0 and 1.
    strided = [torch.stack([x, x], -1)[..., 0] for x in t]
    assert not any(x.is_contiguous() for x in strided if x.numel() > 1)
    runs = [('non-contiguous', _run(op, strided, rest, g)), ('repeated', _run(op, t, rest, g))]
    if DEV == 'cuda':
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            runs.append(('side stream', _run(op, t, rest, g)))
        torch.cuda.current_stream().wait_stream(side)
        torch.cuda.synchronize()
    for label, (y2, grads2, _) in runs:
        for what, a, b in zip(_names(len(grads)), [y] + grads, [y2] + grads2):
            assert torch.equal(a, b), f'{case.id} {label} {what}: differs from the first run'


@needs_gpu
def test_grid_stride_loops_cover_huge_tensors():
    """More outputs and pixels than one launch's grid (2^20 blocks of 256 threads): the grid-stride
    loops must reach every element. LIP with logit 0 is average pooling over the valid pixels;
    SoftPool with a 1x1 window is the identity with gradient 1."""
    free, _ = torch.cuda.mem_get_info()
    if free < 24 * 2**30:
        pytest.skip(f'needs ~24 GiB free GPU memory, {free / 2**30:.1f} GiB free')
    shape = (1, 2, 12000, 12000)  # 2.9e8 > 2^28 threads per launch
    assert math.prod(shape) > 2**28
    x = torch.randn(shape, device=DEV, generator=torch.Generator(DEV).manual_seed(0))
    xs = x.clone().requires_grad_(True)
    y = fused().soft_pool2d(xs, (1, 1), (1, 1), (0, 0), False)
    # An output no thread reached would hold whatever at::empty left there.
    torch.testing.assert_close(y, x, rtol=1e-6, atol=0)
    (gx,) = torch.autograd.grad(y, xs, torch.ones_like(y))
    torch.testing.assert_close(gx, torch.ones_like(gx), rtol=0, atol=1e-6)
    del y, gx, xs
    xl = x.clone().requires_grad_(True)
    logit = torch.zeros_like(x, requires_grad=True)
    y = fused().lip_pool2d(xl, logit, (3, 3), (1, 1), (1, 1), False)
    xa = x.clone().requires_grad_(True)
    avg = torch.nn.functional.avg_pool2d(xa, 3, 1, 1, count_include_pad=False)
    torch.testing.assert_close(y, avg, rtol=1e-5, atol=1e-6)
    g = torch.ones_like(y)
    gx, glogit = torch.autograd.grad(y, (xl, logit), g)
    (ga,) = torch.autograd.grad(avg, xa, g)
    torch.testing.assert_close(gx, ga, rtol=1e-5, atol=1e-6)
    # d y / d logit_i = w_i (x_i - y): summed over a pixel's windows, finite and not all zero.
    assert torch.isfinite(glogit).all() and glogit.abs().sum() > 0


# ----------------------------------------------------------------------------- PyTorch machinery
@needs_cuda
@each_op
def test_opcheck(case):
    """torch.library.opcheck of the raw op and its backward on CUDA tensors: schema, fake kernel,
    autograd registration and AOT dispatch agree with the CUDA kernel."""
    (tensors, scalars), (k, s, p, ceil) = _fixed(case, seed=7)
    geom = (list(k), list(s), list(p), ceil)
    t = _on(tensors, F32)
    forward = getattr(torch.ops.lip_det, case.op)
    torch.library.opcheck(forward, (*(x.clone().requires_grad_(True) for x in t), *scalars, *geom))
    y = forward(*t, *scalars, *geom)
    g = seeded_randn(y.shape, 8, dtype=F32).to(DEV)
    torch.library.opcheck(getattr(torch.ops.lip_det, f'{case.op}_backward'), (g, *t, *scalars, *geom))


def _compiled_and_eager(cases: Sequence[OpCase], backend: str) -> list:
    """Compile (fullgraph) one function that calls every case's op with ops around it; return
    (what, compiled, eager, rtol, atol) for its outputs and every input gradient."""
    made = [_fixed(case, seed=11 + i) for i, case in enumerate(cases)]
    inputs = [_on(tensors, F32) for (tensors, _), _ in made]
    ops = [_fused_fn(case) for case in cases]

    def f(*groups):
        # x·2 before and tanh after: the op sits between ops the compiler may fuse.
        return tuple(torch.tanh(op(ts[0] * 2.0, *ts[1:], *scalars, *geom))
                     for op, ts, ((_, scalars), geom) in zip(ops, groups, made))

    def outputs_and_grads(fn):
        leaves = [[x.detach().clone().requires_grad_(True) for x in ts] for ts in inputs]
        outs = fn(*leaves)
        flat = [x for ts in leaves for x in ts]
        loss = sum((o * seeded_randn(o.shape, 13, dtype=F32).to(DEV)).sum() for o in outs)
        return outs, torch.autograd.grad(loss, flat)

    torch._dynamo.reset()
    eager = outputs_and_grads(f)
    compiled = outputs_and_grads(torch.compile(f, fullgraph=True, backend=backend))
    owner = [case.id for case, ts in zip(cases, inputs) for _ in ts]
    pairs = [(f'{case.id} {backend} output', a, b, 1e-5, 1e-5)
             for case, a, b in zip(cases, compiled[0], eager[0])]
    pairs += [(f'{owner[i]} {backend} input grad', a, b, 1e-4, 1e-5 * max(1.0, b.abs().max().item()))
              for i, (a, b) in enumerate(zip(compiled[1], eager[1]))]
    return pairs


@needs_cuda
@each_op
def test_torch_compile_fullgraph_aot_eager(case):
    pairs = _compiled_and_eager([case], 'aot_eager')
    assert len(pairs) == 1 + len(_fixed(case, seed=11)[0][0])  # the output and every input's grad
    for what, compiled, eager, rtol, atol in pairs:
        assert compiled.shape == eager.shape and compiled.dtype == eager.dtype, what
        torch.testing.assert_close(compiled.cpu(), eager.cpu(), rtol=rtol, atol=atol,
                                   msg=lambda m, what=what: f'{what}: {m}')


@needs_cuda
def test_torch_compile_fullgraph_inductor_all_ops():
    """Inductor (Triton code around the opaque ops): one graph holding every op, compiled once."""
    from torch.utils._triton import has_triton
    if DEV == 'cuda' and not has_triton():
        pytest.skip('inductor on CUDA needs Triton, which this torch lacks')
    pairs = _compiled_and_eager(OPS, 'inductor')
    assert len(pairs) >= 2 * len(OPS)  # every op's output and at least its x gradient
    for what, compiled, eager, rtol, atol in pairs:
        assert compiled.shape == eager.shape and compiled.dtype == eager.dtype, what
        torch.testing.assert_close(compiled.cpu(), eager.cpu(), rtol=rtol, atol=atol,
                                   msg=lambda m, what=what: f'{what}: {m}')
