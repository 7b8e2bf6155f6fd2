"""The small-object gain table: COCO AP / AP50 / AP75 / AP_S / AP_M / AP_L / AP_tiny of detectors.

All runs are scored with pycocotools against one ground-truth file, so the deltas compare like
with like. A run is given as a COCO result json (``[{'image_id', 'category_id', 'bbox',
'score'}, ...]``, e.g. what mmdet's ``CocoMetric(outfile_prefix=...)`` writes as
``<prefix>.bbox.json``), as the pickle of ``tools/test.py --out results.pkl``, or as a work dir
containing either (the newest one is used).

Every entry of a run and of the ground truth is checked before pycocotools sees it (which would
score NaN boxes as perfect matches and crash on most other malformed values): a malformed file
raises DetectionInputError, one line naming the file, the first bad entry and what is accepted.

When a run carries instance masks (a COCO result json whose entries have an RLE
``'segmentation'``, or a pickle whose ``pred_instances['masks']`` holds the RLE dicts that mmdet's
DumpDetResults writes), the masks are also scored with ``iouType='segm'`` against the same ground
truth, which then needs ``'segmentation'`` annotations (without them only boxes are scored, and
the run's ``segm_note`` says why).

``AP_tiny`` is an area range of our own beside COCO's three: objects with area <= 16² (COCO's
small range is <= 32²), where downsampling loses the most and learned pooling should matter most.
"""
from __future__ import annotations

import bisect
import contextlib
import glob
import io
import json
import math
import numbers
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

__all__ = ['METRICS', 'TINY_MAX_AREA', 'RunResult', 'DetectionInputError', 'find_results_file',
           'load_ground_truth', 'load_detections', 'evaluate_detections',
           'compare_runs', 'format_table', 'gt_size_counts']

# Column names; the first six are COCOeval.stats[:6], AP_tiny is read from the extra area range.
METRICS: Tuple[str, ...] = ('AP', 'AP50', 'AP75', 'AP_S', 'AP_M', 'AP_L', 'AP_tiny')
# pycocotools compares areas inclusively (area <= hi), as it does for its own 'small' [0, 32²].
TINY_MAX_AREA = 16 ** 2

# For per-class numbers: (IoU-threshold index or None for the 0.50:0.95 mean, area-range index)
# into COCOeval.eval['precision'][T, R, K, A, M], matching COCOeval.summarize at maxDets=100.
_PRECISION_SLICES: Dict[str, Tuple[Optional[int], int]] = {
    'AP': (None, 0), 'AP50': (0, 0), 'AP75': (5, 0), 'AP_S': (None, 1), 'AP_M': (None, 2),
    'AP_L': (None, 3), 'AP_tiny': (None, 4)}


@dataclass
class RunResult:
    """COCO numbers of one run (-1.0 = no ground truth in that size range, as in pycocotools)."""

    name: str
    source: str
    num_detections: int
    metrics: Dict[str, float]
    per_class: Dict[str, Dict[str, float]] = field(default_factory=dict)
    summary: str = ''
    # Filled only for a run with instance masks that the ground truth's masks could score.
    segm_metrics: Dict[str, float] = field(default_factory=dict)
    segm_per_class: Dict[str, Dict[str, float]] = field(default_factory=dict)
    segm_summary: str = ''
    segm_note: str = ''  # one line: why a run's masks were not scored ('' when they were or none)


class DetectionInputError(ValueError):
    """A result or ground-truth file (or list) that cannot be scored; the message names the entry."""


# What is accepted, quoted in every refusal so a user can see how to fix the file.
_RESULT_KEYS = ('image_id', 'category_id', 'bbox', 'score')
_RESULT_FORMAT = "[{'image_id': int, 'category_id': int, 'bbox': [x, y, w, h], 'score': float}, ...]"
# Zero width/height is accepted: mmdet's RoI head clamps boxes to the image without a size
# filter, so a trained detector can emit them, and pycocotools scores them correctly (IoU 0).
_BOX_FORMAT = '[x, y, width, height]: 4 finite numbers, width and height >= 0'
_GT_FORMAT = "a COCO annotation dict with 'images', 'annotations' and 'categories' lists"
_SAMPLE_FORMAT = ("[{'img_id': int, 'pred_instances': {'bboxes': (N, 4) x1y1x2y2, 'scores': (N,), "
                  "'labels': (N,) int}}, ...] as written by tools/test.py --out")
_MASK_FORMAT = ("a COCO RLE {'size': [height, width] of the image, 'counts': str or bytes} "
                "(pycocotools.mask.encode, as mmdet's DumpDetResults writes)")


