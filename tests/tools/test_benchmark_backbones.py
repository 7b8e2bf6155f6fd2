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
