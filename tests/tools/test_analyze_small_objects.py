"""The small-object comparison table, on a tiny GT whose COCO numbers can be predicted by hand."""
from __future__ import annotations

import json
import os
import pickle

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lip_det.evaluation import compare_runs, format_table
from lip_det.evaluation.small_objects import evaluate_detections, find_results_file

from .tool_loader import load_tool

# Category ids deliberately non-contiguous and listed out of id order: mmdet's label i is the
# i-th category *in file order*, which the pickle path must reproduce.
CATEGORIES = [{'id': 7, 'name': 'square'}, {'id': 3, 'name': 'disc'}]
SIZES = {'small': 16, 'medium': 48, 'large': 128}  # areas 256 < 32², 2304 < 96², 16384


def _gt_dataset(num_images=3):
    images, anns = [], []
    for img_id in range(1, num_images + 1):
        images.append({'id': img_id, 'file_name': f'{img_id}.png', 'width': 400, 'height': 400})
        for row, cat in enumerate(CATEGORIES):
            x = 5
            for size_name, side in SIZES.items():
                # image 3 has no large disc: per-class counts differ between classes
                if img_id == 3 and cat['id'] == 3 and size_name == 'large':
                    continue
                y = 5 + row * 200
                anns.append({'id': len(anns) + 1, 'image_id': img_id, 'category_id': cat['id'],
                             'bbox': [x, y, side, side], 'area': side * side, 'iscrowd': 0,
                             'size': size_name})
                x += side + 10
    return {'images': images, 'annotations': anns, 'categories': CATEGORIES}


@pytest.fixture(scope='module')
def gt_file(tmp_path_factory):
    path = tmp_path_factory.mktemp('gt') / 'instances_val.json'
    data = _gt_dataset()
    with open(path, 'w') as f:  # the 'size' helper field is ours; COCO ignores unknown fields
        json.dump(data, f)
    return str(path)


@pytest.fixture(scope='module')
def gt(gt_file):
    from pycocotools.coco import COCO
    return COCO(gt_file)


def _perfect(gt, keep=lambda ann: True, score=lambda ann: 1.0):
    return [{'image_id': a['image_id'], 'category_id': a['category_id'], 'bbox': list(a['bbox']),
             'score': score(a)} for a in gt.dataset['annotations'] if keep(a)]


def _write(path, dets):
    with open(path, 'w') as f:
        json.dump(dets, f)
    return str(path)


def _expected_ap(recalls):
    """COCO's 101-point AP when precision is 1 up to `recall` and nothing after, averaged over classes.

    A class with recall 0 scores 0 (no threshold is reached, not even recall 0).
    """
    thresholds = np.linspace(0.0, 1.00, int(np.round((1.00 - 0.0) / 0.01)) + 1)
    return float(np.mean([(thresholds <= r + 1e-12).sum() / len(thresholds) if r > 0 else 0.0
                          for r in recalls]))


def test_perfect_detections_score_one(gt):
    metrics, per_class, summary = evaluate_detections(gt, _perfect(gt), per_class=True)
    assert metrics == {m: pytest.approx(1.0) for m in metrics}
    assert set(per_class) == {'square', 'disc'}
    assert all(v == pytest.approx(1.0) for row in per_class.values() for v in row.values())
    assert 'Average Precision  (AP) @[ IoU=0.50:0.95 | area= small | maxDets=100 ] = 1.000' in summary


def test_dropping_small_objects_zeroes_ap_s_only(gt):
    dets = _perfect(gt, keep=lambda a: a['size'] != 'small')
    metrics, per_class, _ = evaluate_detections(gt, dets, per_class=True)
    assert metrics['AP_S'] == 0.0
    assert metrics['AP_M'] == pytest.approx(1.0) and metrics['AP_L'] == pytest.approx(1.0)
    # square: 9 objects, 3 small -> recall 6/9; disc: 8 objects, 3 small -> recall 5/8
    assert metrics['AP'] == pytest.approx(_expected_ap([6 / 9, 5 / 8]))
    assert metrics['AP50'] == metrics['AP75'] == pytest.approx(metrics['AP'])
    assert per_class['disc']['AP'] == pytest.approx(_expected_ap([5 / 8]))
    assert per_class['square']['AP_S'] == 0.0 and per_class['square']['AP_L'] == pytest.approx(1.0)


