"""Shared helpers of the tests/ops/test_fused_* files: call a fused op and its plain-PyTorch
twin on the same inputs and compare outputs and every gradient."""
from __future__ import annotations

import contextlib
from typing import Dict, Iterator, Sequence, Tuple

import pytest
import torch

from lip_det.ops import _ext, reference

needs_ext = pytest.mark.skipif(not _ext.available(),
                               reason=f'lip_det._C not built: {_ext.load_error()}')


def fused():
    """The fused module, imported lazily (it raises ImportError without the extension)."""
    from lip_det.ops import fused as f
    return f


def per_window_layouts(n: int, c: int, out: Sequence[int]) -> Dict[str, Tuple[int, ...]]:
    """Every accepted λ/η layout for an (n, c) input with spatial output ``out``."""
    return {'scalar': (1,), 'channel': (1, c, 1, 1), 'sample_channel': (n, c, 1, 1),
            'sample': (n, 1, 1, 1), 'window': (n, c) + tuple(out)}


def run(name: str, impl, tensors: Sequence[torch.Tensor], geom: tuple, grad_seed: int = 0):
    """Output and gradients (w.r.t. every tensor argument) of ``impl.<name>`` for upstream g."""
    leaves = [t.detach().clone().requires_grad_(True) for t in tensors]
    out = getattr(impl, name)(*leaves, *geom)
    gen = torch.Generator().manual_seed(grad_seed)
    g = torch.randn(out.shape, generator=gen, dtype=torch.float64).to(out.dtype)
    grads = torch.autograd.grad(out, leaves, g)
    return out.detach(), grads


def assert_matches_reference(name: str, tensors: Sequence[torch.Tensor], geom: tuple,
                             rtol: float = 1e-9, atol: float = 1e-10) -> None:
    """Fused output and all gradients equal autograd through the definition (lip_det.ops.reference)."""
    out_f, grads_f = run(name, fused(), tensors, geom)
    out_r, grads_r = run(name, reference, tensors, geom)
    assert out_f.shape == out_r.shape and out_f.dtype == out_r.dtype
    torch.testing.assert_close(out_f, out_r, rtol=rtol, atol=atol)
    for i, (gf, gr) in enumerate(zip(grads_f, grads_r)):
        assert gf.shape == gr.shape, f'grad {i} of {name}: shape {gf.shape} != {gr.shape}'
        torch.testing.assert_close(gf, gr, rtol=rtol, atol=atol, msg=lambda m: f'grad {i} of {name}: {m}')


def seeded_randn(shape: Sequence[int], seed: int, scale: float = 1.0,
                 dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Standard normal values (drawn in float64 from `seed`) times `scale`, cast to `dtype`."""
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=gen, dtype=torch.float64).mul_(scale).to(dtype)


def out_size(shape: Sequence[int], k, s, p, ceil_mode) -> Tuple[int, ...]:
    nd = len(k)
    return tuple(reference.pooled_size(shape[-nd + i], k[i], s[i], p[i], ceil_mode) for i in range(nd))



@contextlib.contextmanager
def cpu_isa(name: str) -> Iterator[str]:
    """Run the CPU kernels' ``name`` build ('' = best) inside the block; yields the build that runs."""
    import lip_det.ops as ops
    before = ops.cpu_isa()
    try:
        yield ops.set_cpu_isa(name)
    finally:
        ops.set_cpu_isa(before)