def _short(value: Any, limit: int = 80) -> str:
    """repr of a value, cut so that a hostile file cannot make an error message huge."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + '...'


# The exact-type tests first are a fast path (checks run per detection, often 10^5-10^6 of them).
_PLAIN_NUMBERS = frozenset((float, int))


def _is_int(value: Any) -> bool:
    # bool is an int subclass, but True as an id means a broken writer, not image 1
    return type(value) is int or (isinstance(value, numbers.Integral)
                                  and not isinstance(value, (bool, np.bool_)))


def _is_real(value: Any) -> bool:
    return type(value) in (float, int) or (isinstance(value, numbers.Real)
                                           and not isinstance(value, (bool, np.bool_)))


def _is_finite(value: Any) -> bool:
    try:
        return math.isfinite(value)
    except OverflowError:  # an int beyond float range, e.g. 10**400 in a json
        return False


def _box_problem(box: Any) -> Optional[str]:
    """Why box is not an accepted [x, y, w, h] (None when it is)."""
    if type(box) is list and len(box) == 4 and {type(v) for v in box} <= _PLAIN_NUMBERS:
        # the common case, checked without the slower ABC isinstance tests below
        x, y, w, h = box
        if not (_is_finite(x) and _is_finite(y) and _is_finite(w) and _is_finite(h)):
            return 'is not finite'
        return 'has a negative width or height' if w < 0 or h < 0 else None
    if (isinstance(box, (str, bytes)) or not isinstance(box, (Sequence, np.ndarray))
            or getattr(box, 'ndim', 1) != 1):
        return 'is not a list'
    if len(box) != 4:
        return f'has {len(box)} values'
    if not all(_is_real(v) for v in box):
        return 'holds a non-number'
    if not all(_is_finite(v) for v in box):
        return 'is not finite'
    if box[2] < 0 or box[3] < 0:
        return 'has a negative width or height'
    return None


def _rle_counts_total(counts: Any) -> Optional[int]:
    """Sum of the run lengths of a compressed COCO RLE string (None when it is malformed).

    The decoding of pycocotools' rleFrString, in Python: pycocotools itself does no checks and
    writes past its buffer when the runs do not add up to height * width.
    """
    if isinstance(counts, bytes):
        try:
            counts = counts.decode('ascii')
        except UnicodeDecodeError:
            return None
    runs: List[int] = []
    total, x, k = 0, 0, 0
    for ch in counts:
        c = ord(ch) - 48
        if not 0 <= c < 64:
            return None
        x |= (c & 0x1f) << (5 * k)
        k += 1
        if c & 0x20:
            continue
        if c & 0x10:
            x |= -1 << (5 * k)
        if len(runs) > 2:
            x += runs[-2]
        if x < 0:
            return None
        runs.append(x)
        total += x
        x, k = 0, 0
    return None if k else total


def _mask_problem(rle: Any, image_size: Optional[Tuple[Any, Any]]) -> Optional[str]:
    """Why rle is not an accepted compressed COCO RLE of an image of image_size (h, w), or None."""
    if not isinstance(rle, Mapping):
        return f'is a {type(rle).__name__}, not a dict'
    if 'size' not in rle or 'counts' not in rle:
        return f"has no {'size' if 'size' not in rle else 'counts'!r}"
    size, counts = rle['size'], rle['counts']
    if (isinstance(size, (str, bytes)) or not isinstance(size, (Sequence, np.ndarray))
            or len(size) != 2 or not all(_is_int(v) and v >= 0 for v in size)):
        return f'size {_short(size)} is not [height, width]'
    if image_size is not None and all(_is_int(v) for v in image_size) \
            and (int(size[0]), int(size[1])) != (int(image_size[0]), int(image_size[1])):
        return (f'size {_short([int(v) for v in size])} is not the image\'s [height, width] '
                f'{[int(v) for v in image_size]}')
    if not isinstance(counts, (str, bytes)):
        return f'counts {_short(counts)} is not a str or bytes'
    total = _rle_counts_total(counts)
    if total is None:
        return f'counts {_short(counts)} is not a valid compressed RLE string'
    if total != int(size[0]) * int(size[1]):
        return f'counts {_short(counts)} cover {total} pixels, not height * width = {int(size[0]) * int(size[1])}'
    return None


def _image_sizes(gt: Any) -> Dict[int, Tuple[Any, Any]]:
    """GT image id -> (height, width) as the file gives them (None where absent)."""
    return {img['id']: (img.get('height'), img.get('width')) for img in gt.dataset['images']}


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _read_json(path: str, what: str) -> Any:
    """json.load of path; a malformed file is one DetectionInputError line naming it."""
    try:
        with open(path, 'rb') as f:  # bytes: json detects UTF-8/16/32 itself, whatever the locale
            return json.load(f)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError, deep nesting
        raise DetectionInputError(f'{path!r} is not a readable JSON {what}: {_first_line(exc)}') from None


def _check_detections(dets: Any, gt: Any, source: str,
                      where: Optional[Callable[[int], str]] = None) -> List[Dict[str, Any]]:
    """Clean copies of COCO detection results, or DetectionInputError naming the first bad entry.

    The one check of every run, from a json, a pickle or a caller's list: pycocotools takes NaN
    boxes as perfect matches and crashes on most other malformed values.
    """
    if not isinstance(dets, (list, tuple)):
        raise DetectionInputError(f'{source} holds a {type(dets).__name__}, not a COCO detection '
                                  f'result list ({_RESULT_FORMAT})')
    where = where or (lambda i: f'entry {i}')
    image_ids, cat_ids = set(gt.getImgIds()), set(gt.getCatIds())
    # a run with masks has one for every detection (the first entry decides)
    with_masks = bool(dets) and isinstance(dets[0], Mapping) and 'segmentation' in dets[0]
    sizes = _image_sizes(gt) if with_masks else None
    clean = []
    for i, det in enumerate(dets):
        problem = _detection_problem(det, image_ids, cat_ids, sizes)
        if problem:
            raise DetectionInputError(f'{source}: {where(i)}: {problem}')
        entry = {'image_id': int(det['image_id']), 'category_id': int(det['category_id']),
                 'bbox': [float(v) for v in det['bbox']], 'score': float(det['score'])}
        if with_masks:
            rle = det['segmentation']
            entry['segmentation'] = {'size': [int(rle['size'][0]), int(rle['size'][1])],
                                     'counts': rle['counts']}
        clean.append(entry)
    return clean


def _detection_problem(det: Any, image_ids: set, cat_ids: set,
                       sizes: Optional[Dict[int, Tuple[Any, Any]]] = None) -> Optional[str]:
    """What is wrong with one detection result entry (None when nothing is).

    With ``sizes`` (GT image id -> (height, width)), the entry must also carry a mask.
    """
    if type(det) is not dict and not isinstance(det, Mapping):
        return f'is a {type(det).__name__}, not a dict; expected {_RESULT_FORMAT}'
    missing = [k for k in _RESULT_KEYS if k not in det]
    if missing:
        return f"has no {missing[0]!r}; expected {_RESULT_FORMAT}"
    image_id, cat_id, box, score = det['image_id'], det['category_id'], det['bbox'], det['score']
    if not _is_int(image_id):
        return f'image_id {_short(image_id)} is not an integer; expected the id of a ground-truth image'
    if image_id not in image_ids:
        return (f'image_id {_short(image_id)} is not in the ground truth ({len(image_ids)} images): '
                'were these results made on another data set?')
    if not _is_int(cat_id) or cat_id not in cat_ids:
        return (f'category_id {_short(cat_id)} is not one of the ground truth\'s category ids '
                f'{_short(sorted(cat_ids))}')
    box_problem = _box_problem(box)
    if box_problem:
        return f'bbox {_short(box)} {box_problem}; expected {_BOX_FORMAT}'
    if not _is_real(score) or not _is_finite(score):
        return f'score {_short(score)} is not a finite number; expected a confidence such as 0.87'
    if sizes is not None:
        if 'segmentation' not in det:
            return f"has no 'segmentation' (other entries have masks); expected {_MASK_FORMAT}"
        mask_problem = _mask_problem(det['segmentation'], sizes.get(image_id))
        if mask_problem:
            return f'segmentation {mask_problem}; expected {_MASK_FORMAT}'
    return None


def _check_ground_truth(data: Any, source: str) -> None:
    """DetectionInputError naming the first entry of a GT json that pycocotools would misread."""
    if not isinstance(data, dict):
        hint = ' (a detection result list? --ann-file takes the ground truth)' if isinstance(data, list) else ''
        raise DetectionInputError(f'{source} holds a {type(data).__name__}{hint}, not {_GT_FORMAT}')
    for key in ('images', 'annotations', 'categories'):
        if not isinstance(data.get(key), list):
            found = 'has no' if key not in data else f'has a {type(data[key]).__name__} as'
            raise DetectionInputError(f'{source} {found} {key!r}; expected {_GT_FORMAT}')
    image_ids = _unique_ids(data['images'], 'images', source)
    cat_ids = _unique_ids(data['categories'], 'categories', source)
    for i, cat in enumerate(data['categories']):
        if not isinstance(cat.get('name'), str):
            raise DetectionInputError(f"{source}: categories[{i}]: name {_short(cat.get('name'))} "
                                      "is not a string; expected {'id': int, 'name': str}")
    ann_ids: set = set()
    for i, ann in enumerate(data['annotations']):
        problem = _annotation_problem(ann, image_ids, cat_ids, ann_ids)
        if problem:
            raise DetectionInputError(f'{source}: annotations[{i}]: {problem}')
        ann_ids.add(ann['id'])


def _unique_ids(entries: List[Any], key: str, source: str) -> set:
    """The ids of GT images or categories; each must be a dict with its own integer id."""
    ids: set = set()
    for i, entry in enumerate(entries):
        ident = entry.get('id') if isinstance(entry, Mapping) else None
        if not _is_int(ident) or ident in ids:
            what = ('is not a dict' if not isinstance(entry, Mapping) else
                    f'id {_short(ident)} is ' + ('a duplicate' if _is_int(ident) else 'not an integer'))
            raise DetectionInputError(f'{source}: {key}[{i}] {what}; expected dicts with unique '
                                      'integer ids')
        ids.add(ident)
    return ids


def _annotation_problem(ann: Any, image_ids: set, cat_ids: set, ann_ids: set) -> Optional[str]:
    """What is wrong with one GT annotation for bbox evaluation (None when nothing is)."""
    accepted = ("expected {'id': int, 'image_id': int, 'category_id': int, 'bbox': [x, y, w, h], "
                "'area': number, 'iscrowd': 0 or 1}")
    if not isinstance(ann, Mapping):
        return f'is a {type(ann).__name__}, not a dict; {accepted}'
    missing = [k for k in ('id', 'image_id', 'category_id', 'bbox', 'area') if k not in ann]
    if missing:
        return f'has no {missing[0]!r}; {accepted}'
    # pycocotools keys its index by annotation id: a duplicate silently replaces another box
    if not _is_int(ann['id']) or ann['id'] in ann_ids:
        return f"id {_short(ann['id'])} is not a unique integer; {accepted}"
    if not _is_int(ann['image_id']) or ann['image_id'] not in image_ids:
        return f"image_id {_short(ann['image_id'])} is not the id of an entry of 'images'"
    if not _is_int(ann['category_id']) or ann['category_id'] not in cat_ids:
        return f"category_id {_short(ann['category_id'])} is not the id of an entry of 'categories'"
    box_problem = _box_problem(ann['bbox'])
    if box_problem:
        return f"bbox {_short(ann['bbox'])} {box_problem}; expected {_BOX_FORMAT}"
    area = ann['area']
    if not _is_real(area) or not _is_finite(area) or area < 0:
        return f'area {_short(area)} is not a finite number >= 0 (the size range of the object)'
    if 'iscrowd' in ann and not (isinstance(ann['iscrowd'], numbers.Integral) and ann['iscrowd'] in (0, 1)):
        return f"iscrowd {_short(ann['iscrowd'])} is not 0 or 1"
    return None


def load_ground_truth(ann_file: str) -> Any:
    """pycocotools COCO index of a checked COCO annotation json (DetectionInputError if malformed)."""
    from pycocotools.coco import COCO
    data = _read_json(ann_file, 'COCO annotation file')
    _check_ground_truth(data, repr(ann_file))
    gt = COCO()  # what COCO(ann_file) does, without reading the file a second time
    gt.dataset = data
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex()
    return gt


def find_results_file(path: str) -> str:
    """The result file for a json/pkl path or, for a work dir, the newest one inside it."""
    if os.path.isfile(path):
        return path
    if not os.path.isdir(path):
        raise FileNotFoundError(f'results {path!r}: no such file or directory')
    # escaped: a work dir named like 'run[1]' is a path, not a glob pattern
    candidates = [p for pattern in ('*.bbox.json', '*.pkl', '*.pickle')
                  for p in glob.glob(os.path.join(glob.escape(path), '**', pattern), recursive=True)]
    if not candidates:
        raise FileNotFoundError(
            f'work dir {path!r} holds no detection results (*.bbox.json from CocoMetric '
            f'outfile_prefix, or *.pkl from `tools/test.py CONFIG CKPT --out results.pkl`)')
    # newest wins; ties (same mtime) resolved by path so the choice is reproducible
    return max(candidates, key=lambda p: (os.path.getmtime(p), p))


def _category_order(gt: Any) -> List[int]:
    """Label index -> category id, as mmdet's CocoDataset builds it (GT file order)."""
    return [c['id'] for c in gt.dataset['categories']]


