"""Hostile input to the small-object scoring: every malformed result or GT file is one named error.

pycocotools scores a NaN box as a perfect match (AP = 1.000 for a file of NaN boxes) and crashes
with an IndexError/TypeError/AssertionError on most other malformed values; each case here must
instead raise DetectionInputError naming the file, the first bad entry and what is accepted, and
the CLI must print that one line and exit 1 without a traceback.
"""
from __future__ import annotations

import copy
import json
import math
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch

from lip_det.evaluation import METRICS, compare_runs, evaluate_detections, load_detections
from lip_det.evaluation.small_objects import DetectionInputError, load_ground_truth

from ..tools.tool_loader import load_tool, tool_path

# Category ids non-contiguous and out of id order, so the pickle path's label -> id map matters.
CATEGORIES = [{'id': 7, 'name': 'square'}, {'id': 3, 'name': 'disc'}]
BOX = "[x, y, width, height]: 4 finite numbers, width and height >= 0"
RESULT = "[{'image_id': int, 'category_id': int, 'bbox': [x, y, w, h], 'score': float}, ...]"
GT_DICT = "a COCO annotation dict with 'images', 'annotations' and 'categories' lists"


def _gt_data():
    images = [{'id': i, 'file_name': f'{i}.png', 'width': 200, 'height': 200} for i in (1, 2, 3)]
    anns = [{'id': k + 1, 'image_id': img['id'], 'category_id': cat['id'], 'area': 400.0, 'iscrowd': 0,
             'bbox': [10.0 + 100 * j, 10.0, 20.0, 20.0]}
            for k, (img, (j, cat)) in enumerate((img, jc) for img in images for jc in enumerate(CATEGORIES))]
    return {'images': images, 'annotations': anns, 'categories': copy.deepcopy(CATEGORIES)}


def _write_json(path, data):
    with open(path, 'w') as f:
        json.dump(data, f)  # allow_nan: json writes NaN/Infinity, and Python reads them back
    return str(path)


@pytest.fixture(scope='module')
def gt_file(tmp_path_factory):
    return _write_json(tmp_path_factory.mktemp('gt') / 'instances_val.json', _gt_data())


@pytest.fixture(scope='module')
def gt(gt_file):
    return load_ground_truth(gt_file)


def _perfect(gt):
    return [{'image_id': a['image_id'], 'category_id': a['category_id'], 'bbox': list(a['bbox']),
             'score': 0.9} for a in gt.dataset['annotations']]


def _with(gt, index, **fields):
    """The perfect detections with entry `index` changed."""
    dets = _perfect(gt)
    dets[index] = dict(dets[index], **fields)
    return dets


def _raises(fn, *args):
    with pytest.raises(DetectionInputError) as info:
        fn(*args)
    message = str(info.value)
    assert '\n' not in message and 'Traceback' not in message
    return message


# ---- result json -------------------------------------------------------------------------------

def test_all_nan_boxes_are_refused_not_scored_one(gt_file, gt, tmp_path):
    dets = [dict(d, bbox=[math.nan] * 4) for d in _perfect(gt)]
    path = _write_json(tmp_path / 'nan.bbox.json', dets)
    assert _raises(compare_runs, gt_file, [path]) == (
        f"{path!r}: entry 0: bbox [nan, nan, nan, nan] is not finite; expected {BOX}")


NON_FINITE = [math.nan, math.inf, -math.inf]


@pytest.mark.parametrize('value', NON_FINITE)
@pytest.mark.parametrize('coord', range(4))
def test_a_non_finite_coordinate_names_the_first_bad_entry(gt_file, gt, tmp_path, value, coord):
    box = [10.0, 10.0, 20.0, 20.0]
    box[coord] = value
    path = _write_json(tmp_path / 'r.json', _with(gt, 4, bbox=box))
    assert _raises(compare_runs, gt_file, [path]) == (
        f'{path!r}: entry 4: bbox {box!r} is not finite; expected {BOX}')


@pytest.mark.parametrize('box', [[10, 10, -1, 20], [10, 10, 20, -0.5], [10, 10, -20, -20]])
def test_negative_width_or_height_is_refused(gt_file, gt, tmp_path, box):
    path = _write_json(tmp_path / 'r.json', _with(gt, 1, bbox=box))
    assert _raises(compare_runs, gt_file, [path]) == (
        f'{path!r}: entry 1: bbox {box!r} has a negative width or height; expected {BOX}')


