"""The compiled operators ``torch.ops.lip_det.*`` as Python functions, with their fake kernels
(shape propagation for ``torch.compile``/meta tensors) and autograd formulas.

Signatures equal ``lip_det.ops.reference``: arguments arrive validated from
``lip_det.ops.pooling`` with ``kernel_size``/``stride``/``padding`` as tuples of ints. Every
backward op recomputes from the saved inputs, so autograd keeps no intermediate tensors.

Double backward: the ``*_backward`` kernels are not themselves differentiable. When autograd
runs a backward in grad mode (``create_graph=True``), the formulas below instead recompute the
forward with the plain-PyTorch ops of ``lip_det.ops.reference`` on the saved inputs and return
its vector-Jacobian product as a graph, so higher derivatives are exact; the usual first-order
backward (grad mode off) still runs the fused kernel.
"""
from __future__ import annotations

from typing import Sequence, Tuple

import torch

from . import _ext, reference
from .reference import pooled_size

if not _ext.available():
    raise ImportError(f'lip_det.ops.fused needs the compiled extension lip_det._C: {_ext.load_error()}')

__all__ = ['lip_pool2d', 'lip_pool2d_gated', 'soft_pool1d', 'soft_pool2d', 'soft_pool3d', 'maxent_pool2d', 'gauss_pool2d']

Ints = Sequence[int]
_ops = torch.ops.lip_det


def _out_shape(x: torch.Tensor, kernel_size: Ints, stride: Ints, padding: Ints,
               ceil_mode: bool) -> Tuple[int, ...]:
    nd = len(kernel_size)
    spatial = [pooled_size(size, k, s, p, ceil_mode)
               for size, k, s, p in zip(x.shape[-nd:], kernel_size, stride, padding)]
    return (*x.shape[:2], *spatial)


def _fake_pool(x: torch.Tensor, *rest):
    # rest = (maybe a second tensor,) kernel_size, stride, padding, ceil_mode
    k, s, p, ceil = rest[-4:]
    return x.new_empty(_out_shape(x, k, s, p, ceil))


def _fake_backward_pair(grad_out, x, other, kernel_size, stride, padding, ceil_mode):
    # Real kernels return contiguous gradients of the inputs' shapes and dtypes.
    return x.new_empty(x.shape), other.new_empty(other.shape)


def _fake_backward_single(grad_out, x, kernel_size, stride, padding, ceil_mode):
    return x.new_empty(x.shape)


for _name in ('lip_pool2d', 'soft_pool1d', 'soft_pool2d', 'soft_pool3d', 'maxent_pool2d',
              'gauss_pool2d'):
    torch.library.register_fake(f'lip_det::{_name}', _fake_pool)
for _name in ('lip_pool2d', 'maxent_pool2d', 'gauss_pool2d'):
    torch.library.register_fake(f'lip_det::{_name}_backward', _fake_backward_pair)
for _nd in (1, 2, 3):
    torch.library.register_fake(f'lip_det::soft_pool{_nd}d_backward', _fake_backward_single)


@torch.library.register_fake('lip_det::lip_pool2d_gated')
def _fake_gated(x, pre, weight, bias, eps, coeff, kernel_size, stride, padding, ceil_mode):
    return x.new_empty(_out_shape(x, kernel_size, stride, padding, ceil_mode))


@torch.library.register_fake('lip_det::lip_pool2d_gated_backward')
def _fake_gated_backward(grad_out, x, pre, weight, bias, eps, coeff, kernel_size, stride, padding,
                         ceil_mode):
    return (x.new_empty(x.shape), pre.new_empty(pre.shape), weight.new_empty(weight.shape),
            bias.new_empty(bias.shape))


# ----------------------------------------------------------------------------- autograd
def _wants_graph(grad: torch.Tensor, saved: Sequence[torch.Tensor]) -> bool:
    """Whether this backward must itself be differentiable (``create_graph=True``)."""
    # Autograd runs a backward in grad mode only for create_graph=True; the fused backward
    # kernels have no derivative, so then the reference op's differentiable VJP is used.
    return torch.is_grad_enabled() and (grad.requires_grad or any(t.requires_grad for t in saved))


def _reference_vjp(ref_op, grad: torch.Tensor, tensors: Sequence[torch.Tensor],
                   needs: Sequence[bool], args: tuple) -> list:
    """VJP of ``ref_op(*tensors, *args)`` w.r.t. the tensors in ``needs``, as a graph."""
    wrt = [t for t, need in zip(tensors, needs) if need]
    out = ref_op(*tensors, *args)
    grads = iter(torch.autograd.grad(out, wrt, grad, create_graph=True, allow_unused=True))
    # An input the output does not depend on gets None, which autograd reads as a zero gradient.
    return [next(grads) if need else None for need in needs]


def _setup_pair(ctx, inputs, output):
    x, other, k, s, p, ceil = inputs
    ctx.save_for_backward(x, other)
    ctx.geom = (k, s, p, ceil)


def _setup_single(ctx, inputs, output):
    x, k, s, p, ceil = inputs
    ctx.save_for_backward(x)
    ctx.geom = (k, s, p, ceil)


