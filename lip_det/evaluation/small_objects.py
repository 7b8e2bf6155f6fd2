"""The small-object gain table: COCO AP / AP50 / AP75 / AP_S / AP_M / AP_L / AP_tiny of detectors.

All runs are scored with pycocotools against one ground-truth file, so the deltas compare like
with like. A run is given as a COCO result json (``[{'image_id', 'category_id', 'bbox',
'score'}, ...]``, e.g. what mmdet's ``CocoMetric(outfile_prefix=...)`` writes as
``<prefix>.bbox.json``), as the pickle of ``tools/test.py --out results.pkl``, or as a work dir
containing either (the newest one is used).

``AP_tiny`` is an area range of our own beside COCO's three: objects with area <= 16² (COCO's
small range is <= 32²), where downsampling loses the most and learned pooling should matter most.
"""
from __future__ import annotations

import contextlib
import glob
import io
import json
import os
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

__all__ = ['METRICS', 'TINY_MAX_AREA', 'RunResult', 'find_results_file', 'load_detections', 'evaluate_detections',
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


def find_results_file(path: str) -> str:
    """The result file for a json/pkl path or, for a work dir, the newest one inside it."""
    if os.path.isfile(path):
        return path
    if not os.path.isdir(path):
        raise FileNotFoundError(f'results {path!r}: no such file or directory')
    candidates = [p for pattern in ('*.bbox.json', '*.pkl', '*.pickle')
                  for p in glob.glob(os.path.join(path, '**', pattern), recursive=True)]
    if not candidates:
        raise FileNotFoundError(
            f'work dir {path!r} holds no detection results (*.bbox.json from CocoMetric '
            f'outfile_prefix, or *.pkl from `tools/test.py CONFIG CKPT --out results.pkl`)')
    # newest wins; ties (same mtime) resolved by path so the choice is reproducible
    return max(candidates, key=lambda p: (os.path.getmtime(p), p))


def _category_order(gt: Any) -> List[int]:
    """Label index -> category id, as mmdet's CocoDataset builds it (GT file order)."""
    return [c['id'] for c in gt.dataset['categories']]


def _from_mmdet_pickle(items: Any, gt: Any) -> List[Dict[str, Any]]:
    if not isinstance(items, (list, tuple)):
        raise ValueError(f'expected a list of mmdet data samples, got {type(items).__name__}')
    cat_ids = _category_order(gt)
    dets = []
    for i, sample in enumerate(items):
        if not isinstance(sample, Mapping) or 'pred_instances' not in sample or 'img_id' not in sample:
            raise ValueError(f'item {i} is not an mmdet detection result (needs img_id and '
                             'pred_instances with bboxes/scores/labels)')
        pred = sample['pred_instances']
        boxes = np.asarray(pred['bboxes'], dtype=np.float64).reshape(-1, 4)
        scores = np.asarray(pred['scores'], dtype=np.float64).reshape(-1)
        labels = np.asarray(pred['labels']).reshape(-1).astype(np.int64)
        if labels.size and (labels.min() < 0 or labels.max() >= len(cat_ids)):
            raise ValueError(f'item {i}: label {int(labels.max())} outside the {len(cat_ids)} '
                             'categories of the ground truth')
        for (x1, y1, x2, y2), score, label in zip(boxes, scores, labels):
            dets.append({'image_id': int(sample['img_id']), 'category_id': cat_ids[label],
                         'bbox': [float(x1), float(y1), float(x2 - x1), float(y2 - y1)],
                         'score': float(score)})
    return dets


def load_detections(path: str, gt: Any) -> Tuple[str, List[Dict[str, Any]]]:
    """(file actually read, COCO-format detections) for a json, pkl or work dir."""
    found = find_results_file(path)
    if found.endswith(('.pkl', '.pickle')):
        from ..checkpoints.safe_load import load_result_pickle
        return found, _from_mmdet_pickle(load_result_pickle(found), gt)
    with open(found) as f:
        dets = json.load(f)
    if not isinstance(dets, list) or any(
            not isinstance(d, Mapping) or not {'image_id', 'category_id', 'bbox', 'score'} <= set(d)
            for d in dets):
        raise ValueError(f'{found!r} is not a COCO detection result list '
                         "([{'image_id', 'category_id', 'bbox', 'score'}, ...])")
    return found, dets


def _load_results(gt: Any, dets: List[Dict[str, Any]]) -> Any:
    from pycocotools.coco import COCO
    known_images = set(gt.getImgIds())
    stray = {d['image_id'] for d in dets} - known_images
    if stray:
        raise ValueError(f'{len(stray)} image id(s) are not in the ground truth, e.g. '
                         f'{sorted(stray)[:5]}: were these results made on another data set?')
    stray_cats = {d['category_id'] for d in dets} - set(gt.getCatIds())
    if stray_cats:
        raise ValueError(f'category id(s) {sorted(stray_cats)[:5]} are not in the ground truth')
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
                        img_ids: Optional[Sequence[int]] = None
                        ) -> Tuple[Dict[str, float], Dict[str, Dict[str, float]], str]:
    """(COCO metrics, per-class metrics, the printed 12-line COCO summary) for one run.

    ``img_ids`` restricts the evaluation to those images (a draw of the ground truth).
    """
    from pycocotools.cocoeval import COCOeval
    dt = _load_results(gt, dets)
    coco_eval = COCOeval(gt, dt, 'bbox')
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
        for suffix in ('.bbox.json', '.json', '.pkl', '.pickle'):
            if base.endswith(suffix):
                base = base[:-len(suffix)]
                break
        names.append(base or p)
    # keep columns distinguishable when two runs share a file name
    return [n if names.count(n) == 1 else f'{n}#{i + 1}' for i, n in enumerate(names)]


def compare_runs(ann_file: str, sources: Sequence[str], names: Optional[Sequence[str]] = None,
                 per_class: bool = False) -> Tuple[List[RunResult], Dict[str, int]]:
    """Score every run against ann_file; returns (results in input order, GT size counts)."""
    from pycocotools.coco import COCO
    if not sources:
        raise ValueError('sources must name at least one result file or work dir')
    if names is not None and len(names) != len(sources):
        raise ValueError(f'names must give one name per source ({len(sources)}), got {len(names)}')
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(ann_file)
    names = list(names) if names is not None else _default_names(sources)
    runs = []
    for name, src in zip(names, sources):
        found, dets = load_detections(src, gt)
        metrics, classes, summary = evaluate_detections(gt, dets, per_class=per_class)
        runs.append(RunResult(name, found, len(dets), metrics, classes, summary))
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


def format_table(runs: Sequence[RunResult], per_class: bool = False) -> str:
    """Metrics side by side, each column after the first with its delta against the first."""
    header = ['metric'] + [r.name for r in runs]
    base = runs[0]
    rows = [[m] + [_cell(r.metrics[m], None if i == 0 else base.metrics[m]) for i, r in enumerate(runs)]
            for m in METRICS]
    out = [_table(header, rows)]
    if per_class:
        for metric in METRICS:
            classes = list(base.per_class)
            rows = [[c] + [_cell(r.per_class[c][metric], None if i == 0 else base.per_class[c][metric])
                           for i, r in enumerate(runs)] for c in classes]
            out.append(f'\n{metric} per class\n' + _table(['class'] + [r.name for r in runs], rows))
    return '\n'.join(out)
