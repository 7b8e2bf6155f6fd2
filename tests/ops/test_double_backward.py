"""Double backward of the fused ops: exact (the reference op's differentiable VJP) when the
backward runs with create_graph=True, and the fused backward kernel, unchanged, otherwise."""
import warnings

import pytest
import torch

from lip_det.ops import reference

from .fused_helpers import fused, needs_ext, out_size, per_window_layouts, seeded_randn

pytestmark = needs_ext
F64 = torch.float64
GEOMS = [((3, 3), (2, 2), (1, 1), False), ((2, 3), (1, 2), (1, 0), True)]
SHAPE = (1, 2, 5, 6)
GATE_SCALARS = (1e-5, 12.0)
# (name, op name in fused/reference, extra non-tensor args before the geometry)
OPS = ['lip', 'gated', 'soft1d', 'soft2d', 'soft3d', 'maxent_sample_channel', 'maxent_window',
       'gauss_scalar', 'gauss_window']


def _case(name: str, geom: tuple):
    """(op name, tensors, arguments after the tensors) of one op for one geometry, in float64."""
    k, s, p, ceil = geom
    x = seeded_randn(SHAPE, 1)
    if name == 'lip':
        return 'lip_pool2d', [x, seeded_randn(SHAPE, 2, 2.0)], geom
    if name == 'gated':
        return ('lip_pool2d_gated', [x, seeded_randn(SHAPE, 3), seeded_randn((2,), 4),
                                     seeded_randn((2,), 5)], (*GATE_SCALARS, *geom))
    if name == 'soft1d':
        return 'soft_pool1d', [seeded_randn((2, 2, 9), 6)], (k[:1], s[:1], p[:1], ceil)
    if name == 'soft2d':
        return 'soft_pool2d', [x], geom
    if name == 'soft3d':
        return ('soft_pool3d', [seeded_randn((1, 1, 4, 5, 4), 7)],
                (k + (2,), s + (1,), p + (1,), ceil))
    op, layout = name.split('_', 1)
    shape = per_window_layouts(SHAPE[0], SHAPE[1], out_size(SHAPE, k, s, p, ceil))[layout]
    # λ, η in (0.5, 1.5): the ranges their layers produce, away from η = 0.
    param = torch.rand(shape, generator=torch.Generator().manual_seed(8), dtype=F64) + 0.5
    return f'{op}_pool2d', [x, param], geom


def _leaves(tensors):
    return [t.detach().clone().requires_grad_(True) for t in tensors]


def _fn(impl, op: str, args: tuple):
    return lambda *ts: getattr(impl, op)(*ts, *args)


def _second_order(impl, op: str, tensors, args: tuple):
    """First-order grads (create_graph=True) and the grads of Σ their squares (inputs and g)."""
    leaves = _leaves(tensors)
    out = getattr(impl, op)(*leaves, *args)
    g = seeded_randn(out.shape, 11).requires_grad_(True)
    first = torch.autograd.grad(out, leaves, g, create_graph=True)
    loss = sum((f * f).sum() for f in first)
    second = torch.autograd.grad(loss, leaves + [g])
    return [f.detach() for f in first], second


@pytest.mark.parametrize('geom', GEOMS)
@pytest.mark.parametrize('name', OPS)
def test_gradgradcheck(name, geom):
    op, tensors, args = _case(name, geom)
    assert torch.autograd.gradgradcheck(_fn(fused(), op, args), _leaves(tensors))


@pytest.mark.parametrize('geom', GEOMS)
@pytest.mark.parametrize('name', OPS)
def test_second_derivatives_equal_reference(name, geom):
    """Hessian-vector products (w.r.t. inputs and grad_out) equal autograd through the definition (lip_det.ops.reference)."""
    op, tensors, args = _case(name, geom)
    with warnings.catch_warnings():
        # Before the fix the only sign of a wrong double backward was a UserWarning from autograd.
        warnings.simplefilter('error', UserWarning)
        first_f, second_f = _second_order(fused(), op, tensors, args)
    first_r, second_r = _second_order(reference, op, tensors, args)
    for a, b in zip(first_f + list(second_f), first_r + list(second_r)):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-10)


def _backward_ops_run(fn) -> set:
    """Names of the lip_det backward kernels that ran during ``fn()``."""
    with torch.profiler.profile() as prof:
        fn()
    return {e.name for e in prof.events()
            if e.name.startswith('lip_det::') and 'backward' in e.name}


@pytest.mark.parametrize('name', ['lip', 'gated', 'soft2d', 'maxent_window', 'gauss_scalar'])
def test_first_order_still_runs_the_fused_kernel(name):
    """create_graph=False: the fused backward kernel, bit-identical to calling it directly;
    create_graph=True: the same gradients to rounding, computed without that kernel."""
    op, tensors, args = _case(name, GEOMS[0])
    leaves = _leaves(tensors)
    out = getattr(fused(), op)(*leaves, *args)
    g = seeded_randn(out.shape, 12)
    fast = {}
    ran = _backward_ops_run(lambda: fast.update(
        grads=torch.autograd.grad(out, leaves, g, retain_graph=True)))
    assert ran == {f'lip_det::{op}_backward'}
    direct = getattr(torch.ops.lip_det, f'{op}_backward')(g, *tensors, *args)
    direct = direct if isinstance(direct, (tuple, list)) else (direct,)
    for a, b in zip(fast['grads'], direct):
        assert torch.equal(a, b)
    slow = {}
    ran = _backward_ops_run(lambda: slow.update(
        grads=torch.autograd.grad(out, leaves, g, create_graph=True)))
    assert not ran
    for a, b in zip(slow['grads'], fast['grads']):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-10)


def test_double_backward_through_public_api_and_half_types(monkeypatch):
    """The dispatching API (LIP_DET_OPS=fused) and float32/half inputs take the same path."""
    from lip_det import ops
    monkeypatch.setenv('LIP_DET_OPS', 'fused')
    # bfloat16: both backends round the forward (and so 2·out) differently in the last bit.
    for dtype, tol in ((torch.float32, {}), (torch.bfloat16, dict(rtol=5e-2, atol=1e-2))):
        x = seeded_randn(SHAPE, 13, dtype=dtype).requires_grad_(True)
        logit = seeded_randn(SHAPE, 14, dtype=dtype).requires_grad_(True)
        grads = []
        for backend in ('fused', 'reference'):
            monkeypatch.setenv('LIP_DET_OPS', backend)
            (gx,) = torch.autograd.grad(ops.lip_pool2d(x, logit, 3, 2, 1).square().sum(), x,
                                        create_graph=True)
            grads.append(torch.autograd.grad(gx.square().sum(), (x, logit)))
        for a, b in zip(*grads):
            assert a.dtype == dtype
            torch.testing.assert_close(a, b, **tol)