def test_localisation_error_separates_ap50_from_ap75(gt):
    # boxes shifted by 20% of their side: IoU = 0.8/1.2 = 0.667, a hit at 0.5 but not at 0.75
    dets = _perfect(gt)
    for d in dets:
        d['bbox'][0] += 0.2 * d['bbox'][2]
    metrics, _, _ = evaluate_detections(gt, dets)
    assert metrics['AP50'] == pytest.approx(1.0) and metrics['AP75'] == 0.0
    # IoU thresholds 0.50, 0.55, 0.60, 0.65 of the ten hit: AP = 4/10
    assert metrics['AP'] == pytest.approx(0.4)


@settings(max_examples=20)
@given(drop=st.lists(st.booleans(), min_size=17, max_size=17),
       false_positives=st.integers(0, 5), seed=st.integers(0, 2 ** 16))
def test_ap_formula_under_random_misses_and_low_score_false_positives(gt, drop, false_positives, seed):
    anns = gt.dataset['annotations']
    kept = {a['id'] for a, d in zip(anns, drop) if not d}
    rng = np.random.default_rng(seed)
    dets = _perfect(gt, keep=lambda a: a['id'] in kept, score=lambda a: 0.5 + 0.5 * rng.random())
    for i in range(false_positives):  # scored below every hit: precision of found objects stays 1
        dets.append({'image_id': 1 + i % 3, 'category_id': CATEGORIES[i % 2]['id'],
                     'bbox': [300.0, 300.0, 40.0, 40.0], 'score': 0.1 * rng.random()})
    metrics, _, _ = evaluate_detections(gt, dets)
    recalls, small_recalls = [], []
    for cat in CATEGORIES:
        cat_anns = [a for a in anns if a['category_id'] == cat['id']]
        recalls.append(sum(a['id'] in kept for a in cat_anns) / len(cat_anns))
        small = [a for a in cat_anns if a['size'] == 'small']
        small_recalls.append(sum(a['id'] in kept for a in small) / len(small))
    assert metrics['AP'] == pytest.approx(_expected_ap(recalls))
    assert metrics['AP_S'] == pytest.approx(_expected_ap(small_recalls))


def test_table_shows_deltas_against_the_first_run(gt_file, gt, tmp_path):
    base = _write(tmp_path / 'baseline.bbox.json', _perfect(gt, keep=lambda a: a['size'] != 'small'))
    better = _write(tmp_path / 'lip.bbox.json', _perfect(gt))
    runs, sizes = compare_runs(gt_file, [base, better], per_class=True)
    assert sizes == {'small': 6, 'medium': 6, 'large': 5, 'tiny': 6}
    assert [r.name for r in runs] == ['baseline', 'lip']
    table = format_table(runs, per_class=True)
    lines = {line.split()[0]: line.split() for line in table.splitlines()[:8] if line.strip()}
    assert lines['AP_S'][1:] == ['0.000', '1.000', '(+1.000)']
    assert lines['AP_L'][1:] == ['1.000', '1.000', '(+0.000)']
    ap = _expected_ap([6 / 9, 5 / 8])
    assert lines['AP'][1:] == [f'{ap:.3f}', '1.000', f'({1 - ap:+.3f})']
    assert 'AP_S per class' in table and 'disc' in table


