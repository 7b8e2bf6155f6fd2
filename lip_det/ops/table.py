"""The table of pooling operators: one ``PoolOp`` entry per operator, declared by its method's
module (``lip_det/ops/<method>.py``), read by everything that treats the operators alike.

An entry names the compiled operator ``torch.ops.lip_det.<name>``, its tensor arguments, its
plain-PyTorch definition and its checked public function, and how to draw example companion
tensors. From the table come: the fused operators' fake kernels and autograd formulas (registered
here when the entry is added; every op's backward op returns one gradient per tensor argument),
the fused/reference dispatch of the public functions, the views ``lip_det.ops.reference`` and
``lip_det.ops.fused`` (which tools/benchmark_ops.py times) and the table-driven test battery
(tests/ops/test_op_table.py). A new method declares its entries and adds no line here.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch

from . import _ext
from ._backend import backend
from ._window import pooled_size

__all__ = ['PoolOp', 'OPS', 'add_op', 'implementation', 'fused_call']

Ints = Sequence[int]
# Draws an op's companion tensors (everything after x) for an input x with spatial output size
# `out`, from a generator: used by tests and benchmarks to call every op alike.
Companions = Callable[[torch.Tensor, Tuple[int, ...], torch.Generator], List[torch.Tensor]]


@dataclass(frozen=True)
class PoolOp:
    """One pooling operator: called as ``op(*tensors, *scalars, kernel, stride, padding, ceil)``."""

    name: str                     # torch.ops.lip_det.<name>; <name>_backward is its gradient op
    method: str                   # the method's module name in lip_det.ops ('lip', 'ada_pool', ...)
    nd: int                       # spatial dimensions
    tensors: Tuple[str, ...]      # tensor arguments, x first
    reference: Callable           # plain-PyTorch definition (validated arguments, tuple geometry)
    public: Callable              # the checked function users call (lip_det.ops.<name>)
    companions: Companions        # example tensors after x, for tests and benchmarks
    scalars: Tuple[str, ...] = () # float arguments between the tensors and the geometry
    # The compiled operator with the definition's signature (tuple geometry). Made once here, not
    # lazily: a lazy attribute (functools.cached_property takes a lock) breaks a torch.compile
    # trace that reaches it first.
    fused: Callable = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        num_leading = len(self.tensors) + len(self.scalars)
        object.__setattr__(self, 'fused', fused_call(self.name, num_leading))

    @property
    def compiled(self):
        """The compiled operator (needs the extension)."""
        return getattr(torch.ops.lip_det, self.name)


OPS: Dict[str, PoolOp] = {}


def _geom_lists(kernel_size: Ints, stride: Optional[Ints], padding: Ints):
    k = [int(v) for v in kernel_size]
    return k, k if stride is None else [int(v) for v in stride], [int(v) for v in padding]


def fused_call(name: str, num_leading: int) -> Callable:
    """``torch.ops.lip_det.<name>`` called like the definition: its ``num_leading`` tensors and
    scalars, then kernel, stride, padding and an optional ceil_mode (default False)."""
    def call(*args, ceil_mode: bool = False):
        head, geom = args[:num_leading], args[num_leading:]
        if len(geom) not in (3, 4):
            raise TypeError(f'{name} takes {num_leading} tensor/scalar arguments, then kernel_size, '
                            f'stride, padding[, ceil_mode]; got {len(args)} arguments')
        k, s, p = geom[:3]
        ceil = geom[3] if len(geom) == 4 else ceil_mode
        return getattr(torch.ops.lip_det, name)(*head, *_geom_lists(k, s, p), bool(ceil))
    call.__name__ = call.__qualname__ = name
    call.__doc__ = f'Fused {name} (torch.ops.lip_det.{name}) with tuple geometry arguments.'
    return call


def implementation(name: str) -> Callable:
    """The function that computes op ``name`` now: fused, or the definition (``backend()``)."""
    op = OPS[name]
    return op.fused if backend() == 'fused' else op.reference


# ----------------------------------------------------------------------------- fused registration
def _out_shape(x: torch.Tensor, kernel_size: Ints, stride: Ints, padding: Ints,
               ceil_mode: bool) -> Tuple[int, ...]:
    nd = len(kernel_size)
    spatial = [pooled_size(size, k, s, p, ceil_mode)
               for size, k, s, p in zip(x.shape[-nd:], kernel_size, stride, padding)]
    return (*x.shape[:2], *spatial)


def _fake_forward(x: torch.Tensor, *rest):
    k, s, p, ceil = rest[-4:]
    return x.new_empty(_out_shape(x, k, s, p, ceil))


def _make_fake_backward(num_tensors: int):
    # Real kernels return contiguous gradients of the inputs' shapes and dtypes.
    def fake_backward(grad_out, *args):
        grads = tuple(t.new_empty(t.shape) for t in args[:num_tensors])
        return grads[0] if num_tensors == 1 else grads
    return fake_backward


def wants_graph(grad: torch.Tensor, saved: Sequence[torch.Tensor]) -> bool:
    """Whether this backward must itself be differentiable (``create_graph=True``)."""
    # Autograd runs a backward in grad mode only for create_graph=True; the fused backward
    # kernels have no derivative, so then the definition's differentiable VJP is used.
    return torch.is_grad_enabled() and (grad.requires_grad or any(t.requires_grad for t in saved))


def reference_vjp(ref_op: Callable, grad: torch.Tensor, tensors: Sequence[torch.Tensor],
                  needs: Sequence[bool], args: tuple) -> list:
    """VJP of ``ref_op(*tensors, *args)`` w.r.t. the tensors in ``needs``, as a graph."""
    wrt = [t for t, need in zip(tensors, needs) if need]
    out = ref_op(*tensors, *args)
    grads = iter(torch.autograd.grad(out, wrt, grad, create_graph=True, allow_unused=True))
    # An input the output does not depend on gets None, which autograd reads as a zero gradient.
    return [next(grads) if need else None for need in needs]


def _register_autograd(op: PoolOp) -> None:
    """Save the tensors (no intermediate), recompute in the backward op; double backward through
    the definition."""
    nt, ns = len(op.tensors), len(op.scalars)
    backward_op = getattr(torch.ops.lip_det, f'{op.name}_backward')

    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(*inputs[:nt])
        ctx.rest = tuple(inputs[nt:])  # scalars, kernel, stride, padding, ceil_mode

    def backward(ctx, grad):
        saved = ctx.saved_tensors
        needs = ctx.needs_input_grad[:nt]
        if wants_graph(grad, saved):
            grads = reference_vjp(op.reference, grad, saved, needs, ctx.rest)
        else:
            grads = backward_op(grad, *saved, *ctx.rest)
            grads = (grads,) if nt == 1 else tuple(grads)
        return (*(g if need else None for g, need in zip(grads, needs)), *([None] * (ns + 4)))

    torch.library.register_autograd(f'lip_det::{op.name}', backward, setup_context=setup_context)


def add_op(op: PoolOp) -> PoolOp:
    """Put ``op`` in the table; with the extension loaded, register its fake kernels and autograd."""
    if op.name in OPS:
        raise ValueError(f'pooling op {op.name!r} is already in the table (from {OPS[op.name].method})')
    OPS[op.name] = op
    if _ext.available():
        torch.library.register_fake(f'lip_det::{op.name}', _fake_forward)
        torch.library.register_fake(f'lip_det::{op.name}_backward',
                                    _make_fake_backward(len(op.tensors)))
        _register_autograd(op)
    return op