def _numeric_array(value: Any, kinds: str) -> Optional[np.ndarray]:
    """value as a numpy array of one of the dtype kinds, or None when it is not one."""
    if hasattr(value, 'detach'):  # a tensor; detached so that one saved with requires_grad converts
        value = value.detach().cpu()
    try:
        array = np.asarray(value)
    except (ValueError, TypeError, RuntimeError):  # ragged lists, unconvertible objects
        return None
    return array if array.dtype.kind in kinds else None


def _sample_arrays(sample: Any, num_classes: int) -> Tuple[int, np.ndarray, np.ndarray, np.ndarray]:
    """(img_id, xyxy boxes, scores, labels) of one mmdet data sample; ValueError says what is wrong."""
    pred = sample.get('pred_instances') if isinstance(sample, Mapping) else None
    if not isinstance(pred, Mapping) or 'img_id' not in sample:
        raise ValueError('is not an mmdet detection result (needs img_id and pred_instances)')
    img_id = sample['img_id']
    if not _is_int(img_id):
        raise ValueError(f'img_id {_short(img_id)} is not an integer')
    arrays = []
    for key, kinds in (('bboxes', 'iuf'), ('scores', 'iuf'), ('labels', 'iu')):
        array = _numeric_array(pred[key], kinds) if key in pred else None
        if array is None:
            raise ValueError(f"pred_instances[{key!r}] is missing or not an array of "
                             f"{'integers' if kinds == 'iu' else 'numbers'}")
        arrays.append(array)
    boxes, scores, labels = arrays
    if boxes.size == 0:
        boxes = boxes.reshape(0, 4)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f'bboxes of shape {tuple(boxes.shape)} is not (N, 4) x1, y1, x2, y2')
    if scores.shape != (len(boxes),) or labels.shape != (len(boxes),):
        raise ValueError(f'scores {tuple(scores.shape)} and labels {tuple(labels.shape)} are not '
                         f'({len(boxes)},), one per box')
    bad = np.flatnonzero((labels < 0) | (labels >= num_classes))
    if bad.size:
        raise ValueError(f'prediction {bad[0]}: label {labels[bad[0]]} is outside the {num_classes} '
                         'categories of the ground truth')
    return int(img_id), boxes.astype(np.float64), scores.astype(np.float64), labels.astype(np.int64)


