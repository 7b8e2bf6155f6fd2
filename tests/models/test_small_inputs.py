"""Every pooled backbone runs, in train and eval mode, on every input size mmdet's ResNet runs on
(1..40 px, odd sizes and non-square too), with finite outputs and gradients.

Output sizes: LIP-ResNet's k3/s2/p1 LIP pools like ResNet's strided convs, so its shapes equal
mmdet's ResNet's everywhere. SoftPool (stem), Max-Entropy/Gaussian (stem and stages) and
LIP-DenseNet (transitions) pool 2x2/s2, i.e. floor(h/2), where ResNet gives ceil(h/2); on small
maps a 2x2 window that does not fit pools the whole side (size 1 instead of an error). So they
equal ResNet's shapes where every pooled map is even or 1 pixel (1, 2, 4, ... 32 px) and follow
``_expected_sizes`` elsewhere; odd-size results of maps > 1 px are unchanged from before.
"""
import math

import pytest
import torch

from .common import build

SIZES = tuple(range(1, 41))
POWERS_OF_TWO = (1, 2, 4, 8, 16, 32)
# Small widths keep 440 cases fast; the code paths are those of the full-width models.
BACKBONES = {
    'lip_r18_bottleneck': dict(type='LIPResNet', depth=18, base_channels=8, logit_width=8),
    'lip_r18_projection': dict(type='LIPResNet', depth=18, base_channels=8,
                               logit_module='projection'),
    'lip_r50_bottleneck': dict(type='LIPResNet', depth=50, base_channels=8, logit_width=8),
    'lip_r50_projection': dict(type='LIPResNet', depth=50, base_channels=8,
                               logit_module='projection'),
    'softpool_r18': dict(type='SoftPoolResNet', depth=18, base_channels=8),
    'adapool_r18': dict(type='AdaPoolResNet', depth=18, base_channels=8),
    'maxent_r18': dict(type='MaxEntResNet', depth=18, base_channels=8),
    'maxent_r50': dict(type='MaxEntResNet', depth=50, base_channels=8),
    'gaussian_r18': dict(type='GaussianResNet', depth=18, base_channels=8),
    'gaussian_r50_cn': dict(type='GaussianResNet', depth=50, base_channels=8, stochasticity='CN'),
    'lip_densenet121': dict(type='LIPDenseNet', depth=121, logit_width=8),
    'densenet121_avg_transitions': dict(type='LIPDenseNet', depth=121, lip_stem=False,
                                        lip_transitions=(False, False, False)),
}
_models = {}


def _model(name: str) -> torch.nn.Module:
    """The backbone, built once; norm_eval=False so that train mode uses batch statistics."""
    if name not in _models:
        torch.manual_seed(0)
        cfg = BACKBONES[name]
        _models[name] = build(cfg['type'], norm_eval=False,
                              **{k: v for k, v in cfg.items() if k != 'type'})
    return _models[name]


def _resnet(depth: int) -> torch.nn.Module:
    key = f'resnet{depth}'
    if key not in _models:
        _models[key] = build('ResNet', depth=depth, base_channels=8, norm_eval=False)
    return _models[key]


def _half_ceil(n: int) -> int:
    return math.ceil(n / 2)