def test_missing_size_range_is_na(tmp_path):
    from pycocotools.coco import COCO
    data = _gt_dataset(1)
    data['annotations'] = [a for a in data['annotations'] if a['size'] != 'large']
    path = _write(tmp_path / 'gt.json', data)
    runs, _ = compare_runs(path, [_write(tmp_path / 'a.json', _perfect(COCO(path)))] * 2,
                           names=['a', 'b'])
    assert runs[0].metrics['AP_L'] == -1.0
    row = [line for line in format_table(runs).splitlines() if line.startswith('AP_L')][0]
    assert row.split()[1:] == ['n/a', 'n/a']


def _mmdet_samples(gt, dets):
    """What `tools/test.py --out x.pkl` writes: mmdet data samples with xyxy boxes and labels."""
    label_of = {c['id']: i for i, c in enumerate(CATEGORIES)}
    samples = []
    for img in gt.dataset['images']:
        mine = [d for d in dets if d['image_id'] == img['id']]
        boxes = torch.tensor([[x, y, x + w, y + h] for x, y, w, h in (d['bbox'] for d in mine)])
        samples.append({'img_id': img['id'], 'img_path': img['file_name'], 'ori_shape': (400, 400),
                        'scale_factor': (1.0, 1.0), 'homography_matrix': np.eye(3, dtype=np.float32),
                        'pred_instances': {
                            'bboxes': boxes.reshape(-1, 4).float(),
                            'scores': torch.tensor([d['score'] for d in mine]),
                            'labels': torch.tensor([label_of[d['category_id']] for d in mine],
                                                   dtype=torch.long)}})
    return samples


def test_mmdet_pickle_and_work_dirs(gt_file, gt, tmp_path):
    dets = _perfect(gt, keep=lambda a: a['size'] != 'medium')
    work = tmp_path / 'work_dir'
    (work / 'old').mkdir(parents=True)
    with open(work / 'old' / 'results.pkl', 'wb') as f:
        pickle.dump(_mmdet_samples(gt, _perfect(gt)), f)
    os.utime(work / 'old' / 'results.pkl', (1, 1))  # older than the file below
    import mmengine
    # what DumpDetResults does: mmengine.dump, i.e. a protocol-2 pickle (bytes via _codecs.encode)
    mmengine.dump(_mmdet_samples(gt, dets), str(work / 'results.pkl'))
    as_json = _write(tmp_path / 'same.bbox.json', dets)
    runs, _ = compare_runs(gt_file, [as_json, str(work)])
    assert runs[1].source == str(work / 'results.pkl')
    assert runs[1].num_detections == len(dets)
    for m in runs[0].metrics:  # label -> category id and xyxy -> xywh are what mmdet does
        assert runs[1].metrics[m] == pytest.approx(runs[0].metrics[m]), m
    assert runs[1].metrics['AP_M'] == 0.0


def test_rejects_foreign_and_malformed_results(gt_file, gt, tmp_path):
    wrong_image = _perfect(gt)[:2]
    wrong_image[0]['image_id'] = 99
    with pytest.raises(ValueError, match='not in the ground truth.*another data set'):
        compare_runs(gt_file, [_write(tmp_path / 'x.json', wrong_image)])
    with pytest.raises(ValueError, match='not a COCO detection result'):
        compare_runs(gt_file, [_write(tmp_path / 'y.json', {'annotations': []})])
    (tmp_path / 'empty_dir').mkdir()
    with pytest.raises(FileNotFoundError, match='--out results.pkl'):
        find_results_file(str(tmp_path / 'empty_dir'))
    with pytest.raises(ValueError, match='one name per source'):
        compare_runs(gt_file, [_write(tmp_path / 'z.json', [])], names=['a', 'b'])


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, 'w'))


def test_result_pickles_cannot_run_code(gt_file, gt, tmp_path):
    marker = tmp_path / 'code-ran'
    samples = _mmdet_samples(gt, _perfect(gt))
    samples[0]['extra'] = _Payload(str(marker))
    with open(tmp_path / 'evil.pkl', 'wb') as f:
        pickle.dump(samples, f, protocol=2)
    with pytest.raises(Exception, match='refusing to unpickle global (builtins|io).open'):
        compare_runs(gt_file, [str(tmp_path / 'evil.pkl')])
    assert not marker.exists()