def _sample_masks(sample: Mapping, num_boxes: int) -> Optional[List[Any]]:
    """The RLE masks of one data sample (one per box), None without masks; ValueError if not a list.

    Each RLE itself is checked with the detection it belongs to (_check_detections).
    """
    pred = sample['pred_instances']
    if 'masks' not in pred:
        return None
    masks = pred['masks']
    if not isinstance(masks, (list, tuple)):
        raise ValueError(f"pred_instances['masks'] is a {type(masks).__name__}, not a list of RLE "
                         'dicts (one per box, as DumpDetResults encodes them)')
    if len(masks) != num_boxes:
        raise ValueError(f"pred_instances['masks'] holds {len(masks)} masks for {num_boxes} boxes")
    return list(masks)


def _from_mmdet_pickle(items: Any, gt: Any, source: str
                       ) -> Tuple[List[Dict[str, Any]], Callable[[int], str]]:
    """COCO detections of mmdet data samples, and where(k): the sample and prediction of detection k."""
    if not isinstance(items, (list, tuple)):
        raise DetectionInputError(f'{source} holds a {type(items).__name__}, not a list of mmdet '
                                  f'detection results ({_SAMPLE_FORMAT})')
    cat_ids = _category_order(gt)
    dets: List[Dict[str, Any]] = []
    starts: List[int] = []
    samples: List[Tuple[int, np.ndarray]] = []
    with_masks: Optional[bool] = None  # decided by the first sample: all have masks or none
    for i, sample in enumerate(items):
        try:
            img_id, boxes, scores, labels = _sample_arrays(sample, len(cat_ids))
            masks = _sample_masks(sample, len(boxes))
            if with_masks is None:
                with_masks = masks is not None
            elif with_masks != (masks is not None):
                raise ValueError("has no pred_instances['masks'] while item 0 has" if with_masks
                                 else "has pred_instances['masks'] while item 0 has none")
        except ValueError as exc:
            raise DetectionInputError(f'{source}: item {i} {exc}; expected {_SAMPLE_FORMAT}') from None
        starts.append(len(dets))
        samples.append((img_id, boxes))
        # x2 - x1 of inf or NaN corners is NaN: _check_detections reports it, numpy need not warn
        with np.errstate(invalid='ignore', over='ignore'):
            xywh = np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1)
        for j, (box, score, label) in enumerate(zip(xywh.tolist(), scores.tolist(), labels.tolist())):
            det = {'image_id': img_id, 'category_id': cat_ids[label], 'bbox': box, 'score': score}
            if masks is not None:
                det['segmentation'] = masks[j]
            dets.append(det)

    def where(k: int) -> str:
        i = bisect.bisect_right(starts, k) - 1
        img_id, boxes = samples[i]
        return (f'item {i} (img_id {img_id}) prediction {k - starts[i]} '
                f'(x1, y1, x2, y2 {_short(boxes[k - starts[i]].tolist())})')
    return dets, where


