"""The fused ops under the PyTorch machinery: opcheck, gradcheck, torch.compile, half types,
memory layouts, the C++ argument checks, determinism and the dispatcher."""
import pytest
import torch

from .fused_helpers import fused, needs_ext, out_size, per_window_layouts

pytestmark = needs_ext
F64 = torch.float64
GEOMS = [((3, 3), (2, 2), (1, 1), False), ((2, 3), (1, 2), (1, 0), True), ((5, 5), (3, 3), (2, 2), True)]


def _rand(*shape, dtype=torch.float32, seed=0, scale=1.0):
    gen = torch.Generator().manual_seed(seed)
    return (torch.randn(shape, generator=gen, dtype=F64) * scale).to(dtype)


def test_extension_is_built():
    """CI builds the extension: failing here (not skipping) catches a broken build."""
    from lip_det.ops import _ext
    assert _ext.available(), _ext.load_error()
    assert _ext.load_error() is None


def _op_cases(dtype=torch.float32, requires_grad=True):
    """(op, args) for every forward op and every λ/η layout, plus the backward ops."""
    k, s, p, ceil = [2, 3], [1, 2], [1, 0], True
    shape = (2, 3, 7, 8)
    out = out_size(shape, k, s, p, ceil)
    x = _rand(*shape, dtype=dtype, seed=1)
    g = _rand(2, 3, *out, dtype=dtype, seed=2)
    ops = torch.ops.lip_det
    gate = (_rand(*shape, dtype=dtype, seed=20), _rand(3, dtype=dtype, seed=21),
            _rand(3, dtype=dtype, seed=22))
    cases = [(ops.lip_pool2d, (x, _rand(*shape, dtype=dtype, seed=3), k, s, p, ceil)),
             (ops.lip_pool2d_gated, (x, *gate, 1e-5, 12.0, k, s, p, ceil)),
             (ops.soft_pool1d, (_rand(2, 3, 9, dtype=dtype), [3], [2], [1], ceil)),
             (ops.soft_pool2d, (x, k, s, p, ceil)),
             (ops.soft_pool3d, (_rand(1, 2, 4, 5, 6, dtype=dtype), [2, 2, 3], [2, 1, 2], [1, 0, 1], ceil))]
    for shp in per_window_layouts(2, 3, out).values():
        lam = _rand(*shp, dtype=dtype, seed=4)
        cases += [(ops.maxent_pool2d, (x, lam, k, s, p, ceil)), (ops.gauss_pool2d, (x, lam, k, s, p, ceil))]
    fwd = [(op, tuple(a.clone().requires_grad_(requires_grad) if isinstance(a, torch.Tensor) else a
                      for a in args)) for op, args in cases]
    bwd = [(ops.lip_pool2d_backward, (g, x, cases[0][1][1], k, s, p, ceil)),
           (ops.lip_pool2d_gated_backward, (g, x, *gate, 1e-5, 12.0, k, s, p, ceil)),
           (ops.soft_pool2d_backward, (g, x, k, s, p, ceil)),
           (ops.maxent_pool2d_backward, (g, x, _rand(2, 3, 1, 1, dtype=dtype), k, s, p, ceil)),
           (ops.gauss_pool2d_backward, (g, x, _rand(1, dtype=dtype), k, s, p, ceil))]
    return fwd + bwd


@pytest.mark.slow
def test_opcheck_every_op():
    for op, args in _op_cases():
        torch.library.opcheck(op, args)


