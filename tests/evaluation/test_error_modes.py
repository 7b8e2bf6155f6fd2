"""error_modes: each ground-truth object lands in the mode its detections say, per size range."""
from __future__ import annotations

import json

import pytest
from pycocotools.coco import COCO

from lip_det.evaluation.error_modes import error_modes


@pytest.fixture
def gt(tmp_path):
    anns = []
    # image 1: four tiny 10x10 objects of class 1, one medium 40x40 of class 2
    for k in range(4):
        anns.append({'image_id': 1, 'category_id': 1, 'bbox': [10 + 30 * k, 10, 10, 10],
                     'area': 100})
    anns.append({'image_id': 1, 'category_id': 2, 'bbox': [10, 100, 40, 40], 'area': 1600})
    anns.append({'image_id': 1, 'category_id': 2, 'bbox': [100, 100, 30, 30], 'area': 900,
                 'iscrowd': 1})  # crowd: not counted
    for i, a in enumerate(anns):
        a.update(id=i + 1, iscrowd=a.get('iscrowd', 0))
    path = tmp_path / 'gt.json'
    path.write_text(json.dumps({'images': [{'id': 1, 'width': 300, 'height': 300,
                                            'file_name': '1.png'}], 'annotations': anns,
                                'categories': [{'id': 1, 'name': 'a'}, {'id': 2, 'name': 'b'}]}))
    return COCO(str(path))


def test_each_mode(gt):
    dets = [
        {'image_id': 1, 'category_id': 1, 'bbox': [10, 10, 10, 10], 'score': 0.9},   # found
        {'image_id': 1, 'category_id': 2, 'bbox': [40, 10, 10, 10], 'score': 0.9},   # wrong class
        {'image_id': 1, 'category_id': 1, 'bbox': [73, 13, 10, 10], 'score': 0.9},   # IoU 0.32
        {'image_id': 1, 'category_id': 1, 'bbox': [100, 10, 10, 10], 'score': 0.2},  # below thr
        {'image_id': 1, 'category_id': 2, 'bbox': [10, 100, 40, 40], 'score': 0.6},  # found
    ]
    out = error_modes(gt, dets, score_thr=0.5)
    assert out['tiny'] == {'found': 0.25, 'wrong_class': 0.25, 'poor_box': 0.25, 'missed': 0.25,
                           'objects': 4}
    assert out['small'] == out['tiny']
    assert out['medium']['found'] == 1.0 and out['medium']['objects'] == 1
    assert out['large']['objects'] == 0 and out['large']['found'] != out['large']['found']  # NaN
    # a lower threshold lets the 0.2 detection find the fourth object
    assert error_modes(gt, dets, score_thr=0.1)['tiny']['found'] == 0.5


def test_a_correct_detection_wins_over_a_wrong_one(gt):
    dets = [{'image_id': 1, 'category_id': 2, 'bbox': [10, 10, 10, 10], 'score': 0.99},
            {'image_id': 1, 'category_id': 1, 'bbox': [10, 10, 10, 10], 'score': 0.6}]
    assert error_modes(gt, dets)['tiny']['found'] == 0.25


def test_bad_threshold(gt):
    with pytest.raises(ValueError, match='score_thr'):
        error_modes(gt, [], score_thr=1.5)