def load_detections(path: str, gt: Any) -> Tuple[str, List[Dict[str, Any]]]:
    """(file actually read, checked COCO-format detections) for a json, pkl or work dir."""
    found = find_results_file(path)
    if found.endswith(('.pkl', '.pickle')):
        from ..checkpoints.safe_load import load_result_pickle
        dets, where = _from_mmdet_pickle(load_result_pickle(found), gt, repr(found))
        return found, _check_detections(dets, gt, repr(found), where)
    return found, _check_detections(_read_json(found, 'detection result list'), gt, repr(found))


def _load_results(gt: Any, dets: List[Dict[str, Any]]) -> Any:
    """pycocotools result index of checked detections (see _check_detections)."""
    from pycocotools.coco import COCO
    if dets:
        with contextlib.redirect_stdout(io.StringIO()):
            return gt.loadRes([dict(d) for d in dets])
    # pycocotools cannot load an empty result list; an empty index scores 0 everywhere instead
    empty = COCO()
    empty.dataset = {'images': list(gt.dataset['images']), 'categories': list(gt.dataset['categories']),
                     'annotations': []}
    with contextlib.redirect_stdout(io.StringIO()):
        empty.createIndex()
    return empty


def _mean_valid(p: np.ndarray) -> float:
    valid = p[p > -1]
    return float(valid.mean()) if valid.size else -1.0


