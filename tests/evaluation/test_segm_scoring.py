"""Mask (iouType='segm') scoring beside the box one in the small-object table (issue 15)."""
from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import torch
from pycocotools import mask as mask_utils

from lip_det.evaluation import DetectionInputError, compare_runs, evaluate_detections, load_ground_truth
from lip_det.evaluation.small_objects import load_detections

from ..tools.tool_loader import load_tool

HEIGHT, WIDTH = 60, 80
# (image id, x, y, side): two tiny (<= 16²) and two other small objects per image
OBJECTS = [(img, x, y, side) for img in (1, 2)
           for x, y, side in ((2, 2, 8), (20, 4, 12), (40, 2, 28), (4, 30, 20))]
CATEGORIES = [{'id': 5, 'name': 'blob'}]


def _mask(x, y, side):
    m = np.zeros((HEIGHT, WIDTH), dtype=np.uint8)
    m[y:y + side, x:x + side] = 1
    return m


def _rle(x, y, side, as_str=True):
    rle = mask_utils.encode(np.asfortranarray(_mask(x, y, side)))
    return {'size': [int(v) for v in rle['size']],
            'counts': rle['counts'].decode('ascii') if as_str else rle['counts']}


def _gt_data(with_masks=True):
    anns = []
    for i, (img, x, y, side) in enumerate(OBJECTS):
        ann = {'id': i + 1, 'image_id': img, 'category_id': 5, 'bbox': [x, y, side, side],
               'area': side * side, 'iscrowd': 0}
        if with_masks:
            ann['segmentation'] = _rle(x, y, side)
        anns.append(ann)
    images = [{'id': i, 'file_name': f'{i}.png', 'height': HEIGHT, 'width': WIDTH} for i in (1, 2)]
    return {'images': images, 'annotations': anns, 'categories': CATEGORIES}


def _write(path, data):
    with open(path, 'w') as f:
        json.dump(data, f)
    return str(path)


@pytest.fixture
def gt_file(tmp_path):
    return _write(tmp_path / 'gt.json', _gt_data())


def _dets(shift=0.5, masks=True):
    """Perfect masks; boxes shifted right by shift * side (IoU 1/3 at 0.5: no bbox match)."""
    dets = []
    for img, x, y, side in OBJECTS:
        det = {'image_id': img, 'category_id': 5, 'bbox': [x + shift * side, y, side, side], 'score': 0.9}
        if masks:
            det['segmentation'] = _rle(x, y, side)
        dets.append(det)
    return dets


def test_masks_and_boxes_are_scored_separately(gt_file):
    gt = load_ground_truth(gt_file)
    segm, _, _ = evaluate_detections(gt, _dets(), iou_type='segm')
    bbox, _, _ = evaluate_detections(gt, _dets())
    assert segm['AP'] == pytest.approx(1.0)
    assert segm['AP_S'] == pytest.approx(1.0) and segm['AP_tiny'] == pytest.approx(1.0)
    assert bbox['AP'] == pytest.approx(0.0) and bbox['AP_S'] == pytest.approx(0.0)
    # the box numbers do not change because masks ride along
    assert bbox == evaluate_detections(gt, _dets(masks=False))[0]


def test_compare_runs_scores_masks_of_a_result_json(gt_file, tmp_path):
    runs, _ = compare_runs(gt_file, [_write(tmp_path / 'm.segm.json', _dets(shift=0.0)),
                                     _write(tmp_path / 'b.bbox.json', _dets(masks=False))])
    assert runs[0].metrics['AP'] == pytest.approx(1.0)
    assert runs[0].segm_metrics['AP_tiny'] == pytest.approx(1.0)
    assert runs[1].segm_metrics == {} and runs[1].segm_note == ''


def _mmdet_samples(dets):
    samples = []
    for img in (1, 2):
        mine = [d for d in dets if d['image_id'] == img]
        boxes = [[x, y, x + w, y + h] for x, y, w, h in (d['bbox'] for d in mine)]
        samples.append({'img_id': img, 'pred_instances': {
            'bboxes': torch.tensor(boxes, dtype=torch.float32),
            'scores': torch.tensor([d['score'] for d in mine]),
            'labels': torch.zeros(len(mine), dtype=torch.int64),
            # what DumpDetResults writes: encode_mask_results, RLE dicts with bytes counts
            'masks': [{'size': d['segmentation']['size'],
                       'counts': d['segmentation']['counts'].encode()} for d in mine]}})
    return samples


