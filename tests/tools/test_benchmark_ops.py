"""tools/benchmark_ops.py on a tiny shape: the three implementations agree and the report holds
the fused op's memory advantage (its working memory is zero, the expressions' is not)."""
import json

import pytest

from lip_det.ops import _ext

from .tool_loader import load_tool

pytestmark = pytest.mark.skipif(not _ext.available(), reason='lip_det._C not built')


def test_report_on_a_small_shape(tmp_path, monkeypatch):
    tool = load_tool('benchmark_ops')
    monkeypatch.setattr(tool, 'SHAPES', {'lip_stem': ((1, 4, 24, 32), (3, 3), (2, 2), (1, 1))})
    out = tmp_path / 'ops.json'
    assert tool.main(['--methods', 'lip', 'lip_gated', 'soft', '--repeat', '1', '--json', str(out)]) in (0, None)
    report = json.loads(out.read_text())
    rows = {r['method']: r for r in report['results']}
    assert set(rows) == {'lip', 'lip_gated', 'soft'}
    for method, row in rows.items():
        assert all(d <= 1e-4 for d in row['max_abs_diff_vs_fused'].values()), (method, row)
        assert row['fused']['fwd_bwd_work_bytes'] <= 0.01 * row['expr']['fwd_bwd_work_bytes'], method
        assert row['expr']['fwd_bwd_work_bytes'] > 0, method
        assert row['ratios']['fwd_bwd_work_memory_ratio_vs_expr'] <= 0.01
    # lip_gated's expression also keeps the norm's and the gate's outputs: more than plain LIP's.
    assert rows['lip_gated']['expr']['fwd_bwd_peak_bytes'] > rows['lip']['expr']['fwd_bwd_peak_bytes']


def test_peak_bytes_counts_what_fn_allocates_above_the_start():
    import torch
    tool = load_tool('benchmark_ops')
    x = torch.randn(500, 500)  # 1 MB, alive before: not counted
    one = x.nbytes
    assert tool.peak_bytes(lambda: None) == 0
    assert one <= tool.peak_bytes(lambda: x * 2) < one + 1024
    # (x*2) and (x*3) are alive together with their sum: three tensors at the peak
    assert 3 * one <= tool.peak_bytes(lambda: (x * 2) + (x * 3)) < 3 * one + 1024