def evaluate_detections(gt: Any, dets: List[Dict[str, Any]], per_class: bool = False,
                        img_ids: Optional[Sequence[int]] = None, iou_type: str = 'bbox'
                        ) -> Tuple[Dict[str, float], Dict[str, Dict[str, float]], str]:
    """(COCO metrics, per-class metrics, the printed 12-line COCO summary) for one run.

    ``img_ids`` restricts the evaluation to those images (a draw of the ground truth). A malformed
    entry of ``dets`` raises DetectionInputError naming it. ``iou_type='segm'`` scores the RLE
    ``'segmentation'`` of every detection instead of its box; the ground truth must then have
    masks (DetectionInputError if it has none or a malformed one).
    """
    if iou_type not in ('bbox', 'segm'):
        raise ValueError(f"iou_type must be 'bbox' or 'segm', got {iou_type!r}")
    dets = _check_detections(dets, gt, 'detections')
    if iou_type == 'segm':
        if dets and 'segmentation' not in dets[0]:
            raise DetectionInputError("detections: entry 0: has no 'segmentation'; iou_type='segm' "
                                      f'needs {_MASK_FORMAT}')
        missing = _gt_mask_problem(gt, 'the ground truth')
        if missing:
            raise DetectionInputError(missing)
    return _evaluate(gt, dets, per_class, img_ids, iou_type)


def _gt_mask_problem(gt: Any, source: str) -> Optional[str]:
    """Why the GT cannot score masks (one line; None when it can); malformed masks raise.

    Checked only when a run has masks, so a bbox-only ground truth loads as before.
    """
    cached = getattr(gt, '_lip_det_mask_problem', False)
    if cached is not False:
        return cached
    sizes = _image_sizes(gt)
    problem = None
    for i, ann in enumerate(gt.dataset['annotations']):
        if 'segmentation' not in ann:
            problem = (f"{source} has no 'segmentation' for annotations[{i}] (id {ann['id']}): "
                       'masks not scored, bbox only')
            break
        bad = _gt_segmentation_problem(ann['segmentation'], sizes.get(ann['image_id']))
        if bad:
            raise DetectionInputError(f'{source}: annotations[{i}]: segmentation {bad}')
    gt._lip_det_mask_problem = problem
    return problem