@pytest.mark.parametrize('box, problem', [
    ([1, 2, 3], 'has 3 values'), ([1, 2, 3, 4, 5], 'has 5 values'), ([], 'has 0 values'),
    ('1 2 3 4', 'is not a list'), (None, 'is not a list'), ({'x': 1}, 'is not a list'), (7, 'is not a list'),
    ([1, 2, '3', 4], 'holds a non-number'), ([1, 2, True, 4], 'holds a non-number'),
    ([1, 2, None, 4], 'holds a non-number'), ([1, 2, [3], 4], 'holds a non-number'),
    ([10 ** 400, 2, 3, 4], 'is not finite'),
])
def test_malformed_bbox_is_refused(gt_file, gt, tmp_path, box, problem):
    path = _write_json(tmp_path / 'r.json', _with(gt, 2, bbox=box))
    short = repr(box) if len(repr(box)) <= 80 else repr(box)[:77] + '...'
    assert _raises(compare_runs, gt_file, [path]) == (
        f'{path!r}: entry 2: bbox {short} {problem}; expected {BOX}')


@pytest.mark.parametrize('score', ['high', None, True, [0.5], {'p': 0.5}] + NON_FINITE)
def test_bad_score_is_refused(gt_file, gt, tmp_path, score):
    path = _write_json(tmp_path / 'r.json', _with(gt, 3, score=score))
    assert _raises(compare_runs, gt_file, [path]) == (
        f'{path!r}: entry 3: score {score!r} is not a finite number; expected a confidence such as 0.87')


@pytest.mark.parametrize('image_id', [[1], '1', None, True, False, 1.0, {'id': 1}])
def test_image_id_of_a_wrong_type_is_refused(gt_file, gt, tmp_path, image_id):
    path = _write_json(tmp_path / 'r.json', _with(gt, 0, image_id=image_id))
    assert _raises(compare_runs, gt_file, [path]) == (
        f'{path!r}: entry 0: image_id {image_id!r} is not an integer; '
        'expected the id of a ground-truth image')


def test_unknown_image_id_names_the_entry(gt_file, gt, tmp_path):
    path = _write_json(tmp_path / 'r.json', _with(gt, 5, image_id=99))
    assert _raises(compare_runs, gt_file, [path]) == (
        f'{path!r}: entry 5: image_id 99 is not in the ground truth (3 images): '
        'were these results made on another data set?')


@pytest.mark.parametrize('cat_id', ['7', None, True, [7], 7.0, 99, 0])
def test_category_id_of_a_wrong_type_or_unknown_is_refused(gt_file, gt, tmp_path, cat_id):
    path = _write_json(tmp_path / 'r.json', _with(gt, 1, category_id=cat_id))
    assert _raises(compare_runs, gt_file, [path]) == (
        f"{path!r}: entry 1: category_id {cat_id!r} is not one of the ground truth's category ids [3, 7]")


@pytest.mark.parametrize('entry, problem', [
    ([1, 7, [1, 2, 3, 4], 0.5], f'is a list, not a dict; expected {RESULT}'),
    ('detection', f'is a str, not a dict; expected {RESULT}'),
    (None, f'is a NoneType, not a dict; expected {RESULT}'),
    ({'image_id': 1, 'category_id': 7, 'bbox': [1, 2, 3, 4]}, f"has no 'score'; expected {RESULT}"),
    ({}, f"has no 'image_id'; expected {RESULT}"),
])
def test_entry_that_is_not_a_detection_is_refused(gt_file, gt, tmp_path, entry, problem):
    dets = _perfect(gt)
    dets.insert(3, entry)
    path = _write_json(tmp_path / 'r.json', dets)
    assert _raises(compare_runs, gt_file, [path]) == f'{path!r}: entry 3: {problem}'


@pytest.mark.parametrize('data, kind', [({'annotations': []}, 'dict'), ('results', 'str'), (3, 'int'),
                                        (None, 'NoneType')])
