"""tools/anchor_coverage.py on boxes whose best anchor IoU is known by hand."""
from __future__ import annotations

import json
import os

import pytest

from .tool_loader import REPO, load_tool

tool = load_tool('anchor_coverage')
CONFIG = os.path.join(REPO, 'configs', 'synthetic', 'faster_rcnn_r18_fpn_synthetic.py')


def test_an_8px_box_has_no_positive_anchor_and_a_grid_aligned_16px_box_a_perfect_one(tmp_path):
    # The synthetic configs' smallest anchors are 16x16 (ratios 0.5/1/2 of area 256), centred on
    # a 4-px grid: the 16x16 box at the origin matches one exactly, an 8x8 box reaches 64/256.
    anns = [{'id': 1, 'image_id': 1, 'category_id': 1, 'bbox': [0, 0, 16, 16], 'area': 256,
             'iscrowd': 0},
            {'id': 2, 'image_id': 1, 'category_id': 1, 'bbox': [100, 100, 8, 8], 'area': 64,
             'iscrowd': 0},
            {'id': 3, 'image_id': 1, 'category_id': 1, 'bbox': [40, 40, 128, 128],
             'area': 16384, 'iscrowd': 0}]
    path = tmp_path / 'gt.json'
    path.write_text(json.dumps({'images': [{'id': 1, 'width': 256, 'height': 256,
                                            'file_name': 'a.png'}], 'annotations': anns,
                                'categories': [{'id': 1, 'name': 'a'}]}))
    out = tool.anchor_coverage(CONFIG, str(path))
    assert out['min_pos_iou'] == 0.3 and out['pos_iou_thr'] == 0.7
    tiny = out['ranges']['tiny']
    assert tiny['objects'] == 2 and tiny['below_min_pos_iou'] == pytest.approx(0.5)
    assert out['ranges']['large']['objects'] == 1
    assert out['ranges']['large']['below_min_pos_iou'] == 0.0
    assert out['ranges']['medium']['objects'] == 0


def test_a_config_without_an_rpn_is_refused(tmp_path, capsys):
    cfg = tmp_path / 'c.py'
    cfg.write_text("model = dict(type='RetinaNet')\n")
    gt = tmp_path / 'gt.json'
    gt.write_text(json.dumps({'images': [], 'annotations': [], 'categories': []}))
    assert tool.main([str(cfg), '--ann-file', str(gt)]) == 1
    assert 'anchor_generator is needed' in capsys.readouterr().err