def test_no_detections_scores_zero(gt_file, tmp_path):
    runs, _ = compare_runs(gt_file, [_write(tmp_path / 'none.json', [])])
    assert runs[0].metrics == {m: 0.0 for m in runs[0].metrics}


def test_cli(gt_file, gt, tmp_path, capsys):
    base = _write(tmp_path / 'r50.bbox.json', _perfect(gt, keep=lambda a: a['size'] != 'small'))
    lip = _write(tmp_path / 'lip_r50.bbox.json', _perfect(gt))
    out_json = str(tmp_path / 'table.json')
    code = load_tool('analyze_small_objects').main(
        [base, lip, '--ann-file', gt_file, '--names', 'R50', 'LIP-R50', '--per-class',
         '--show-summary', '--json', out_json])
    out = capsys.readouterr().out
    assert code == 0
    assert '6 small, 6 medium, 5 large objects' in out
    assert any(line.split()[:4] == ['AP_S', '0.000', '1.000', '(+1.000)'] for line in out.splitlines())
    assert out.count('Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all') == 2
    payload = json.load(open(out_json))
    assert [r['name'] for r in payload['runs']] == ['R50', 'LIP-R50']
    assert payload['runs'][1]['metrics']['AP_S'] == pytest.approx(1.0)
    assert payload['runs'][0]['per_class']['square']['AP_S'] == 0.0

def test_cli_errors(gt_file, tmp_path, capsys):
    code = load_tool('analyze_small_objects').main([str(tmp_path / 'nope'), '--ann-file', gt_file])
    assert code == 1 and 'no such file or directory' in capsys.readouterr().err


def test_same_numbers_as_mmdet_coco_metric(gt_file, gt, tmp_path):
    """The table and mmdet's CocoMetric (what tools/test.py prints) agree on the same predictions."""
    from mmdet.evaluation import CocoMetric
    rng = np.random.default_rng(0)
    dets = _perfect(gt, score=lambda a: float(rng.random()))
    for d in dets:  # jitter boxes so that AP is neither 0 nor 1 and differs across IoU thresholds
        d['bbox'] = [v + float(rng.normal(0, 0.12 * d['bbox'][2])) for v in d['bbox'][:2]] + d['bbox'][2:]
    dets += [{'image_id': 1 + i % 3, 'category_id': CATEGORIES[i % 2]['id'], 'score': float(rng.random()),
              'bbox': [float(x) for x in rng.uniform(0, 300, 2)] + [30.0, 30.0]} for i in range(12)]
    samples = _mmdet_samples(gt, dets)
    metric = CocoMetric(ann_file=gt_file, metric='bbox')
    metric.dataset_meta = {'classes': tuple(c['name'] for c in CATEGORIES)}
    metric.process({}, [dict(s, ori_shape=(400, 400)) for s in samples])
    theirs = metric.compute_metrics(metric.results)
    with open(tmp_path / 'results.pkl', 'wb') as f:
        pickle.dump(samples, f)
    runs, _ = compare_runs(gt_file, [str(tmp_path / 'results.pkl')])
    ours = runs[0].metrics
    assert 0.1 < ours['AP'] < 0.9 and ours['AP50'] > ours['AP75']  # a non-trivial case
    for name, key in zip(('AP', 'AP50', 'AP75', 'AP_S', 'AP_M', 'AP_L'),
                         ('bbox_mAP', 'bbox_mAP_50', 'bbox_mAP_75', 'bbox_mAP_s', 'bbox_mAP_m', 'bbox_mAP_l')):
        assert round(ours[name], 3) == pytest.approx(theirs[key], abs=1e-9), name