def test_result_file_that_is_not_a_list_is_refused(gt_file, tmp_path, data, kind):
    path = _write_json(tmp_path / 'r.json', data)
    assert _raises(compare_runs, gt_file, [path]) == (
        f'{path!r} holds a {kind}, not a COCO detection result list ({RESULT})')


@pytest.mark.parametrize('content, detail', [
    (b'[{"image_id": 1,', 'Expecting property name enclosed in double quotes: line 1 column 17 (char 16)'),
    (b'', 'Expecting value: line 1 column 1 (char 0)'),
    (b'[{"a": "\xff"}]', "'utf-8' codec can't decode byte 0xff in position 8: invalid start byte"),
    (b'[' * 100000, 'maximum recursion depth exceeded'),
])
def test_unreadable_result_json_names_the_file(gt_file, tmp_path, content, detail):
    path = tmp_path / 'r.bbox.json'
    path.write_bytes(content)
    message = _raises(compare_runs, gt_file, [str(path)])
    assert message.startswith(f'{str(path)!r} is not a readable JSON detection result list: {detail}')


def test_zero_area_boxes_are_scored_as_false_positives(gt):
    # mmdet's RoI head clamps boxes to the image without a size filter, so a real detector can
    # emit them: they are valid input, matched to nothing (IoU 0), never an error
    zero = [dict(d, bbox=[d['bbox'][0], d['bbox'][1], 0.0, 0.0]) for d in _perfect(gt)]
    assert evaluate_detections(gt, zero)[0]['AP'] == 0.0
    flat = [dict(d, bbox=[d['bbox'][0], d['bbox'][1], 20.0, 0.0], score=0.95) for d in _perfect(gt)]
    metrics = evaluate_detections(gt, _perfect(gt) + flat)[0]
    # every object is found, but only after a higher-scored false positive: precision 1/2
    assert metrics['AP50'] == pytest.approx(0.5, abs=0.01)


def test_valid_input_scores_as_before(gt_file, gt, tmp_path):
    no_gt = ('AP_M', 'AP_L', 'AP_tiny')  # every GT box is 20 x 20: small, not tiny (<= 16²)
    assert evaluate_detections(gt, _perfect(gt))[0] == {
        m: -1.0 if m in no_gt else pytest.approx(1.0) for m in METRICS}
    runs, _ = compare_runs(gt_file, [_write_json(tmp_path / 'none.json', [])])
    assert runs[0].metrics == {m: -1.0 if m in no_gt else 0.0 for m in METRICS}
    # ints, numpy scalars and tuples, as a caller's own list may hold them, are still accepted
    dets = [{'image_id': np.int64(d['image_id']), 'category_id': int(d['category_id']),
             'bbox': tuple(np.float32(v) for v in d['bbox']), 'score': np.float64(1)} for d in _perfect(gt)]
    assert evaluate_detections(gt, dets)[0]['AP'] == pytest.approx(1.0)


def test_evaluate_detections_checks_a_callers_list(gt):
    assert _raises(evaluate_detections, gt, _with(gt, 2, bbox=[math.nan] * 4)) == (
        f'detections: entry 2: bbox [nan, nan, nan, nan] is not finite; expected {BOX}')
    assert _raises(evaluate_detections, gt, {'bbox': []}) == (
        f'detections holds a dict, not a COCO detection result list ({RESULT})')


# ---- mmdet result pickle -----------------------------------------------------------------------

def _samples(gt, boxes_of=None, scores_of=None):
    """What `tools/test.py --out x.pkl` writes, with optional per-image box/score overrides."""
    label_of = {c['id']: i for i, c in enumerate(CATEGORIES)}
    samples = []
    for img in gt.dataset['images']:
        mine = [d for d in _perfect(gt) if d['image_id'] == img['id']]
        boxes = torch.tensor([[x, y, x + w, y + h] for x, y, w, h in (d['bbox'] for d in mine)])
        scores = torch.tensor([d['score'] for d in mine])
        if boxes_of and img['id'] in boxes_of:
            boxes = torch.tensor(boxes_of[img['id']], dtype=torch.float32).reshape(-1, 4)
        if scores_of and img['id'] in scores_of:
            scores = torch.tensor(scores_of[img['id']])
        samples.append({'img_id': img['id'], 'ori_shape': (200, 200), 'pred_instances': {
            'bboxes': boxes, 'scores': scores,
            'labels': torch.tensor([label_of[d['category_id']] for d in mine], dtype=torch.long)}})
    return samples