def _gt_segmentation_problem(seg: Any, image_size: Tuple[Any, Any]) -> Optional[str]:
    """Why a GT segmentation (polygons, RLE or uncompressed RLE) cannot be scored, or None."""
    has_size = all(_is_int(v) and v > 0 for v in image_size)
    if isinstance(seg, Mapping):
        if isinstance(seg.get('counts'), list):  # uncompressed RLE (crowd regions)
            size = seg.get('size')
            if (not isinstance(size, (list, tuple)) or len(size) != 2
                    or not all(_is_int(v) and v >= 0 for v in size)):
                return f'size {_short(size)} is not [height, width]'
            counts = seg['counts']
            if not all(_is_int(v) and v >= 0 for v in counts) or sum(counts) != size[0] * size[1]:
                return (f'counts {_short(counts)} are not run lengths covering height * width; '
                        'expected an uncompressed COCO RLE')
            return None
        problem = _mask_problem(seg, image_size)
        return f'{problem}; expected {_MASK_FORMAT}' if problem else None
    polygons = ('expected polygons [[x1, y1, x2, y2, x3, y3, ...], ...] or a COCO RLE, and the '
                "image's 'height' and 'width'")
    if not isinstance(seg, list) or not seg:
        return f'{_short(seg)} is not a list of polygons; {polygons}'
    if not has_size:
        return f"is a polygon, but its image has no integer 'height' and 'width'; {polygons}"
    for poly in seg:
        if (not isinstance(poly, list) or len(poly) < 6 or len(poly) % 2
                or not all(_is_real(v) and _is_finite(v) for v in poly)):
            return f'polygon {_short(poly)} is not >= 3 finite (x, y) points; {polygons}'
    return None


def _evaluate(gt: Any, dets: List[Dict[str, Any]], per_class: bool, img_ids: Optional[Sequence[int]],
              iou_type: str = 'bbox') -> Tuple[Dict[str, float], Dict[str, Dict[str, float]], str]:
    """evaluate_detections on detections already checked by _check_detections.

    For 'segm' the detections are given to pycocotools without their boxes, as COCO's mask
    result format has them, so that a detection's area (its size range) is that of its mask.
    """
    from pycocotools.cocoeval import COCOeval
    if iou_type == 'segm':
        dets = [{'image_id': d['image_id'], 'category_id': d['category_id'],
                 'segmentation': d['segmentation'], 'score': d['score']} for d in dets]
    else:
        dets = [{k: v for k, v in d.items() if k != 'segmentation'} for d in dets]
    dt = _load_results(gt, dets)
    coco_eval = COCOeval(gt, dt, iou_type)
    if img_ids is not None:
        unknown = set(img_ids) - set(gt.getImgIds())
        if unknown or not img_ids:
            raise ValueError(f'img_ids must be non-empty ids of the ground truth, got unknown '
                             f'{sorted(unknown)[:5]}' if unknown else 'img_ids must not be empty')
        coco_eval.params.imgIds = sorted(set(img_ids))
    # Appended after COCO's four ranges, so summarize() (which looks ranges up by label) and the
    # indices 0-3 keep their meaning.
    coco_eval.params.areaRng = list(coco_eval.params.areaRng) + [[0, TINY_MAX_AREA]]
    coco_eval.params.areaRngLbl = list(coco_eval.params.areaRngLbl) + ['tiny']
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        coco_eval.evaluate()
        coco_eval.accumulate()
    summary_buf = io.StringIO()
    with contextlib.redirect_stdout(summary_buf):
        coco_eval.summarize()
    metrics = {name: float(coco_eval.stats[i]) for i, name in enumerate(METRICS[:6])}
    precision = coco_eval.eval['precision']  # [IoU, recall, class, area, maxDets]
    max_det = coco_eval.params.maxDets.index(100)
    metrics['AP_tiny'] = _mean_valid(precision[:, :, :, _PRECISION_SLICES['AP_tiny'][1], max_det])
    classes: Dict[str, Dict[str, float]] = {}
    if per_class:
        names = {c['id']: c['name'] for c in gt.dataset['categories']}
        for k, cat_id in enumerate(coco_eval.params.catIds):
            row = {}
            for metric, (iou, area) in _PRECISION_SLICES.items():
                p = precision[:, :, k, area, max_det] if iou is None else precision[iou, :, k, area, max_det]
                row[metric] = _mean_valid(p)
            classes[names[cat_id]] = row
    return metrics, classes, summary_buf.getvalue()


def gt_size_counts(gt: Any) -> Dict[str, int]:
    """Non-crowd GT boxes per COCO size range (area < 32², < 96², larger) and tiny (<= 16², of small)."""
    counts = {'small': 0, 'medium': 0, 'large': 0, 'tiny': 0}
    for ann in gt.dataset.get('annotations', []):
        if ann.get('iscrowd', 0):
            continue
        area = ann['area']
        counts['small' if area < 32 ** 2 else 'medium' if area < 96 ** 2 else 'large'] += 1
        counts['tiny'] += area <= TINY_MAX_AREA
    return counts