@pytest.mark.parametrize('geom', GEOMS)
def test_gradcheck_float64(geom):
    k, s, p, ceil = geom
    f = fused()
    x = _rand(1, 2, 7, 8, dtype=F64, seed=5).requires_grad_()
    l = _rand(1, 2, 7, 8, dtype=F64, seed=6).requires_grad_()
    assert torch.autograd.gradcheck(lambda a, b: f.lip_pool2d(a, b, k, s, p, ceil), (x, l))
    weight = _rand(2, dtype=F64, seed=23).requires_grad_()
    bias = _rand(2, dtype=F64, seed=24).requires_grad_()
    assert torch.autograd.gradcheck(
        lambda a, b, c, d: f.lip_pool2d_gated(a, b, c, d, 1e-5, 12.0, k, s, p, ceil), (x, l, weight, bias))
    assert torch.autograd.gradcheck(lambda a: f.soft_pool2d(a, k, s, p, ceil), (x,))
    assert torch.autograd.gradcheck(lambda a: f.soft_pool1d(a, k[:1], s[:1], p[:1], ceil),
                                    (_rand(2, 2, 9, dtype=F64).requires_grad_(),))
    assert torch.autograd.gradcheck(lambda a: f.soft_pool3d(a, k + (2,), s + (1,), p + (1,), ceil),
                                    (_rand(1, 1, 5, 5, 4, dtype=F64).requires_grad_(),))
    out = out_size(x.shape, k, s, p, ceil)
    for shp in per_window_layouts(1, 2, out).values():
        lam = (_rand(*shp, dtype=F64, seed=7) * 0.5 + 1).requires_grad_()
        assert torch.autograd.gradcheck(lambda a, b: f.maxent_pool2d(a, b, k, s, p, ceil), (x, lam))
        assert torch.autograd.gradcheck(lambda a, b: f.gauss_pool2d(a, b, k, s, p, ceil), (x, lam))