def _write_pickle(path, obj):
    with open(path, 'wb') as f:
        pickle.dump(obj, f)
    return str(path)


def test_pickle_of_nan_boxes_is_refused(gt_file, gt, tmp_path):
    nan = [math.nan] * 4
    path = _write_pickle(tmp_path / 'results.pkl', _samples(gt, boxes_of={i: [nan, nan] for i in (1, 2, 3)}))
    assert _raises(compare_runs, gt_file, [path]) == (
        f'{path!r}: item 0 (img_id 1) prediction 0 (x1, y1, x2, y2 [nan, nan, nan, nan]): '
        f'bbox [nan, nan, nan, nan] is not finite; expected {BOX}')


@pytest.mark.parametrize('bad, shown', [
    ([110.0, 10.0, 130.0, math.inf], '[110.0, 10.0, 20.0, inf]'),
    ([-math.inf, 10.0, 130.0, 30.0], '[-inf, 10.0, inf, 20.0]'),
])
def test_pickle_non_finite_corner_names_sample_and_prediction(gt_file, gt, tmp_path, bad, shown):
    # the message gives the sample and prediction of the box, in the file's own x1, y1, x2, y2
    good = [10.0, 10.0, 30.0, 30.0]
    path = _write_pickle(tmp_path / 'results.pkl', _samples(gt, boxes_of={2: [good, bad]}))
    assert _raises(load_detections, path, gt) == (
        f'{path!r}: item 1 (img_id 2) prediction 1 (x1, y1, x2, y2 {bad!r}): bbox {shown} is not finite; '
        f'expected {BOX}')


def test_pickle_box_with_x2_before_x1_is_refused(gt_file, gt, tmp_path):
    path = _write_pickle(tmp_path / 'results.pkl',
                         _samples(gt, boxes_of={3: [[10, 10, 30, 30], [130, 10, 110, 30]]}))
    assert _raises(load_detections, path, gt) == (
        f'{path!r}: item 2 (img_id 3) prediction 1 (x1, y1, x2, y2 [130.0, 10.0, 110.0, 30.0]): '
        f'bbox [130.0, 10.0, -20.0, 20.0] has a negative width or height; expected {BOX}')


@pytest.mark.parametrize('score', NON_FINITE)
def test_pickle_non_finite_score_is_refused(gt, tmp_path, score):
    path = _write_pickle(tmp_path / 'results.pkl', _samples(gt, scores_of={1: [0.9, score]}))
    message = _raises(load_detections, path, gt)
    assert message == (f'{path!r}: item 0 (img_id 1) prediction 1 (x1, y1, x2, y2 [110.0, 10.0, 130.0, '
                       f'30.0]): score {score!r} is not a finite number; expected a confidence such as 0.87')


SAMPLE = ("[{'img_id': int, 'pred_instances': {'bboxes': (N, 4) x1y1x2y2, 'scores': (N,), "
          "'labels': (N,) int}}, ...] as written by tools/test.py --out")


def _pred(**fields):
    return lambda sample: sample['pred_instances'].update(fields)


def _broken_sample(gt, change):
    samples = _samples(gt)
    change(samples[1])
    return samples


