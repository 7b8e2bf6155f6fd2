"""tools/benchmark_backbones.py: interleaved rounds, medians and ratios (measurements faked)."""
import itertools

import pytest

from tests.models.common import n_params  # noqa: F401  (imports mmdet or skips)

from .tool_loader import load_tool

tool = load_tool('benchmark_backbones')


def test_rounds_interleave_backbones_and_report_medians(monkeypatch):
    calls = []
    counter = itertools.count()

    def fake_measure(cfg, size, batch, mode, iters, warmup, threads=None):
        calls.append((cfg['type'], tuple(size), mode))
        i = next(counter)
        # R18 always 100 ms; LIP-R18 150 ms except one slow outlier round at 600 ms.
        ms = 100.0 if cfg['type'] == 'ResNet' else (600.0 if i == 1 else 150.0)
        return dict(ms=ms, cpu_ms=2 * ms, peak_mib=10.0 if cfg['type'] == 'ResNet' else 12.0,
                    exact_peak=True, op_path='fused', threads=2)

    monkeypatch.setattr(tool, 'measure', fake_measure)
    args = tool.parse_args(['--depths', '18', '--models', 'R18', 'LIP-R18', '--no-big',
                            '--rounds', '3', '--iters', '1', '--batch', '1'])
    report = tool.benchmark(args)
    # Per round and pass, every backbone once, baseline first: R, LIP, R, LIP, ...
    assert [c[0] for c in calls] == ['ResNet', 'LIPResNet'] * 6
    assert [c[2] for c in calls[:4]] == ['fwd', 'fwd', 'fwd_bwd', 'fwd_bwd']
    lip = {r['model']: r for r in report['rows']}['LIP-R18']
    assert lip['fwd_ms_224_rounds'] == [600.0, 150.0, 150.0]
    assert lip['fwd_ms_224'] == 150.0  # the median, not the outlier's mean
    assert lip['fwd_ms_224_ratio'] == pytest.approx(1.5)
    assert lip['fwd_bwd_peak_mib_224_ratio'] == pytest.approx(1.2)
    table = tool.format_table(report)
    assert '150.0 (1.50x)' in table and 'median over 3 interleaved round(s)' in table


def test_rounds_must_be_positive():
    with pytest.raises(SystemExit):
        tool.parse_args(['--rounds', '0'])


@pytest.mark.parametrize('cfg,width', [(dict(type='ResNet', depth=18), 512),
                                       (dict(type='LIPResNet', depth=34), 512),
                                       (dict(type='ResNet', depth=50), 2048),
                                       (dict(type='LIPDenseNet', depth=121), 1024)])
def test_fc_params_follow_the_last_stage_width(cfg, width):
    model = tool.build(cfg)
    assert tool.fc_params(model) == width * 1000 + 1000
    assert model.training  # left as it was


def test_fc_counted_with_resnet18_width():
    """R18 with its 512 -> 1000 fc is torchvision's resnet18: 11,689,512 parameters."""
    model = tool.build(dict(type='ResNet', depth=18))
    n = sum(p.numel() for p in model.parameters())
    assert n + tool.fc_params(model) == 11_689_512


def _tiny_lip_soft():
    """conv 3->4 (3x3), SimplifiedLIP(4) (logit conv 3x3, LIP k3/s2/p1), SoftPool 2x2."""
    import torch.nn as nn

    from lip_det.layers import SoftPool2d
    from lip_det.layers.lip_logits import SimplifiedLIP

    class Tiny(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3, padding=1, bias=False)
            self.lip = SimplifiedLIP(4)
            self.soft = SoftPool2d(2)

        def forward(self, x):
            return [self.soft(self.lip(self.conv(x)))]

    return Tiny()


@pytest.mark.parametrize('ops', ['reference', 'fused'])
def test_flops_of_a_small_model_by_hand(ops, monkeypatch):
    """On 1x3x8x8, FLOPs = multiply-adds of the convs + the pooling formulas of the docstring."""
    import lip_det.ops
    if ops == 'fused' and not lip_det.ops.fused_available():
        pytest.skip('extension not built')
    monkeypatch.setenv('LIP_DET_OPS', ops)
    convs = 4 * 8 * 8 * (3 * 3 * 3) + 4 * 8 * 8 * (4 * 3 * 3)  # conv, LIP's logit conv
    lip = 4 * 8 * 8 * 1 + 4 * 4 * 4 * (2 * 9 + 1)  # exp per input; 2k + 1 per output, k = 9
    soft = 4 * 4 * 4 * 1 + 4 * 2 * 2 * (2 * 4 + 1)  # k = 4
    model = _tiny_lip_soft()
    assert tool.pool_flops(model, (8, 8)) == lip + soft == 1680
    flops = tool.count_flops(model, (8, 8))
    assert flops['pool_gflops'] * 1e9 == pytest.approx(lip + soft, abs=1e-3)
    assert flops['gflops'] * 1e9 == pytest.approx(convs + lip + soft, abs=1e-3)


def test_pool_flops_of_maxent_gaussian_and_a_fitted_window_by_hand():
    import torch.nn as nn

    from lip_det.layers import GaussianPool2d, MaxEntPool2d, SoftPool2d
    model = nn.Sequential(MaxEntPool2d(3), GaussianPool2d(3), SoftPool2d(3, stride=2))
    maxent = 3 * 8 * 8 * 2 + 3 * 4 * 4 * (2 * 4 + 1)  # exp and λ·x per input; k = 4
    gauss = 3 * 2 * 2 * (2 * 4 + 4)  # nothing per input; 2k + 4 per output
    soft = 3 * 2 * 2 * 1 + 3 * 1 * 1 * (2 * 4 + 1)  # 3x3 window fitted to the 2x2 map: k = 4
    assert tool.pool_flops(model, (8, 8)) == maxent + gauss + soft == 999