class _Tiny(torch.nn.Module):
    """A module using every fused op through the public (validating, dispatching) API."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)
        self.logit = torch.nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x):
        from lip_det import ops
        h = self.conv(x)
        a = ops.lip_pool2d(h, torch.sigmoid(self.logit(h)) * 12.0, 3, 2, 1)
        a = a + ops.lip_pool2d_gated(h, self.logit(h), self.logit.bias, self.logit.bias, 3, 2, 1)
        b = ops.soft_pool2d(h, 2)
        lam = torch.sigmoid(h.mean((2, 3), keepdim=True))
        c = ops.maxent_pool2d(h, lam, 2)
        d = ops.gauss_pool2d(h, lam, 2)
        e = ops.soft_pool1d(h.flatten(2), 4)
        return a.sum((2, 3)) + b.sum((2, 3)) + c.sum((2, 3)) + d.mean((2, 3)) + e.sum(2)


@pytest.mark.slow
def test_torch_compile_fullgraph_matches_eager(monkeypatch):
    monkeypatch.setenv('LIP_DET_OPS', 'fused')
    torch._dynamo.reset()
    torch.manual_seed(0)
    model = _Tiny().double()
    x = _rand(2, 3, 12, 13, dtype=F64)
    eager = model(x)
    g_eager = torch.autograd.grad(eager.sum(), list(model.parameters()))
    compiled = torch.compile(model, fullgraph=True, backend='aot_eager')
    out = compiled(x)
    g_comp = torch.autograd.grad(out.sum(), list(model.parameters()))
    torch.testing.assert_close(out, eager)
    for a, b in zip(g_comp, g_eager):
        torch.testing.assert_close(a, b)
    # Inductor too (the ops stay opaque calls inside generated code).
    ind = torch.compile(model, fullgraph=True)
    torch.testing.assert_close(ind(x), eager)


@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
def test_half_types_are_finite_and_close_to_float32(dtype):
    """SoftGate-range logits (up to 12) would overflow fp16 exp without the max subtraction."""
    f = fused()
    geom = ((3, 3), (2, 2), (1, 1), False)
    x = _rand(2, 4, 15, 17, seed=8).to(dtype)
    logit = (_rand(2, 4, 15, 17, seed=9).sigmoid() * 12).to(dtype)
    lam = _rand(2, 4, 1, 1, seed=10).sigmoid().to(dtype)
    tol = dict(rtol=2e-2, atol=2e-2) if dtype == torch.bfloat16 else dict(rtol=2e-3, atol=2e-3)
    nc = _rand(4, seed=25).to(dtype)
    cases = [('lip_pool2d', [x, logit]), ('soft_pool2d', [x]), ('maxent_pool2d', [x, lam]),
             ('gauss_pool2d', [x, lam]), ('lip_pool2d_gated', [x, logit, nc, nc])]
    for name, args in cases:
        half_args = [a.clone().requires_grad_() for a in args]
        ref_args = [a.float().requires_grad_() for a in args]
        g_args = ((1e-5, 12.0) if name == 'lip_pool2d_gated' else ()) + geom
        y = getattr(f, name)(*half_args, *g_args)
        y32 = getattr(f, name)(*ref_args, *g_args)
        assert y.dtype == dtype and torch.isfinite(y).all(), name
        torch.testing.assert_close(y.float(), y32, **tol)
        g = torch.randn_like(y32)
        gh = torch.autograd.grad(y, half_args, g.to(dtype))
        g32 = torch.autograd.grad(y32, ref_args, g)
        for a, b in zip(gh, g32):
            assert a.dtype == dtype and torch.isfinite(a).all(), name
            torch.testing.assert_close(a.float(), b, rtol=tol['rtol'] * 4, atol=tol['atol'] * 4 * max(1, b.abs().max().item()))


@pytest.mark.parametrize('layout', ['channels_last', 'transposed', 'sliced'])
def test_noncontiguous_inputs_match_contiguous(layout):
    f = fused()
    base = _rand(2, 3, 10, 12, seed=11)
    logit = _rand(2, 3, 10, 12, seed=12)
    if layout == 'channels_last':
        xs, ls = base.to(memory_format=torch.channels_last), logit.to(memory_format=torch.channels_last)
    elif layout == 'transposed':
        xs, ls = base.transpose(2, 3).contiguous().transpose(2, 3), logit.transpose(2, 3).contiguous().transpose(2, 3)
    else:
        big, bigl = torch.zeros(2, 6, 10, 24), torch.zeros(2, 6, 10, 24)
        big[:, ::2, :, ::2], bigl[:, ::2, :, ::2] = base, logit
        xs, ls = big[:, ::2, :, ::2], bigl[:, ::2, :, ::2]
    assert not xs.is_contiguous()
    geom = ((3, 3), (2, 2), (1, 1), True)
    for name, a, b in [('lip_pool2d', (xs, ls), (base, logit)), ('soft_pool2d', (xs,), (base,))]:
        a = [t.clone().requires_grad_() if t.is_contiguous() else t.detach().requires_grad_() for t in a]
        b = [t.clone().requires_grad_() for t in b]
        ya, yb = getattr(f, name)(*a, *geom), getattr(f, name)(*b, *geom)
        torch.testing.assert_close(ya, yb, rtol=0, atol=0)
        g = torch.randn_like(yb)
        for ga, gb in zip(torch.autograd.grad(ya, a, g), torch.autograd.grad(yb, b, g)):
            torch.testing.assert_close(ga, gb, rtol=0, atol=0)


def test_backward_is_deterministic():
    f = fused()
    x = _rand(3, 5, 33, 31, seed=13).requires_grad_()
    l = _rand(3, 5, 33, 31, seed=14).requires_grad_()
    y = f.lip_pool2d(x, l, (3, 3), (1, 1), (1, 1))
    g = torch.randn_like(y)
    first = torch.autograd.grad(y, (x, l), g, retain_graph=True)
    second = torch.autograd.grad(y, (x, l), g)
    for a, b in zip(first, second):
        assert torch.equal(a, b)


@pytest.mark.parametrize('call,exc,match', [
    (lambda x: torch.ops.lip_det.soft_pool2d(x, [0, 2], [1, 1], [0, 0], False), ValueError, 'positive'),
    (lambda x: torch.ops.lip_det.soft_pool2d(x, [3, 3], [1, 1], [2, 0], False), ValueError, 'padding'),
    (lambda x: torch.ops.lip_det.soft_pool2d(x[0], [3, 3], [1, 1], [0, 0], False), ValueError, '4-D'),
    (lambda x: torch.ops.lip_det.soft_pool2d(x, [9, 3], [1, 1], [0, 0], False), ValueError, 'smaller than'),
    (lambda x: torch.ops.lip_det.soft_pool2d(x.int(), [2, 2], [1, 1], [0, 0], False), TypeError, 'float'),
    (lambda x: torch.ops.lip_det.lip_pool2d(x, x[:, :1], [2, 2], [1, 1], [0, 0], False), ValueError, 'logit'),
    (lambda x: torch.ops.lip_det.maxent_pool2d(x, torch.ones(2, 2), [2, 2], [2, 2], [0, 0], False),
     ValueError, 'lam/eta'),
    (lambda x: torch.ops.lip_det.lip_pool2d_gated(x, x, torch.ones(3, 1), torch.ones(3), 1e-5, 12.0,
                                                  [2, 2], [2, 2], [0, 0], False), ValueError, r'weight must have shape \[C\]'),
    (lambda x: torch.ops.lip_det.lip_pool2d_gated(x, x, torch.ones(3), torch.ones(2), 1e-5, 12.0,
                                                  [2, 2], [2, 2], [0, 0], False), ValueError, 'bias must have shape'),
    (lambda x: torch.ops.lip_det.lip_pool2d_gated(x, x.double(), torch.ones(3), torch.ones(3), 1e-5, 12.0,
                                                  [2, 2], [2, 2], [0, 0], False), TypeError, "pre must have x's dtype"),
    (lambda x: torch.ops.lip_det.lip_pool2d_gated(x, x, torch.ones(3), torch.ones(3), 1e-5, -1.0,
                                                  [2, 2], [2, 2], [0, 0], False), ValueError, 'coeff'),
    (lambda x: torch.ops.lip_det.lip_pool2d_gated(x, x, torch.ones(3), torch.ones(3), 0.0, 12.0,
                                                  [2, 2], [2, 2], [0, 0], False), ValueError, 'eps'),
])
def test_raw_ops_reject_bad_arguments(call, exc, match):
    """The C++ entry points check what the Python API checks, so direct callers cannot read out of bounds."""
    with pytest.raises(exc, match=match):
        call(torch.randn(2, 3, 8, 8))


def _backward_calls():
    """call(x, grad_out) for every method's raw backward entry point (k2/s2 on 8x8)."""
    o, g = torch.ops.lip_det, ([2, 2], [2, 2], [0, 0], False)
    c = torch.ones(3)
    return [
        pytest.param(lambda x, go: o.lip_pool2d_backward(go, x, x, *g), id='lip'),
        pytest.param(lambda x, go: o.lip_pool2d_gated_backward(go, x, x, c, c, 1e-5, 12.0, *g),
                     id='lip_gated'),
        pytest.param(lambda x, go: o.soft_pool2d_backward(go, x, *g), id='soft'),
        pytest.param(lambda x, go: o.maxent_pool2d_backward(go, x, torch.ones(1), *g), id='maxent'),
        pytest.param(lambda x, go: o.gauss_pool2d_backward(go, x, torch.ones(1), *g), id='gauss'),
        pytest.param(lambda x, go: o.ada_pool2d_backward(go, x, torch.full((1, 3, 1, 1), 0.5), *g),
                     id='ada'),
    ]