@pytest.mark.parametrize('change, problem', [
    (lambda s: s.pop('pred_instances'), 'is not an mmdet detection result (needs img_id and pred_instances)'),
    (lambda s: s.pop('img_id'), 'is not an mmdet detection result (needs img_id and pred_instances)'),
    (lambda s: s.update(img_id='2'), "img_id '2' is not an integer"),
    (lambda s: s.update(img_id=True), 'img_id True is not an integer'),
    (lambda s: s.update(img_id=2.0), 'img_id 2.0 is not an integer'),
    (lambda s: s['pred_instances'].pop('scores'),
     "pred_instances['scores'] is missing or not an array of numbers"),
    (_pred(bboxes=['a', 'b']),
     "pred_instances['bboxes'] is missing or not an array of numbers"),
    (_pred(bboxes=[[1, 2, 3, 4], [1, 2]]),
     "pred_instances['bboxes'] is missing or not an array of numbers"),
    (_pred(labels=torch.tensor([0.0, 1.0])),
     "pred_instances['labels'] is missing or not an array of integers"),
    (_pred(bboxes=torch.zeros(2, 3)), 'bboxes of shape (2, 3) is not (N, 4) x1, y1, x2, y2'),
    (_pred(bboxes=torch.zeros(8)), 'bboxes of shape (8,) is not (N, 4) x1, y1, x2, y2'),
    (_pred(scores=torch.ones(3)), 'scores (3,) and labels (2,) are not (2,), one per box'),
    (_pred(labels=torch.tensor([0, 2])),
     'prediction 1: label 2 is outside the 2 categories of the ground truth'),
    (_pred(labels=torch.tensor([-1, 0])),
     'prediction 0: label -1 is outside the 2 categories of the ground truth'),
])
def test_pickle_sample_that_is_not_an_mmdet_result_is_refused(gt, tmp_path, change, problem):
    path = _write_pickle(tmp_path / 'results.pkl', _broken_sample(gt, change))
    assert _raises(load_detections, path, gt) == f'{path!r}: item 1 {problem}; expected {SAMPLE}'


@pytest.mark.parametrize('data, kind', [({'img_id': 1}, 'dict'), ('x', 'str'), (None, 'NoneType')])
def test_pickle_that_is_not_a_list_is_refused(gt, tmp_path, data, kind):
    path = _write_pickle(tmp_path / 'results.pkl', data)
    assert _raises(load_detections, path, gt) == (
        f'{path!r} holds a {kind}, not a list of mmdet detection results ({SAMPLE})')


def test_pickle_with_empty_samples_still_scores(gt_file, gt, tmp_path):
    samples = _samples(gt)
    samples[0]['pred_instances'] = {'bboxes': torch.zeros(0, 4), 'scores': torch.zeros(0),
                                    'labels': torch.zeros(0, dtype=torch.long)}
    path = _write_pickle(tmp_path / 'results.pkl', samples)
    found, dets = load_detections(path, gt)
    assert found == path and len(dets) == 4
    assert {d['image_id'] for d in dets} == {2, 3}


# ---- ground truth ------------------------------------------------------------------------------

def test_results_list_passed_as_ground_truth(gt, tmp_path):
    path = _write_json(tmp_path / 'r.bbox.json', _perfect(gt))
    assert _raises(load_ground_truth, path) == (
        f'{path!r} holds a list (a detection result list? --ann-file takes the ground truth), not {GT_DICT}')


@pytest.mark.parametrize('content, detail', [
    (b'{"images": [x]}', 'Expecting value: line 1 column 13 (char 12)'),
    (b'', 'Expecting value: line 1 column 1 (char 0)'),
    (b'\x80\x02}q\x00.', "'utf-8' codec can't decode byte 0x80 in position 0: invalid start byte"),
])
def test_broken_ground_truth_json_names_the_file(tmp_path, content, detail):
    path = tmp_path / 'gt.json'
    path.write_bytes(content)
    assert _raises(load_ground_truth, str(path)) == (
        f'{str(path)!r} is not a readable JSON COCO annotation file: {detail}')


@pytest.mark.parametrize('data, problem', [
    ('gt', f'holds a str, not {GT_DICT}'),
    (None, f'holds a NoneType, not {GT_DICT}'),
    ({}, f"has no 'images'; expected {GT_DICT}"),
    ({'images': [], 'categories': []}, f"has no 'annotations'; expected {GT_DICT}"),
    ({'images': [], 'annotations': []}, f"has no 'categories'; expected {GT_DICT}"),
    ({'images': [], 'annotations': {}, 'categories': []}, f"has a dict as 'annotations'; expected {GT_DICT}"),
])
def test_ground_truth_that_is_not_a_coco_dict(tmp_path, data, problem):
    path = _write_json(tmp_path / 'gt.json', data)
    assert _raises(load_ground_truth, path) == f'{path!r} {problem}'


def _broken_gt(tmp_path, change):
    data = _gt_data()
    change(data)
    return _write_json(tmp_path / 'gt.json', data)


IDS = 'expected dicts with unique integer ids'