def test_mmdet_pickle_with_rle_masks(gt_file, tmp_path):
    import mmengine
    mmengine.dump(_mmdet_samples(_dets()), str(tmp_path / 'results.pkl'))
    runs, _ = compare_runs(gt_file, [str(tmp_path / 'results.pkl')])
    assert runs[0].segm_metrics['AP'] == pytest.approx(1.0)
    assert runs[0].metrics['AP'] == pytest.approx(0.0)
    found, dets = load_detections(str(tmp_path / 'results.pkl'), load_ground_truth(gt_file))
    assert isinstance(dets[0]['segmentation']['counts'], bytes)


def test_malformed_masks_are_one_line_errors(gt_file, tmp_path):
    dets = _dets()
    dets[3]['segmentation'] = {'size': [HEIGHT, WIDTH + 1], 'counts': dets[3]['segmentation']['counts']}
    path = _write(tmp_path / 'bad.json', dets)
    with pytest.raises(DetectionInputError) as info:
        compare_runs(gt_file, [path])
    assert str(info.value) == (
        f"{path!r}: entry 3: segmentation size [60, 81] is not the image's [height, width] [60, 80]; "
        "expected a COCO RLE {'size': [height, width] of the image, 'counts': str or bytes} "
        "(pycocotools.mask.encode, as mmdet's DumpDetResults writes)")
    for bad, problem in (({'size': [HEIGHT, WIDTH], 'counts': [1, 2]}, 'counts [1, 2] is not a str or bytes'),
                         ({'size': [HEIGHT, WIDTH], 'counts': '0'}, 'cover 0 pixels, not height * width = 4800'),
                         ({'size': [HEIGHT, WIDTH], 'counts': '~~'}, 'is not a valid compressed RLE string'),
                         ([1, 2, 3], 'is a list, not a dict')):
        dets = _dets()
        dets[1]['segmentation'] = bad
        with pytest.raises(DetectionInputError, match='entry 1: segmentation ') as info:
            compare_runs(gt_file, [_write(tmp_path / 'bad.json', dets)])
        assert problem in str(info.value) and '\n' not in str(info.value)
    dets = _dets()
    del dets[2]['segmentation']
    with pytest.raises(DetectionInputError, match="entry 2: has no 'segmentation'"):
        compare_runs(gt_file, [_write(tmp_path / 'bad.json', dets)])
    # in a pickle the error names the sample and prediction
    import mmengine
    samples = _mmdet_samples(_dets())
    samples[1]['pred_instances']['masks'][2]['counts'] = 12
    mmengine.dump(samples, str(tmp_path / 'bad.pkl'))
    with pytest.raises(DetectionInputError, match=r"item 1 \(img_id 2\) prediction 2 .*: segmentation "
                                                  r"counts 12 is not a str or bytes"):
        compare_runs(gt_file, [str(tmp_path / 'bad.pkl')])
    samples = _mmdet_samples(_dets())
    samples[0]['pred_instances']['masks'].pop()
    mmengine.dump(samples, str(tmp_path / 'bad.pkl'))
    with pytest.raises(DetectionInputError, match=r"item 0 pred_instances\['masks'\] holds 3 masks for 4 boxes"):
        compare_runs(gt_file, [str(tmp_path / 'bad.pkl')])


def test_gt_without_masks_scores_bbox_only(tmp_path, capsys):
    gt_file = _write(tmp_path / 'gt.json', _gt_data(with_masks=False))
    runs, _ = compare_runs(gt_file, [_write(tmp_path / 'm.json', _dets())])
    assert runs[0].segm_metrics == {}
    assert runs[0].segm_note == (f"ground truth {gt_file!r} has no 'segmentation' for annotations[0] "
                                 '(id 1): masks not scored, bbox only')
    code = load_tool('analyze_small_objects').main([str(tmp_path / 'm.json'), '--ann-file', gt_file])
    out = capsys.readouterr().out
    assert code == 0 and out.count('note: m: ') == 1 and 'segm' not in out.replace('segmentation', '')
    with pytest.raises(DetectionInputError, match="has no 'segmentation'"):
        evaluate_detections(load_ground_truth(gt_file), _dets(), iou_type='segm')