@pytest.mark.parametrize('call', _backward_calls())
def test_raw_backward_checks_grad_out_shape(call):
    """A backward entry point refuses a grad_out that is not the forward output's shape (it would
    otherwise be read out of bounds), and accepts the right one."""
    x = torch.randn(2, 3, 8, 8)
    for bad in (torch.ones(2, 3, 4, 3), torch.ones(2, 3, 4), torch.ones(1, 3, 4, 4)):
        with pytest.raises(ValueError, match=r'grad_out must have shape \[2, 3, 4, 4\]'):
            call(x, bad)
    grads = call(x, torch.ones(2, 3, 4, 4))
    grads = grads if isinstance(grads, (tuple, list)) else (grads,)
    assert grads[0].shape == x.shape


def test_dispatcher_routes_to_fused_and_reference(monkeypatch):
    from lip_det import ops
    from lip_det.ops import reference
    x = _rand(2, 3, 9, 9, seed=15)
    l = _rand(2, 3, 9, 9, seed=16)
    monkeypatch.setenv('LIP_DET_OPS', 'fused')
    assert ops.backend() == 'fused'
    with torch.profiler.profile() as prof:
        y_fused = ops.lip_pool2d(x, l, 3, 2, 1)
    assert any(e.name == 'lip_det::lip_pool2d' for e in prof.events())
    monkeypatch.setenv('LIP_DET_OPS', 'reference')
    assert ops.backend() == 'reference'
    torch.testing.assert_close(ops.lip_pool2d(x, l, 3, 2, 1), y_fused)
    torch.testing.assert_close(reference.lip_pool2d(x, l, (3, 3), (2, 2), (1, 1)), y_fused)