@pytest.mark.parametrize('change, problem', [
    (lambda d: d['images'][1].pop('id'), f'images[1] id None is not an integer; {IDS}'),
    (lambda d: d['images'][1].update(id='2'), f"images[1] id '2' is not an integer; {IDS}"),
    (lambda d: d['images'][1].update(id=True), f'images[1] id True is not an integer; {IDS}'),
    (lambda d: d['images'][2].update(id=1), f'images[2] id 1 is a duplicate; {IDS}'),
    (lambda d: d['images'].append('3.png'), f'images[3] is not a dict; {IDS}'),
    (lambda d: d['categories'][1].update(id=7), f'categories[1] id 7 is a duplicate; {IDS}'),
    (lambda d: d['categories'][0].pop('name'),
     "categories[0]: name None is not a string; expected {'id': int, 'name': str}"),
])
def test_ground_truth_images_and_categories(tmp_path, change, problem):
    path = _broken_gt(tmp_path, change)
    assert _raises(load_ground_truth, path) == f'{path!r}: {problem}'


ANN = ("expected {'id': int, 'image_id': int, 'category_id': int, 'bbox': [x, y, w, h], "
       "'area': number, 'iscrowd': 0 or 1}")


def _ann(**fields):
    return lambda d: d['annotations'][3].update(fields)


@pytest.mark.parametrize('change, problem', [
    (_ann(bbox=[1, 2, 3]), f'bbox [1, 2, 3] has 3 values; expected {BOX}'),
    (_ann(bbox=[1, 2, math.nan, 4]), f'bbox [1, 2, nan, 4] is not finite; expected {BOX}'),
    (_ann(bbox=[1, 2, math.inf, 4]), f'bbox [1, 2, inf, 4] is not finite; expected {BOX}'),
    (_ann(bbox=[1, 2, -3, 4]), f'bbox [1, 2, -3, 4] has a negative width or height; expected {BOX}'),
    (_ann(bbox=[1, 2, 'x', 4]), f"bbox [1, 2, 'x', 4] holds a non-number; expected {BOX}"),
    (_ann(bbox=None), f'bbox None is not a list; expected {BOX}'),
    (_ann(area=math.nan), 'area nan is not a finite number >= 0 (the size range of the object)'),
    (_ann(area=-1), 'area -1 is not a finite number >= 0 (the size range of the object)'),
    (_ann(area='400'), "area '400' is not a finite number >= 0 (the size range of the object)"),
    (lambda d: d['annotations'][3].pop('area'), f"has no 'area'; {ANN}"),
    (_ann(id=1), f'id 1 is not a unique integer; {ANN}'),
    (_ann(id=None), f'id None is not a unique integer; {ANN}'),
    (_ann(image_id=99), "image_id 99 is not the id of an entry of 'images'"),
    (_ann(image_id=[1]), "image_id [1] is not the id of an entry of 'images'"),
    (_ann(category_id='7'), "category_id '7' is not the id of an entry of 'categories'"),
    (_ann(iscrowd='yes'), "iscrowd 'yes' is not 0 or 1"),
    (_ann(iscrowd=2), 'iscrowd 2 is not 0 or 1'),
    (lambda d: d['annotations'].__setitem__(3, [1, 2, 3, 4]), f'is a list, not a dict; {ANN}'),
])
def test_ground_truth_annotation_with_a_bad_field(tmp_path, change, problem):
    path = _broken_gt(tmp_path, change)
    assert _raises(load_ground_truth, path) == f'{path!r}: annotations[3]: {problem}'


def test_ground_truth_zero_size_box_and_crowd_are_accepted(tmp_path):
    def change(d):
        d['annotations'][0].update(bbox=[5.0, 5.0, 0.0, 3.0], area=0.0)
        d['annotations'][1].update(iscrowd=1)
    gt = load_ground_truth(_broken_gt(tmp_path, change))
    assert len(gt.getAnnIds()) == 6


# ---- the CLI -----------------------------------------------------------------------------------

