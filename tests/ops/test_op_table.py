"""The battery every entry of the op table (lip_det.ops.table.OPS) gets without a line of its own:
a new method that declares its operators is tested here for the table's contract, the fused
kernels against the definition over hypothesis geometries (output and every gradient), opcheck,
gradcheck in float64, double backward, and the public function's dispatch.

Each method's own test file adds what only it needs (independent oracles, edge values)."""
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import lip_det.ops as ops
from lip_det.ops import reference
from lip_det.ops.table import OPS, PoolOp

from .fused_helpers import needs_ext, out_size
from .strategies import geometry

NAMES = sorted(OPS)
F64 = torch.float64


def _inputs(op: PoolOp, shape, geom, seed: int, dtype=F64):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=gen, dtype=F64).to(dtype)
    out = out_size(shape, *geom)
    return [x, *op.companions(x, out, gen)]


def _scalars(op: PoolOp):
    """Values of the op's scalar arguments (lip_pool2d_gated's eps and coeff)."""
    return [1e-5, 12.0][:len(op.scalars)]


def _call(fn, op: PoolOp, tensors, geom):
    return fn(*tensors, *_scalars(op), *geom)


def _out_and_grads(fn, tensors, seed=0):
    """fn(*tensors) and the gradient of <g, fn> w.r.t. each tensor, for a seeded upstream g."""
    leaves = [t.detach().clone().requires_grad_(True) for t in tensors]
    y = fn(*leaves)
    g = torch.randn(y.shape, generator=torch.Generator().manual_seed(seed), dtype=F64).to(y.dtype)
    return y.detach(), torch.autograd.grad(y, leaves, g)


def test_table_lists_every_compiled_op_and_each_entry_is_whole():
    """Every forward op of the compiled library has exactly one entry (a new op cannot skip the
    battery), and each entry's definition, public function and companions agree on the shapes."""
    assert set(NAMES) >= {'lip_pool2d', 'lip_pool2d_gated', 'soft_pool1d', 'soft_pool2d',
                          'soft_pool3d', 'maxent_pool2d', 'gauss_pool2d', 'ada_pool1d',
                          'ada_pool2d', 'ada_pool3d'}
    for name, op in OPS.items():
        assert op.name == name and op.tensors[0] == 'x' and op.nd in (1, 2, 3)
        assert len(op.scalars) in (0, 2), name
        assert getattr(ops, name) is op.public, f'lip_det.ops.{name} is not the entry\'s function'
        assert getattr(reference, name) is op.reference
        shape = (2, 3) + (7,) * op.nd
        geom = ((3,) * op.nd, (2,) * op.nd, (1,) * op.nd, False)
        tensors = _inputs(op, shape, geom, 0)
        assert len(tensors) == len(op.tensors), name
        assert _call(op.reference, op, tensors, geom).shape == (2, 3) + (4,) * op.nd
    if ops.fused_available():
        compiled = {n.split('::', 1)[1] for n in torch._C._dispatch_get_all_op_names()
                    if n.startswith('lip_det::')}
        forward = {n for n in compiled if not n.endswith('_backward')} - {'set_cpu_isa', 'get_cpu_isa'}
        assert forward == set(NAMES), f'compiled ops without an entry: {forward - set(NAMES)}; ' \
                                      f'entries without a compiled op: {set(NAMES) - forward}'
        assert {f'{n}_backward' for n in NAMES} <= compiled


def test_adding_an_entry_twice_is_refused():
    from lip_det.ops.table import add_op
    with pytest.raises(ValueError, match="pooling op 'lip_pool2d' is already in the table"):
        add_op(OPS['lip_pool2d'])