def test_malformed_gt_mask_is_refused(tmp_path):
    data = _gt_data()
    data['annotations'][1]['segmentation'] = [[1, 2, 3]]
    gt_file = _write(tmp_path / 'gt.json', data)
    with pytest.raises(DetectionInputError, match=r"annotations\[1\]: segmentation polygon \[1, 2, 3\] "
                                                  r"is not >= 3 finite"):
        compare_runs(gt_file, [_write(tmp_path / 'm.json', _dets())])
    # a bbox-only run never looks at the GT masks
    compare_runs(gt_file, [_write(tmp_path / 'b.json', _dets(masks=False))])


def test_cli_prints_segm_rows_and_json(gt_file, tmp_path, capsys):
    base = _write(tmp_path / 'boxes.bbox.json', _dets(shift=0.0, masks=False))
    masked = _write(tmp_path / 'mask_rcnn.segm.json', _dets())
    out_json = str(tmp_path / 'table.json')
    code = load_tool('analyze_small_objects').main(
        [base, masked, '--ann-file', gt_file, '--per-class', '--show-summary', '--json', out_json])
    out = capsys.readouterr().out
    assert code == 0
    rows = {line.split()[0] + ' ' + line.split()[1]: line.split()[2:] for line in out.splitlines()
            if line.startswith(('bbox ', 'segm ')) and not line.endswith('per class')}
    assert rows['bbox AP_S'] == ['1.000', '0.000', '(-1.000)']
    assert rows['segm AP_S'] == ['-', '1.000']
    assert rows['segm AP_tiny'] == ['-', '1.000']
    assert 'segm AP_tiny per class' in out and 'mask_rcnn: {}/mask_rcnn.segm.json (8 detections, with masks)'.format(tmp_path) in out
    payload = json.load(open(out_json))
    assert 'segm_metrics' not in payload['runs'][0]
    assert payload['runs'][1]['segm_metrics']['AP_S'] == pytest.approx(1.0)
    assert payload['runs'][1]['segm_per_class']['blob']['AP'] == pytest.approx(1.0)


# tools/analyze_small_objects.py's stdout before masks were scored, for the bbox-only run below
BBOX_ONLY_OUTPUT = '''\
ground truth: {dir}/gt.json (8 small, 0 medium, 0 large objects; 4 of the small are tiny, area <= 16²)
a: {dir}/a.bbox.json (8 detections)
b: {dir}/b.bbox.json (6 detections)

metric       a               b
-------  -----  --------------
AP       0.300  0.752 (+0.452)
AP50     1.000  0.752 (-0.248)
AP75     0.000  0.752 (+0.752)
AP_S     0.300  0.752 (+0.452)
AP_M       n/a             n/a
AP_L       n/a             n/a
AP_tiny  0.300  0.505 (+0.205)

AP per class
class      a               b
-----  -----  --------------
blob   0.300  0.752 (+0.452)

AP50 per class
class      a               b
-----  -----  --------------
blob   1.000  0.752 (-0.248)

AP75 per class
class      a               b
-----  -----  --------------
blob   0.000  0.752 (+0.752)

AP_S per class
class      a               b
-----  -----  --------------
blob   0.300  0.752 (+0.452)

AP_M per class
class    a    b
-----  ---  ---
blob   n/a  n/a

AP_L per class
class    a    b
-----  ---  ---
blob   n/a  n/a

AP_tiny per class
class      a               b
-----  -----  --------------
blob   0.300  0.505 (+0.205)
'''


def test_bbox_only_output_is_unchanged(gt_file, tmp_path, capsys):
    dets = _dets(shift=0.25, masks=False)
    dets[5]['score'] = 0.3
    a = _write(tmp_path / 'a.bbox.json', dets)
    b = _write(tmp_path / 'b.bbox.json', _dets(shift=0.0, masks=False)[2:])
    code = load_tool('analyze_small_objects').main([a, b, '--ann-file', gt_file, '--per-class'])
    out = capsys.readouterr().out.replace(str(tmp_path), '{dir}')
    assert code == 0
    assert out == BBOX_ONLY_OUTPUT