def _cli_cases(gt_file, gt, tmp_path):
    """(name, argv, text the one-line error must contain) for each class of hostile input."""
    nan = _write_json(tmp_path / 'nan.json', [dict(d, bbox=[math.nan] * 4) for d in _perfect(gt)])
    bbox3 = _write_json(tmp_path / 'bbox3.json', _with(gt, 0, bbox=[1, 2, 3]))
    high = _write_json(tmp_path / 'high.json', _with(gt, 1, score='high'))
    img_list = _write_json(tmp_path / 'imglist.json', _with(gt, 2, image_id=[1]))
    cat_str = _write_json(tmp_path / 'catstr.json', _with(gt, 3, category_id='7'))
    good = _write_json(tmp_path / 'good.json', _perfect(gt))
    broken_gt = tmp_path / 'broken_gt.json'
    broken_gt.write_bytes(b'{"images": [x]}')
    not_coco = _write_json(tmp_path / 'not_coco.json', {'images': []})
    bad_area = _broken_gt(tmp_path, _ann(area=math.nan))
    os.rename(bad_area, tmp_path / 'bad_area.json')
    nan_pkl = _write_pickle(tmp_path / 'nan.pkl', _samples(gt, boxes_of={1: [[math.nan] * 4] * 2}))
    gt_args = ['--ann-file', gt_file]
    return [
        ('nan boxes', [nan, *gt_args], f'{nan!r}: entry 0: bbox [nan, nan, nan, nan] is not finite'),
        ('3-number bbox', [bbox3, *gt_args], f'{bbox3!r}: entry 0: bbox [1, 2, 3] has 3 values'),
        ('score high', [high, *gt_args], f"{high!r}: entry 1: score 'high' is not a finite number"),
        ('image_id list', [img_list, *gt_args], f'{img_list!r}: entry 2: image_id [1] is not an integer'),
        ('category_id str', [cat_str, *gt_args], f"{cat_str!r}: entry 3: category_id '7' is not one"),
        ('results as GT', [good, '--ann-file', good], f'{good!r} holds a list (a detection result list?'),
        ('broken GT', [good, '--ann-file', str(broken_gt)], f'{str(broken_gt)!r} is not a readable JSON '
         'COCO annotation file: Expecting value: line 1 column 13'),
        ('GT not COCO', [good, '--ann-file', not_coco], f"{not_coco!r} has no 'annotations'"),
        ('GT bad area', [good, '--ann-file', str(tmp_path / 'bad_area.json')],
         f"{str(tmp_path / 'bad_area.json')!r}: annotations[3]: area nan is not a finite number"),
        ('nan pickle', [nan_pkl, '--ann-file', gt_file], f'{nan_pkl!r}: item 0 (img_id 1) prediction 0'),
    ]


def test_cli_prints_one_line_and_exits_1(gt_file, gt, tmp_path, capsys):
    main = load_tool('analyze_small_objects').main
    for name, argv, expected in _cli_cases(gt_file, gt, tmp_path):
        assert main(argv) == 1, name
        captured = capsys.readouterr()
        err = captured.err
        assert err.startswith('error: ') and err.endswith('\n') and err.count('\n') == 1, (name, err)
        assert expected in err and 'Traceback' not in err, (name, err)
        assert captured.out == '', name


def test_cli_process_exit_status_and_stderr(gt_file, gt, tmp_path):
    cases = {name: (argv, expected) for name, argv, expected in _cli_cases(gt_file, gt, tmp_path)}
    for name in ('nan boxes', 'results as GT', 'nan pickle'):
        argv, expected = cases[name]
        proc = subprocess.run([sys.executable, tool_path('analyze_small_objects'), *argv],
                              capture_output=True, text=True, timeout=240)
        assert proc.returncode == 1, (name, proc.stderr)
        assert proc.stderr.startswith('error: ') and proc.stderr.count('\n') == 1, (name, proc.stderr)
        assert expected in proc.stderr and 'Traceback' not in proc.stderr, name


def test_cli_unwritable_json_output_is_one_line(gt_file, gt, tmp_path, capsys):
    good = _write_json(tmp_path / 'good.json', _perfect(gt))
    out_dir = tmp_path / 'out'
    out_dir.mkdir()
    assert load_tool('analyze_small_objects').main([good, '--ann-file', gt_file, '--json', str(out_dir)]) == 1
    err = capsys.readouterr().err
    assert err == f'error: --json: [Errno 21] Is a directory: {str(out_dir)!r}\n'