def _make_pair_backward(backward_op, ref_op):
    def backward(ctx, grad):
        x, other = ctx.saved_tensors
        needs = ctx.needs_input_grad[:2]
        if _wants_graph(grad, (x, other)):
            gx, gother = _reference_vjp(ref_op, grad, (x, other), needs, ctx.geom)
        else:
            gx, gother = backward_op(grad, x, other, *ctx.geom)
        return (gx if needs[0] else None, gother if needs[1] else None, None, None, None, None)
    return backward


def _make_single_backward(backward_op, ref_op):
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        if _wants_graph(grad, (x,)):
            (gx,) = _reference_vjp(ref_op, grad, (x,), (True,), ctx.geom)
        else:
            gx = backward_op(grad, x, *ctx.geom)
        return gx, None, None, None, None
    return backward


for _name in ('lip_pool2d', 'maxent_pool2d', 'gauss_pool2d'):
    torch.library.register_autograd(f'lip_det::{_name}',
                                    _make_pair_backward(getattr(_ops, f'{_name}_backward'),
                                                        getattr(reference, _name)),
                                    setup_context=_setup_pair)
for _nd in (1, 2, 3):
    _backward = _make_single_backward(getattr(_ops, f'soft_pool{_nd}d_backward'),
                                      getattr(reference, f'soft_pool{_nd}d'))
    torch.library.register_autograd(f'lip_det::soft_pool{_nd}d', _backward,
                                    setup_context=_setup_single)


def _setup_gated(ctx, inputs, output):
    x, pre, weight, bias, eps, coeff, k, s, p, ceil = inputs
    # Only the inputs: the norm statistics and the logit are recomputed in the backward kernel.
    ctx.save_for_backward(x, pre, weight, bias)
    ctx.scalars = (eps, coeff)
    ctx.geom = (k, s, p, ceil)


def _gated_backward(ctx, grad):
    saved = ctx.saved_tensors
    needs = ctx.needs_input_grad[:4]
    if _wants_graph(grad, saved):
        grads = _reference_vjp(reference.lip_pool2d_gated, grad, saved, needs,
                               (*ctx.scalars, *ctx.geom))
    else:
        grads = _ops.lip_pool2d_gated_backward(grad, *saved, *ctx.scalars, *ctx.geom)
    return (*(g if need else None for g, need in zip(grads, needs)),
            None, None, None, None, None, None)


torch.library.register_autograd('lip_det::lip_pool2d_gated', _gated_backward,
                                setup_context=_setup_gated)


# ----------------------------------------------------------------------------- wrappers
def _geom(kernel_size: Ints, stride: Ints, padding: Ints):
    return ([int(v) for v in kernel_size], [int(v) for v in (kernel_size if stride is None else stride)],
            [int(v) for v in padding])


def lip_pool2d(x: torch.Tensor, logit: torch.Tensor, kernel_size: Ints, stride: Ints,
               padding: Ints, ceil_mode: bool = False) -> torch.Tensor:
    """Fused LIP: Σ x·e^logit / Σ e^logit over each window's valid pixels."""
    return _ops.lip_pool2d(x, logit, *_geom(kernel_size, stride, padding), bool(ceil_mode))


def lip_pool2d_gated(x: torch.Tensor, pre: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor,
                     eps: float, coeff: float, kernel_size: Ints, stride: Ints, padding: Ints,
                     ceil_mode: bool = False) -> torch.Tensor:
    """Fused LIP + InstanceNorm + SoftGate: logit = coeff·σ(IN(pre)) computed in the kernel."""
    return _ops.lip_pool2d_gated(x, pre, weight, bias, float(eps), float(coeff),
                                 *_geom(kernel_size, stride, padding), bool(ceil_mode))


def soft_pool1d(x: torch.Tensor, kernel_size: Ints, stride: Ints, padding: Ints,
                ceil_mode: bool = False) -> torch.Tensor:
    """Fused SoftPool over (N, C, L)."""
    return _ops.soft_pool1d(x, *_geom(kernel_size, stride, padding), bool(ceil_mode))


def soft_pool2d(x: torch.Tensor, kernel_size: Ints, stride: Ints, padding: Ints,
                ceil_mode: bool = False) -> torch.Tensor:
    """Fused SoftPool over (N, C, H, W)."""
    return _ops.soft_pool2d(x, *_geom(kernel_size, stride, padding), bool(ceil_mode))


def soft_pool3d(x: torch.Tensor, kernel_size: Ints, stride: Ints, padding: Ints,
                ceil_mode: bool = False) -> torch.Tensor:
    """Fused SoftPool over (N, C, D, H, W)."""
    return _ops.soft_pool3d(x, *_geom(kernel_size, stride, padding), bool(ceil_mode))


def maxent_pool2d(x: torch.Tensor, lam: torch.Tensor, kernel_size: Ints, stride: Ints,
                  padding: Ints, ceil_mode: bool = False) -> torch.Tensor:
    """Fused Max-Entropy pooling; ``lam`` in any accepted layout, differentiable."""
    return _ops.maxent_pool2d(x, lam, *_geom(kernel_size, stride, padding), bool(ceil_mode))


def gauss_pool2d(x: torch.Tensor, eta: torch.Tensor, kernel_size: Ints, stride: Ints,
                 padding: Ints, ceil_mode: bool = False) -> torch.Tensor:
    """Fused Gaussian pooling μ + η·σ; ``eta`` in any accepted layout, differentiable."""
    return _ops.gauss_pool2d(x, eta, *_geom(kernel_size, stride, padding), bool(ceil_mode))