def _default_names(paths: Sequence[str]) -> List[str]:
    names = []
    for p in paths:
        base = os.path.basename(os.path.normpath(p))
        for suffix in ('.bbox.json', '.segm.json', '.json', '.pkl', '.pickle'):
            if base.endswith(suffix):
                base = base[:-len(suffix)]
                break
        names.append(base or p)
    # keep columns distinguishable when two runs share a file name
    return [n if names.count(n) == 1 else f'{n}#{i + 1}' for i, n in enumerate(names)]


def compare_runs(ann_file: str, sources: Sequence[str], names: Optional[Sequence[str]] = None,
                 per_class: bool = False) -> Tuple[List[RunResult], Dict[str, int]]:
    """Score every run against ann_file; returns (results in input order, GT size counts)."""
    if not sources:
        raise ValueError('sources must name at least one result file or work dir')
    if names is not None and len(names) != len(sources):
        raise ValueError(f'names must give one name per source ({len(sources)}), got {len(names)}')
    gt = load_ground_truth(ann_file)
    names = list(names) if names is not None else _default_names(sources)
    runs = []
    for name, src in zip(names, sources):
        found, dets = load_detections(src, gt)  # checked there, with the file's name in any error
        metrics, classes, summary = _evaluate(gt, dets, per_class, None)
        run = RunResult(name, found, len(dets), metrics, classes, summary)
        if dets and 'segmentation' in dets[0]:
            note = _gt_mask_problem(gt, f'ground truth {ann_file!r}')
            if note:
                run.segm_note = note
            else:
                run.segm_metrics, run.segm_per_class, run.segm_summary = _evaluate(
                    gt, dets, per_class, None, 'segm')
        runs.append(run)
    return runs, gt_size_counts(gt)


def _cell(value: float, base: Optional[float]) -> str:
    if value < 0:
        return 'n/a'
    if base is None:
        return f'{value:.3f}'
    if base < 0:
        return f'{value:.3f} (   n/a)'
    return f'{value:.3f} ({value - base:+.3f})'


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    fmt = lambda r: '  '.join(str(c).ljust(w) if i == 0 else str(c).rjust(w)  # noqa: E731
                              for i, (c, w) in enumerate(zip(r, widths)))
    return '\n'.join([fmt(header), '  '.join('-' * w for w in widths)] + [fmt(r) for r in rows])


def _segm_cell(value: Optional[float], base: Optional[float], first: bool) -> str:
    """A segm cell: '-' for a run without scored masks, a delta only when the first run has one."""
    if value is None:
        return '-'
    return _cell(value, None if first or base is None else base)


def format_table(runs: Sequence[RunResult], per_class: bool = False) -> str:
    """Metrics side by side, each column after the first with its delta against the first.

    When a run has scored masks, the bbox rows are named 'bbox AP', ... and 'segm AP', ... rows
    follow (a run without masks shows '-' there); without masks the table is the bbox one alone.
    """
    header = ['metric'] + [r.name for r in runs]
    base = runs[0]
    segm = any(r.segm_metrics for r in runs)
    label = (lambda m: f'bbox {m}') if segm else (lambda m: m)  # noqa: E731
    rows = [[label(m)] + [_cell(r.metrics[m], None if i == 0 else base.metrics[m])
                          for i, r in enumerate(runs)] for m in METRICS]
    if segm:
        rows += [[f'segm {m}'] + [_segm_cell(r.segm_metrics.get(m), base.segm_metrics.get(m), i == 0)
                                  for i, r in enumerate(runs)] for m in METRICS]
    out = [_table(header, rows)]
    if per_class:
        for metric in METRICS:
            classes = list(base.per_class)
            rows = [[c] + [_cell(r.per_class[c][metric], None if i == 0 else base.per_class[c][metric])
                           for i, r in enumerate(runs)] for c in classes]
            out.append(f'\n{label(metric)} per class\n' + _table(['class'] + [r.name for r in runs], rows))
        if segm:
            for metric in METRICS:
                rows = [[c] + [_segm_cell(r.segm_per_class[c][metric] if r.segm_metrics else None,
                                          base.segm_per_class[c][metric] if base.segm_metrics else None,
                                          i == 0) for i, r in enumerate(runs)] for c in base.per_class]
                out.append(f'\nsegm {metric} per class\n' + _table(['class'] + [r.name for r in runs], rows))
    return '\n'.join(out)
