"""Bad arguments raise ValueError/TypeError naming the argument, before any kernel runs."""
import os

import pytest
import torch

import lip_det.ops as ops
from lip_det.ops import (gauss_pool2d, lip_pool2d, lip_pool2d_gated, maxent_pool2d, soft_pool1d,
                         soft_pool2d, soft_pool3d)

X = torch.randn(2, 3, 8, 8)


@pytest.mark.parametrize('kwargs,exc,match', [
    (dict(kernel_size=0), ValueError, 'kernel_size must be positive'),
    (dict(kernel_size=-2), ValueError, 'kernel_size must be positive'),
    (dict(kernel_size=(3, 0)), ValueError, 'kernel_size must be positive'),
    (dict(kernel_size=3, stride=0), ValueError, 'stride must be positive'),
    (dict(kernel_size=3, stride=(2, -1)), ValueError, 'stride must be positive'),
    (dict(kernel_size=3, padding=2), ValueError, 'padding must be at most half of kernel_size'),
    (dict(kernel_size=3, padding=-1), ValueError, 'padding must be non-negative'),
    (dict(kernel_size=(3, 3, 3)), TypeError, 'kernel_size must be an int or a tuple of 2 ints'),
    (dict(kernel_size=2.0), TypeError, 'kernel_size must be an int'),
    (dict(kernel_size=True), TypeError, 'kernel_size must be an int'),
    (dict(kernel_size=3, ceil_mode='yes'), TypeError, 'ceil_mode must be a bool'),
    (dict(kernel_size=9), ValueError, 'too small'),
])
def test_geometry_errors_name_the_argument(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        lip_pool2d(X, torch.zeros_like(X), **kwargs)
    with pytest.raises(exc, match=match):
        soft_pool2d(X, **kwargs)
    with pytest.raises(exc, match=match):
        maxent_pool2d(X, torch.ones(1), **kwargs)
    with pytest.raises(exc, match=match):
        gauss_pool2d(X, torch.ones(1), **kwargs)


def test_logit_must_match_x():
    with pytest.raises(ValueError, match='logit must have the shape of x'):
        lip_pool2d(X, torch.zeros(2, 3, 8, 7), 2)
    with pytest.raises(TypeError, match='logit must have the dtype of x'):
        lip_pool2d(X, torch.zeros_like(X, dtype=torch.float64), 2)
    with pytest.raises(TypeError, match='logit must be a floating-point tensor'):
        lip_pool2d(X, torch.zeros_like(X, dtype=torch.int64), 2)
    with pytest.raises(TypeError, match='logit must be a torch.Tensor'):
        lip_pool2d(X, 0.0, 2)
    meta = torch.zeros_like(X, device='meta')
    with pytest.raises(ValueError, match='logit must be on the same device as x'):
        lip_pool2d(X, meta, 2)


def test_gated_lip_arguments_are_checked():
    c = torch.ones(3)
    with pytest.raises(ValueError, match='pre must have the shape of x'):
        lip_pool2d_gated(X, X[:, :2], c, c, 2)
    with pytest.raises(TypeError, match='pre must have the dtype of x'):
        lip_pool2d_gated(X, X.double(), c, c, 2)
    with pytest.raises(ValueError, match=r'weight must have shape \(C,\) = \(3,\)'):
        lip_pool2d_gated(X, X, torch.ones(2, 3), c, 2)
    with pytest.raises(ValueError, match='bias must have shape'):
        lip_pool2d_gated(X, X, c, torch.ones(4), 2)
    with pytest.raises(TypeError, match='bias must be a torch.Tensor'):
        lip_pool2d_gated(X, X, c, 0.5, 2)
    for name in ('eps', 'coeff'):
        for bad in (0, -1.0, float('inf'), True, '12'):
            with pytest.raises(ValueError, match=f'{name} must be a positive finite number'):
                lip_pool2d_gated(X, X, c, c, 2, **{name: bad})


@pytest.mark.parametrize('fn', [soft_pool2d, lambda x, k: lip_pool2d(x, x, k),
                                lambda x, k: lip_pool2d_gated(x, x, torch.ones(1), torch.ones(1), k),
                                lambda x, k: maxent_pool2d(x, torch.ones(1), k),
                                lambda x, k: gauss_pool2d(x, torch.ones(1), k)])
def test_input_must_be_float_and_4d(fn):
    with pytest.raises(TypeError, match='x must be a floating-point tensor'):
        fn(torch.ones(1, 1, 4, 4, dtype=torch.int32), 2)
    with pytest.raises(ValueError, match=r'x must be a 4-D tensor \(N, C, H, W\)'):
        fn(torch.ones(1, 4, 4), 2)
    with pytest.raises(ValueError, match='x must not be empty'):
        fn(torch.ones(0, 1, 4, 4), 2)


def test_soft_pool_dimensionality_is_checked():
    with pytest.raises(ValueError, match=r'x must be a 3-D tensor \(N, C, L\)'):
        soft_pool1d(X, 2)
    with pytest.raises(ValueError, match=r'x must be a 5-D tensor \(N, C, D, H, W\)'):
        soft_pool3d(X, 2)
    with pytest.raises(TypeError, match='tuple of 3 ints'):
        soft_pool3d(torch.ones(1, 1, 4, 4, 4), (2, 2))


@pytest.mark.parametrize('fn,name', [(maxent_pool2d, 'lam'), (gauss_pool2d, 'eta')])
def test_per_window_parameter_layouts(fn, name):
    for bad in [torch.ones(3), torch.ones(2, 3), torch.ones(2, 3, 4, 3), torch.ones(1, 1, 1, 1, 1),
                torch.ones(3, 3, 1, 1)]:
        with pytest.raises(ValueError, match=rf'{name} must have one of the shapes'):
            fn(X, bad, 2)
    with pytest.raises(TypeError, match=f'{name} must be a floating-point tensor'):
        fn(X, torch.ones(1, dtype=torch.int64), 2)
    with pytest.raises(ValueError, match=f'{name} must be on the same device as x'):
        fn(X, torch.ones(1, device='meta'), 2)
    # Every accepted layout, including per output location (N, C, 4, 4) for k2/s2 on 8x8.
    for good in [(1,), (1, 3, 1, 1), (2, 3, 1, 1), (2, 1, 1, 1), (2, 3, 4, 4)]:
        assert fn(X, torch.rand(good), 2).shape == (2, 3, 4, 4)


def test_backend_env_var_is_validated(monkeypatch):
    monkeypatch.setenv('LIP_DET_OPS', 'gpu')
    with pytest.raises(ValueError, match=r"LIP_DET_OPS must be one of \('auto', 'fused', 'reference'\)"):
        soft_pool2d(X, 2)


def test_cpu_isa_is_validated_and_decided_once():
    """LIP_DET_CPU_ISA is read once, at the first kernel call of a process: a bad value is an
    error naming it (at every call, until fixed), a good one caps the build; set_cpu_isa changes
    the build at run time and refuses unknown names."""
    from lip_det.ops import _ext
    if not _ext.available():
        pytest.skip('the compiled extension is not built')
    import subprocess
    import sys
    code = (
        "import os, torch, lip_det.ops as o\n"
        "x = torch.rand(1, 1, 4, 4)\n"
        "for _ in range(2):\n"
        "    try:\n"
        "        o.soft_pool2d(x, 2); print('ran')\n"
        "    except ValueError as e:\n"
        "        print('refused:', e)\n"
        "os.environ['LIP_DET_CPU_ISA'] = 'default'\n"
        "o.soft_pool2d(x, 2); print('build', o.cpu_isa())\n"
        "os.environ['LIP_DET_CPU_ISA'] = 'sse9'\n"
        "o.soft_pool2d(x, 2); print('still', o.cpu_isa())\n"
        "print('set', o.set_cpu_isa('default'), o.cpu_isa())\n")
    env = dict(os.environ, LIP_DET_CPU_ISA='sse9', LIP_DET_OPS='fused')
    out = subprocess.run([sys.executable, '-c', code], env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    refusal = "LIP_DET_CPU_ISA must be empty, 'default', 'avx2' or 'avx512', got 'sse9'"
    assert [line.startswith('refused:') and refusal in line for line in lines[:2]] == [True, True]
    # Fixed, it is read at the next call and then kept: a later change of the variable is ignored.
    assert lines[2:] == ['build default', 'still default', 'set default default']
    with pytest.raises(ValueError, match=r"set_cpu_isa\(name\) must be empty, 'default', 'avx2' or "
                                         r"'avx512', got 'sse9'"):
        ops.set_cpu_isa('sse9')
    with pytest.raises(TypeError, match='name must be a str'):
        ops.set_cpu_isa(2)
