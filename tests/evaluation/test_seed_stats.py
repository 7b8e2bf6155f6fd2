"""Multi-seed statistics against hand-computed values, and the AP_tiny area range on a GT built for it."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from lip_det.evaluation import METRICS, compare_runs
from lip_det.evaluation.seed_stats import (aggregate, format_markdown, paired_delta,
                                           per_class_deltas, plot_comparison, spread, t_quantile)


def test_t_quantiles_match_the_printed_table():
    # two-sided 95 % critical values from any t table
    for df, value in ((1, 12.706), (2, 4.303), (4, 2.776), (9, 2.262), (30, 2.042)):
        assert t_quantile(0.975, df) == pytest.approx(value, abs=1e-3)
    with pytest.raises(ValueError, match='df'):
        t_quantile(0.975, 0)
    with pytest.raises(ValueError, match='p must'):
        t_quantile(1.0, 3)


def test_spread_by_hand():
    s = spread([0.50, 0.52, 0.48])
    assert s.mean == pytest.approx(0.50) and s.n == 3
    assert s.std == pytest.approx(0.02)  # deviations ±0.02, 0: sqrt(0.0008 / 2)
    assert spread([0.3]).std == 0.0
    with pytest.raises(ValueError, match='at least one'):
        spread([])


def test_paired_delta_by_hand():
    d = paired_delta([0.50, 0.52, 0.48], [0.53, 0.52, 0.50])
    # differences 0.03, 0.00, 0.02: mean 1/60, sd sqrt(((1/75)² + (1/60)² + (1/300)²) / 2)
    mean = 0.05 / 3
    sd = math.sqrt(((0.03 - mean) ** 2 + mean ** 2 + (0.02 - mean) ** 2) / 2)
    half = 4.302653 * sd / math.sqrt(3)
    assert d.mean == pytest.approx(mean) and d.std == pytest.approx(sd)
    assert (d.ci_low, d.ci_high) == (pytest.approx(mean - half, abs=1e-6),
                                     pytest.approx(mean + half, abs=1e-6))
    assert (d.wins, d.ties, d.losses, d.n) == (2, 1, 0, 3)
    assert not d.significant  # the interval [-0.021, 0.055] holds 0
    # the same gain on every seed but one tiny wobble: the interval excludes 0
    assert paired_delta([0.1, 0.2, 0.3, 0.4], [0.15, 0.25, 0.351, 0.45]).significant


def test_pairing_is_what_makes_a_consistent_gain_visible():
    # seeds move both methods a lot, the gain is always +1 point: unpaired spreads overlap,
    # the paired interval is tight around +0.01
    base = [0.40, 0.55, 0.47, 0.60, 0.35]
    other = [b + 0.01 + 0.001 * (i % 2) for i, b in enumerate(base)]
    d = paired_delta(base, other)
    assert d.significant and d.ci_low > 0.009 and d.ci_high < 0.012
    assert spread(base).std > 0.09


def test_paired_delta_bad_input():
    with pytest.raises(ValueError, match='paired'):
        paired_delta([0.1, 0.2], [0.1])
    with pytest.raises(ValueError, match='at least 2'):
        paired_delta([0.1], [0.2])
    with pytest.raises(ValueError, match='confidence'):
        paired_delta([0.1, 0.2], [0.2, 0.3], confidence=1.5)


def _runs():
    return {'R18': {0: {'AP': 0.50, 'AP_S': 0.40}, 1: {'AP': 0.52, 'AP_S': 0.44},
                    2: {'AP': 0.48, 'AP_S': -1.0}},
            'LIP': {0: {'AP': 0.53, 'AP_S': 0.41}, 1: {'AP': 0.52, 'AP_S': 0.47},
                    2: {'AP': 0.50, 'AP_S': 0.30}},
            'Soft': {1: {'AP': 0.55, 'AP_S': 0.45}}}


def test_aggregate_pairs_by_seed_and_skips_missing_ranges():
    agg = aggregate(_runs(), ['AP', 'AP_S'])
    assert agg['baseline'] == 'R18'
    lip = agg['methods']['LIP']
    assert lip['metrics']['AP']['mean'] == pytest.approx(1.55 / 3)
    assert lip['delta']['AP']['mean'] == pytest.approx(0.05 / 3)
    # seed 2 of the baseline has no small ground truth (-1): AP_S pairs seeds 0 and 1 only
    assert agg['methods']['R18']['metrics']['AP_S']['n'] == 2
    assert lip['delta']['AP_S']['n'] == 2 and lip['delta']['AP_S']['mean'] == pytest.approx(0.02)
    # one seed only: a spread, no interval
    assert agg['methods']['Soft']['metrics']['AP']['n'] == 1
    assert agg['methods']['Soft']['delta']['AP'] is None


def test_markdown_tables(tmp_path):
    agg = aggregate(_runs(), ['AP', 'AP_S'])
    md = format_markdown(agg, ['AP', 'AP_S'])
    lines = md.splitlines()
    assert lines[0] == '| method | seeds | AP | AP_S |'
    assert lines[2] == '| R18 | 3 | 50.0 ± 2.0 | 42.0 ± 2.8 |'
    lip_row = [line for line in lines if line.startswith('| LIP |') and 'Δ' not in line][-1]
    assert lip_row.startswith('| LIP | +1.7 [') and '(2/3)' in lip_row
    assert '| Soft | n/a | n/a |' in md
    assert '95 % t-interval' in md


def test_per_class_deltas():
    pc = {'A': {0: {'disc': {'AP_S': 0.2}, 'ring': {'AP_S': 0.5}},
                1: {'disc': {'AP_S': 0.3}, 'ring': {'AP_S': 0.5}}},
          'B': {0: {'disc': {'AP_S': 0.4}, 'ring': {'AP_S': 0.4}},
                1: {'disc': {'AP_S': 0.4}, 'ring': {'AP_S': 0.5}}}}
    out = per_class_deltas(pc)
    assert out['B']['disc']['mean'] == pytest.approx(0.15)
    assert out['B']['ring']['mean'] == pytest.approx(-0.05) and out['B']['ring']['losses'] == 1


def test_plot_is_a_readable_png_with_metadata(tmp_path):
    from PIL import Image
    runs = {k: {s: dict(m, AP_tiny=0.3) for s, m in v.items()} for k, v in _runs().items()}
    agg = aggregate(runs, ['AP', 'AP_S', 'AP_tiny'])
    path = tmp_path / 'plot.png'
    plot_comparison(runs, agg, str(path), metadata={'Software': 'me'})
    with Image.open(path) as im:
        assert im.format == 'PNG' and im.size[0] > 600 and im.info['Software'] == 'me'
        assert np.asarray(im.convert('L')).std() > 5  # something is drawn


# ---------------------------------------------------------------------------------- AP_tiny

def _gt(tmp_path):
    images = [{'id': i, 'file_name': f'{i}.png', 'width': 300, 'height': 300} for i in (1, 2)]
    anns = []
    for img in (1, 2):  # per image: two tiny (10x10, 16x16), one small (24x24), one large
        for x, side in ((5, 10), (40, 16), (80, 24), (120, 100)):
            anns.append({'id': len(anns) + 1, 'image_id': img, 'category_id': 1,
                         'bbox': [x, 5, side, side], 'area': side * side, 'iscrowd': 0})
    path = tmp_path / 'gt.json'
    path.write_text(json.dumps({'images': images, 'annotations': anns,
                                'categories': [{'id': 1, 'name': 'thing'}]}))
    return str(path), anns


def test_ap_tiny_counts_objects_up_to_16_squared(tmp_path):
    gt_file, anns = _gt(tmp_path)

    def run(keep, name):
        dets = [{'image_id': a['image_id'], 'category_id': 1, 'bbox': a['bbox'], 'score': 0.9}
                for a in anns if keep(a)]
        path = tmp_path / f'{name}.bbox.json'
        path.write_text(json.dumps(dets))
        return str(path)

    only_tiny = run(lambda a: a['area'] <= 256, 'tiny')
    no_tiny = run(lambda a: a['area'] > 256, 'notiny')
    runs, sizes = compare_runs(gt_file, [only_tiny, no_tiny], per_class=True)
    assert sizes == {'small': 6, 'medium': 0, 'large': 2, 'tiny': 4}
    assert 'AP_tiny' in METRICS
    tiny, notiny = runs[0].metrics, runs[1].metrics
    assert tiny['AP_tiny'] == pytest.approx(1.0) and notiny['AP_tiny'] == 0.0
    # AP_S covers the 16x16 boundary case and the 24x24 box: 4 of 6 small found
    assert tiny['AP_S'] < 1.0 and notiny['AP_S'] < 1.0
    assert runs[0].per_class['thing']['AP_tiny'] == pytest.approx(1.0)
    # COCO's own ranges are untouched by the extra one
    assert tiny['AP_L'] == 0.0 and notiny['AP_L'] == pytest.approx(1.0)