@needs_ext
@settings(max_examples=60, deadline=None)
@given(name=st.sampled_from(NAMES), data=st.data(), seed=st.integers(0, 2**16))
def test_fused_equals_definition(name, data, seed):
    """Fused output and every input gradient equal autograd through the definition (float64)."""
    op = OPS[name]
    shape, *geom = data.draw(geometry(nd=op.nd, max_kernel=5 if op.nd < 3 else 3,
                                      max_extra=6 if op.nd < 3 else 3))
    tensors = _inputs(op, shape, geom, seed)
    y_f, g_f = _out_and_grads(lambda *ts: _call(op.fused, op, ts, geom), tensors, seed)
    y_r, g_r = _out_and_grads(lambda *ts: _call(op.reference, op, ts, geom), tensors, seed)
    torch.testing.assert_close(y_f, y_r, rtol=1e-9, atol=1e-10)
    for arg, gf, gr in zip(op.tensors, g_f, g_r):
        torch.testing.assert_close(gf, gr, rtol=1e-8, atol=1e-9,
                                   msg=lambda m, arg=arg: f'{name} d/d{arg}: {m}')


@needs_ext
@pytest.mark.parametrize('name', NAMES)
def test_opcheck(name):
    """Schema, fake kernel, autograd registration and dispatch of the op and its backward."""
    op = OPS[name]
    for geom in (((2,) * op.nd, (2,) * op.nd, (0,) * op.nd, False),
                 ((3,) * op.nd, (2,) * op.nd, (1,) * op.nd, True)):
        tensors = _inputs(op, (2, 3) + (6,) * op.nd, geom, 1)
        lists = [list(v) for v in geom[:3]]
        args = (*[t.requires_grad_(True) for t in tensors], *_scalars(op), *lists, geom[3])
        torch.library.opcheck(op.compiled, args)
        g = torch.randn((2, 3) + out_size((2, 3) + (6,) * op.nd, *geom), dtype=F64)
        backward = getattr(torch.ops.lip_det, f'{name}_backward')
        torch.library.opcheck(backward, (g, *[t.detach() for t in tensors], *_scalars(op),
                                         *lists, geom[3]))


@pytest.mark.parametrize('backend', ['reference'] + (['fused'] if ops.fused_available() else []))
@pytest.mark.parametrize('name', NAMES)
def test_public_function_gradcheck_and_dispatch(name, backend, monkeypatch):
    """The public function (int geometry, checked arguments) runs the chosen backend, equals the
    definition, and passes gradcheck and gradgradcheck in float64 for every tensor argument."""
    monkeypatch.setenv('LIP_DET_OPS', backend)
    op = OPS[name]
    geom = ((3,) * op.nd, (2,) * op.nd, (1,) * op.nd, True)
    # 3-D stays small: gradgradcheck differentiates the definition numerically per element.
    shape = (1, 2) + (5,) * op.nd if op.nd < 3 else (1, 1, 4, 5, 4)
    tensors = [t.requires_grad_(True) for t in _inputs(op, shape, geom, 2)]
    scalars = dict(zip(op.scalars, _scalars(op)))

    def public(*ts):
        return op.public(*ts, 3, 2, 1, True, **scalars)

    torch.testing.assert_close(public(*tensors), _call(op.reference, op, tensors, geom),
                               rtol=1e-10, atol=1e-12)
    assert torch.autograd.gradcheck(public, tensors)
    assert torch.autograd.gradgradcheck(public, tensors)


@needs_ext
@pytest.mark.parametrize('name', NAMES)
def test_compiled_graph_equals_eager(name):
    """torch.compile(fullgraph=True) over the public function: the same output and gradients."""
    op = OPS[name]
    geom = ((3,) * op.nd, (2,) * op.nd, (1,) * op.nd, False)
    tensors = _inputs(op, (2, 3) + (9,) * op.nd, geom, 3, torch.float32)
    scalars = dict(zip(op.scalars, _scalars(op)))

    def f(*ts):
        return op.public(*ts, 3, 2, 1, **scalars)

    torch._dynamo.reset()
    y_e, g_e = _out_and_grads(f, tensors)
    y_c, g_c = _out_and_grads(torch.compile(f, fullgraph=True, backend='aot_eager'), tensors)
    torch.testing.assert_close(y_c, y_e)
    assert len(g_c) == len(op.tensors)
    for gc, ge in zip(g_c, g_e):
        torch.testing.assert_close(gc, ge)
