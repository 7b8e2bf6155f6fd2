"""Why a detector misses objects of a size: found, wrong class, poorly located, or not found at all.

At one operating point (detections scoring at least ``score_thr``), every non-crowd ground-truth
object is put in the first of these classes that applies:

- ``found``: a detection of its class overlaps it with IoU >= 0.5;
- ``wrong_class``: only detections of other classes overlap it with IoU >= 0.5 (the detector saw
  an object there but could not tell which: the identity, not the location, was lost);
- ``poor_box``: a detection of its class overlaps it with 0.1 <= IoU < 0.5;
- ``missed``: nothing of the above.

Counted per size range (tiny <= 16², small < 32², medium < 96², large), as fractions of the
objects of that range. If pooling preserves small objects' identity better, it should move small
objects out of ``wrong_class``.
"""
from __future__ import annotations

from typing import Any, Dict, List, Mapping, Sequence

import numpy as np

__all__ = ['ERROR_MODES', 'SIZE_RANGES', 'error_modes']

ERROR_MODES = ('found', 'wrong_class', 'poor_box', 'missed')
SIZE_RANGES = ('tiny', 'small', 'medium', 'large')


def _ranges(area: float) -> List[str]:
    # as gt_size_counts: small < 32² <= medium < 96² <= large; tiny (<= 16²) is part of small
    main = 'small' if area < 32 ** 2 else 'medium' if area < 96 ** 2 else 'large'
    return ['tiny', main] if area <= 16 ** 2 else [main]


def _iou(box: Sequence[float], others: np.ndarray) -> np.ndarray:
    """IoU of one xywh box with an [N, 4] array of xywh boxes."""
    if others.size == 0:
        return np.zeros(0)
    x1 = np.maximum(box[0], others[:, 0])
    y1 = np.maximum(box[1], others[:, 1])
    x2 = np.minimum(box[0] + box[2], others[:, 0] + others[:, 2])
    y2 = np.minimum(box[1] + box[3], others[:, 1] + others[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    union = box[2] * box[3] + others[:, 2] * others[:, 3] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def error_modes(gt: Any, dets: Sequence[Mapping[str, Any]], score_thr: float = 0.5
                ) -> Dict[str, Dict[str, float]]:
    """``{size range: {mode: fraction of its objects, 'objects': count}}`` at ``score_thr``."""
    if not 0.0 <= score_thr <= 1.0:
        raise ValueError(f'score_thr must be in [0, 1], got {score_thr}')
    by_image: Dict[int, List[Mapping[str, Any]]] = {}
    for d in dets:
        if d['score'] >= score_thr:
            by_image.setdefault(d['image_id'], []).append(d)
    counts = {name: dict.fromkeys(ERROR_MODES, 0) for name in SIZE_RANGES}
    for ann in gt.dataset.get('annotations', []):
        if ann.get('iscrowd', 0):
            continue
        mine = by_image.get(ann['image_id'], [])
        boxes = np.asarray([d['bbox'] for d in mine], dtype=np.float64).reshape(-1, 4)
        same = np.asarray([d['category_id'] == ann['category_id'] for d in mine], dtype=bool)
        iou = _iou(ann['bbox'], boxes)
        if (iou[same] >= 0.5).any():
            mode = 'found'
        elif (iou[~same] >= 0.5).any():
            mode = 'wrong_class'
        elif (iou[same] >= 0.1).any():
            mode = 'poor_box'
        else:
            mode = 'missed'
        for name in _ranges(ann['area']):
            counts[name][mode] += 1
    out: Dict[str, Dict[str, float]] = {}
    for name, c in counts.items():
        total = sum(c.values())
        out[name] = dict({m: (c[m] / total if total else float('nan')) for m in ERROR_MODES},
                         objects=total)
    return out