@pytest.mark.skipif(not torch.cuda.is_available(), reason='no CUDA device')
@pytest.mark.parametrize('dtype', [torch.float32, torch.float64, torch.float16, torch.bfloat16])
def test_cuda_matches_cpu(dtype):
    f = fused()
    for k, s, p, ceil in GEOMS:
        x = _rand(2, 3, 13, 11, seed=17).to(dtype)
        l = _rand(2, 3, 13, 11, seed=18).to(dtype)
        out = out_size(x.shape, k, s, p, ceil)
        cases = [('lip_pool2d', [x, l]), ('soft_pool2d', [x])]
        nc = (_rand(3, seed=26).to(dtype), _rand(3, seed=27).to(dtype))
        gated = [x, l, *nc]
        for shp in per_window_layouts(2, 3, out).values():
            lam = _rand(*shp, seed=19).to(dtype)
            cases += [('maxent_pool2d', [x, lam]), ('gauss_pool2d', [x, lam])]
        for name, args in cases:
            cpu = [a.clone().requires_grad_() for a in args]
            gpu = [a.cuda().requires_grad_() for a in args]
            yc, yg = getattr(f, name)(*cpu, k, s, p, ceil), getattr(f, name)(*gpu, k, s, p, ceil)
            tol = dict(rtol=1e-2, atol=1e-2) if dtype in (torch.float16, torch.bfloat16) else {}
            torch.testing.assert_close(yg.cpu(), yc, **tol)
            g = torch.randn_like(yc)
            for a, b in zip(torch.autograd.grad(yg, gpu, g.cuda()), torch.autograd.grad(yc, cpu, g)):
                torch.testing.assert_close(a.cpu(), b, **tol)
        cpu = [a.clone().requires_grad_() for a in gated]
        gpu = [a.cuda().requires_grad_() for a in gated]
        yc = f.lip_pool2d_gated(*cpu, 1e-5, 12.0, k, s, p, ceil)
        yg = f.lip_pool2d_gated(*gpu, 1e-5, 12.0, k, s, p, ceil)
        tol = dict(rtol=1e-2, atol=1e-2) if dtype in (torch.float16, torch.bfloat16) else {}
        torch.testing.assert_close(yg.cpu(), yc, **tol)
        g = torch.randn_like(yc)
        for a, b in zip(torch.autograd.grad(yg, gpu, g.cuda()), torch.autograd.grad(yc, cpu, g)):
            torch.testing.assert_close(a.cpu(), b, **tol)