def _half_floor(n: int) -> int:
    return max(1, n // 2)


def _expected_sizes(name: str, n: int):
    """Side lengths of the four outputs for an input side ``n``."""
    t = BACKBONES[name]['type']
    if t == 'LIPResNet':
        stem, stages = [_half_ceil, _half_ceil], [_half_ceil] * 3
    elif t in ('SoftPoolResNet', 'AdaPoolResNet'):
        stem, stages = [_half_ceil, _half_floor], [_half_ceil] * 3
    elif t in ('MaxEntResNet', 'GaussianResNet'):
        stem, stages = [_half_floor, _half_ceil], [_half_floor] * 3
    else:
        stem, stages = [_half_ceil, _half_ceil], [_half_floor] * 3
    for f in stem:
        n = f(n)
    sizes = [n]
    for f in stages:
        sizes.append(f(sizes[-1]))
    return sizes


def _input(n: int) -> torch.Tensor:
    # Non-square with an odd width: height n, width n + 2 for odd n (both sides exercised).
    w = n + 2 if n % 2 else n
    return torch.randn(2, 3, n, w, generator=torch.Generator().manual_seed(n))


def _reference_shapes(model, depth, x):
    ref = _resnet(depth)
    ref.eval()
    with torch.no_grad():
        return [tuple(o.shape) for o in ref(x)]


@pytest.mark.parametrize('size', SIZES)
@pytest.mark.parametrize('name', list(BACKBONES))
def test_backbone_runs_on_small_inputs(name, size):
    model = _model(name)
    x = _input(size)
    model.train()
    out = model(x)
    assert len(out) == 4
    for o in out:
        assert torch.isfinite(o).all()
    sum(o.square().mean() for o in out).backward()
    for pname, p in model.named_parameters():
        if p.grad is not None:
            assert torch.isfinite(p.grad).all(), pname
    model.zero_grad(set_to_none=True)
    model.eval()
    with torch.no_grad():
        out_eval = model(x)
    assert [o.shape for o in out_eval] == [o.shape for o in out]
    for o in out_eval:
        assert torch.isfinite(o).all()

    shapes = [tuple(o.shape) for o in out]
    expected = [(_expected_sizes(name, size)[i], _expected_sizes(name, x.shape[3])[i])
                for i in range(4)]
    assert [s[2:] for s in shapes] == expected
    if BACKBONES[name]['type'] == 'LIPDenseNet':
        assert [s[1] for s in shapes] == list(model.out_channels)
        ref_depth = None
    else:
        ref_depth = BACKBONES[name]['depth']
    if ref_depth is not None:
        ref_shapes = _reference_shapes(model, ref_depth, x)
        assert [s[:2] for s in shapes] == [s[:2] for s in ref_shapes]
        if BACKBONES[name]['type'] == 'LIPResNet' or size in POWERS_OF_TWO:
            assert shapes == ref_shapes
    elif size in POWERS_OF_TWO:
        assert [s[2:] for s in shapes] == [s[2:] for s in _reference_shapes(model, 50, x)]


@pytest.mark.parametrize('size', (1, 2, 3, 5, 16))
@pytest.mark.parametrize('name', ['lip_r18_bottleneck', 'lip_r50_projection', 'softpool_r18', 'adapool_r18',
                                  'maxent_r18', 'gaussian_r18', 'lip_densenet121'])
def test_fused_and_reference_agree_on_small_inputs(name, size, monkeypatch):
    """The 1-pixel rules (InstanceNorm of one pixel, windows cut to the map) are the same in
    both op paths: outputs and gradients match in float64, train and eval mode."""
    from lip_det.ops import fused_available
    if not fused_available():
        pytest.skip('lip_det._C not built')
    model = _model(name).double()
    x = _input(size).double()
    try:
        for train in (True, False):
            model.train(train)
            # BatchNorm in eval mode (mmdet's norm_eval): train-mode BN over two values per
            # channel is so ill-conditioned on 1-pixel maps that rounding alone shows.
            for m in model.modules():
                if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                    m.eval()
            results = []
            for backend in ('fused', 'reference'):
                monkeypatch.setenv('LIP_DET_OPS', backend)
                torch.manual_seed(1)  # the same Gaussian-pooling noise in both runs
                out = model(x)
                params = [p for p in model.parameters() if p.requires_grad]
                grads = torch.autograd.grad(sum(o.square().mean() for o in out), params,
                                            allow_unused=True) if train else []
                results.append(([o.detach() for o in out], grads))
            (out_f, g_f), (out_r, g_r) = results
            for a, b in zip(out_f, out_r):
                torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-10)
            for a, b in zip(g_f, g_r):
                if a is None or b is None:
                    assert a is None and b is None
                else:
                    torch.testing.assert_close(a, b, rtol=1e-8, atol=1e-10)
    finally:
        model.float()
