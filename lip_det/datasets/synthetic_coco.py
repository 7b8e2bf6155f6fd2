"""Deterministic synthetic COCO-format detection data ("synthetic shapes").

Each image is a cluttered background (smooth colour field, noise, thin distractor strokes
and blotches that belong to no class) with non-overlapping objects of ``len(CLASSES)``
classes. A class is a shape with its own texture, while colours are random per instance,
so a detector has to learn shape and texture rather than colour. Object sizes are drawn
per object from the COCO area ranges (small < 32², medium 32²-96², large > 96², measured
on the tight box of the drawn pixels, which is also the annotation's ``area``) with
controllable fractions, so AP_S / AP_M / AP_L are all meaningful.

Everything is derived from ``(seed, split, image index)``: image ``i`` of a split is the
same whatever the number of images requested, and regenerating gives identical bytes.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import os.path as osp
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

CLASSES: Tuple[str, ...] = ('disc', 'striped_square', 'checkered_triangle', 'ring',
                            'dotted_cross')
# COCO's own area thresholds (pycocotools areaRng): small < 32², large > 96².
SMALL_MAX_AREA = 32**2
LARGE_MIN_AREA = 96**2
SIZE_NAMES = ('small', 'medium', 'large')
FORMAT_VERSION = 2

# Side-length ranges (of the shape's bounding square) that keep the drawn tight box
# inside the intended COCO area range for every class; checked again after drawing.
_SIDE_RANGES = {'small': (8, 28), 'medium': (38, 86), 'large': (104, 150)}


@dataclass(frozen=True)
class SyntheticCocoConfig:
    """Parameters that fully determine a generated data set."""

    num_train: int = 400
    num_val: int = 100
    width: int = 256
    height: int = 256
    seed: int = 0
    min_objects: int = 3
    max_objects: int = 8
    size_fractions: Tuple[float, float, float] = (0.5, 0.35, 0.15)
    clutter: int = 12
    noise_std: float = 6.0
    version: int = field(default=FORMAT_VERSION)

    def validate(self) -> None:
        """Raise ValueError naming the first parameter out of its accepted range."""
        if self.num_train < 0 or self.num_val < 0 or self.num_train + self.num_val == 0:
            raise ValueError('num_train and num_val must be >= 0 and not both 0, got '
                             f'{self.num_train} and {self.num_val}')
        if self.width < 64 or self.height < 64:
            raise ValueError(f'width and height must be >= 64, got {self.width}x{self.height}')
        if not 1 <= self.min_objects <= self.max_objects:
            raise ValueError('need 1 <= min_objects <= max_objects, got '
                             f'{self.min_objects}, {self.max_objects}')
        fr = self.size_fractions
        if len(fr) != 3 or any(f < 0 for f in fr) or sum(fr) <= 0:
            raise ValueError('size_fractions must be three non-negative numbers '
                             f'(small, medium, large) with a positive sum, got {fr}')
        if fr[2] > 0 and min(self.width, self.height) < _SIDE_RANGES['large'][1] + 8:
            raise ValueError('large objects need width and height >= '
                             f'{_SIDE_RANGES["large"][1] + 8}; got {self.width}x{self.height}'
                             ' (set size_fractions[2]=0 for smaller images)')
        if self.clutter < 0 or self.noise_std < 0:
            raise ValueError(f'clutter and noise_std must be >= 0, got {self.clutter}, '
                             f'{self.noise_std}')


def _rng(seed: int, split: str, index: int) -> np.random.Generator:
    # Hash (seed, split, index) so each image has its own independent stream.
    digest = hashlib.sha256(f'{seed}/{split}/{index}'.encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], 'little'))


def _background(rng: np.random.Generator, cfg: SyntheticCocoConfig) -> np.ndarray:
    h, w = cfg.height, cfg.width
    # Smooth colour field: bilinear upsampling of a coarse random grid.
    coarse = rng.uniform(60, 200, size=(4, 4, 3)).astype(np.float32)
    img = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_LINEAR)
    # Blurred blotches: low-frequency clutter with colours from the object palette.
    for _ in range(cfg.clutter // 2):
        center = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        axes = (int(rng.integers(6, w // 4)), int(rng.integers(6, h // 4)))
        color = rng.uniform(30, 230, size=3).tolist()
        cv2.ellipse(img, center, axes, float(rng.uniform(0, 180)), 0, 360, color, -1)
    img = cv2.GaussianBlur(img, (0, 0), sigmaX=3.0)
    # Thin strokes and open arcs: edges and corners that belong to no class.
    for _ in range(cfg.clutter):
        color = rng.uniform(0, 255, size=3).tolist()
        thickness = int(rng.integers(1, 3))
        if rng.random() < 0.5:
            p0 = (int(rng.integers(0, w)), int(rng.integers(0, h)))
            p1 = (int(rng.integers(0, w)), int(rng.integers(0, h)))
            cv2.line(img, p0, p1, color, thickness, cv2.LINE_AA)
        else:
            center = (int(rng.integers(0, w)), int(rng.integers(0, h)))
            r = int(rng.integers(5, max(6, min(w, h) // 3)))
            start = float(rng.uniform(0, 360))
            cv2.ellipse(img, center, (r, r), 0, start, start + float(rng.uniform(40, 200)),
                        color, thickness, cv2.LINE_AA)
    return img


def _texture(cls: int, side: int, rng: np.random.Generator) -> np.ndarray:
    """An (side, side, 3) float texture patch whose pattern identifies the class."""
    c1 = rng.uniform(0, 255, size=3).astype(np.float32)
    c2 = rng.uniform(0, 255, size=3).astype(np.float32)
    # Keep the two texture colours apart so the pattern is visible.
    if np.abs(c1 - c2).max() < 90:
        c2 = 255.0 - c1
    yy, xx = np.mgrid[0:side, 0:side].astype(np.float32)
    if cls == 1:  # stripes
        period = max(4.0, side / 5.0)
        sel = (np.floor(yy / (period / 2)) % 2) == 0
    elif cls == 2:  # checkerboard
        period = max(4.0, side / 4.0)
        sel = ((np.floor(yy / (period / 2)) + np.floor(xx / (period / 2))) % 2) == 0
    elif cls == 4:  # dots
        period = max(4.0, side / 5.0)
        dy = (yy % period) - period / 2
        dx = (xx % period) - period / 2
        sel = dy * dy + dx * dx > (period / 3.5)**2
    else:  # solid (disc, ring)
        sel = np.ones((side, side), dtype=bool)
    return np.where(sel[..., None], c1, c2)


def _shape_mask(cls: int, side: int, rng: np.random.Generator) -> np.ndarray:
    """A (side, side) uint8 mask of the class's shape inside a side x side square."""
    mask = np.zeros((side, side), dtype=np.uint8)
    s = side - 1
    if cls == 0:  # disc
        cv2.circle(mask, (s // 2, s // 2), s // 2, 1, -1)
    elif cls == 1:  # square, slightly rotated
        ang = math.radians(float(rng.uniform(-12, 12)))
        half = s / 2 / (abs(math.cos(ang)) + abs(math.sin(ang)))
        pts = []
        for k in range(4):
            a = ang + math.pi / 4 + k * math.pi / 2
            pts.append((s / 2 + half * math.sqrt(2) * math.cos(a),
                        s / 2 + half * math.sqrt(2) * math.sin(a)))
        cv2.fillPoly(mask, [np.round(np.array(pts)).astype(np.int32)], 1)
    elif cls == 2:  # triangle, pointing up or down
        if rng.random() < 0.5:
            pts = [(s // 2, 0), (0, s), (s, s)]
        else:
            pts = [(0, 0), (s, 0), (s // 2, s)]
        cv2.fillPoly(mask, [np.array(pts, dtype=np.int32)], 1)
    elif cls == 3:  # ring
        cv2.circle(mask, (s // 2, s // 2), s // 2, 1, -1)
        cv2.circle(mask, (s // 2, s // 2), max(1, int(s * 0.27)), 0, -1)
    elif cls == 4:  # cross
        t = max(2, int(round(side * 0.34)))
        o = (side - t) // 2
        mask[o:o + t, :] = 1
        mask[:, o:o + t] = 1
    else:
        raise ValueError(f'unknown class index {cls}')
    return mask


def _size_class(area: float) -> int:
    if area < SMALL_MAX_AREA:
        return 0
    return 1 if area <= LARGE_MIN_AREA else 2


def _render_image(cfg: SyntheticCocoConfig, split: str, index: int
                  ) -> Tuple[np.ndarray, List[Dict]]:
    rng = _rng(cfg.seed, split, index)
    img = _background(rng, cfg)
    h, w = cfg.height, cfg.width
    fractions = np.asarray(cfg.size_fractions, dtype=np.float64)
    fractions = fractions / fractions.sum()
    n_obj = int(rng.integers(cfg.min_objects, cfg.max_objects + 1))
    occupied: List[Tuple[int, int, int, int]] = []
    objects = []
    draws = []
    for _ in range(n_obj):
        size_idx = int(rng.choice(3, p=fractions))
        lo, hi = _SIDE_RANGES[SIZE_NAMES[size_idx]]
        draws.append((int(rng.integers(lo, hi + 1)), int(rng.integers(0, len(CLASSES)))))
    # Largest first: big objects find room before small ones fill the image, which keeps
    # the realised size mix close to the requested fractions.
    for side, cls in sorted(draws, key=lambda d: -d[0]):
        # Rejection-sample a free spot (2 px margin) so no object hides another.
        for _attempt in range(30):
            x0 = int(rng.integers(0, w - side + 1))
            y0 = int(rng.integers(0, h - side + 1))
            if all(x0 + side + 2 <= a or a + c + 2 <= x0 or y0 + side + 2 <= b
                   or b + d + 2 <= y0 for a, b, c, d in occupied):
                break
        else:
            continue
        occupied.append((x0, y0, side, side))
        mask = _shape_mask(cls, side, rng)
        tex = _texture(cls, side, rng)
        region = img[y0:y0 + side, x0:x0 + side]
        m = mask.astype(bool)
        region[m] = tex[m]
        ys, xs = np.nonzero(mask)
        bx, by = x0 + int(xs.min()), y0 + int(ys.min())
        bw, bh = int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)
        objects.append(dict(category_id=cls + 1, bbox=[bx, by, bw, bh]))
    if cfg.noise_std > 0:
        img = img + rng.normal(0.0, cfg.noise_std, size=img.shape).astype(np.float32)
    return np.clip(np.round(img), 0, 255).astype(np.uint8), objects


def _split_json(cfg: SyntheticCocoConfig, split: str, n: int, out_dir: str,
                progress: Optional[Callable[[str, int, int], None]]) -> Dict:
    images, annotations = [], []
    img_dir = osp.join(out_dir, split)
    os.makedirs(img_dir, exist_ok=True)
    ann_id = 1
    for i in range(n):
        img, objects = _render_image(cfg, split, i)
        file_name = f'{i:06d}.png'
        # cv2 writes BGR; colours are random anyway, so no channel swap is needed.
        if not cv2.imwrite(osp.join(img_dir, file_name), img):
            raise OSError(f'could not write {osp.join(img_dir, file_name)}')
        image_id = i + 1
        images.append(dict(id=image_id, file_name=file_name, width=cfg.width,
                           height=cfg.height))
        for obj in objects:
            bw, bh = obj['bbox'][2], obj['bbox'][3]
            annotations.append(dict(id=ann_id, image_id=image_id,
                                    category_id=obj['category_id'], bbox=obj['bbox'],
                                    area=float(bw * bh), iscrowd=0))
            ann_id += 1
        if progress is not None:
            progress(split, i + 1, n)
    return dict(
        info=dict(description='lip-det synthetic shapes', version=str(cfg.version),
                  year=2026, contributor='lip_det.datasets', url='', date_created=''),
        licenses=[dict(id=1, name='generated', url='')],
        images=images,
        annotations=annotations,
        categories=[dict(id=k + 1, name=name, supercategory='shape')
                    for k, name in enumerate(CLASSES)])


def size_histogram(coco_json: Dict) -> Dict[str, int]:
    """Count annotations per COCO size range (small/medium/large) by their ``area``."""
    counts = dict.fromkeys(SIZE_NAMES, 0)
    for ann in coco_json['annotations']:
        counts[SIZE_NAMES[_size_class(ann['area'])]] += 1
    return counts


def _meta_path(out_dir: str) -> str:
    return osp.join(out_dir, 'synthetic_meta.json')


def generate_synthetic_coco(out_dir: str, cfg: Optional[SyntheticCocoConfig] = None,
                            force: bool = False,
                            progress: Optional[Callable[[str, int, int], None]] = None
                            ) -> Dict:
    """Write the data set to ``out_dir`` (train/, val/, annotations/) and return its summary.

    A directory already holding a set made with the same parameters is reused as it is
    (generation is deterministic); anything else already at ``out_dir`` is refused unless
    ``force``, which replaces it. The set is assembled in a
    temporary sibling directory and renamed into place, so an interrupted run never
    leaves a half-written set behind.
    """
    cfg = cfg or SyntheticCocoConfig()
    if not isinstance(cfg, SyntheticCocoConfig):
        raise TypeError(f'cfg must be a SyntheticCocoConfig, got {type(cfg).__name__}')
    cfg.validate()
    out_dir = osp.abspath(out_dir)
    params = asdict(cfg)
    params['size_fractions'] = list(cfg.size_fractions)
    if osp.exists(out_dir):
        try:
            with open(_meta_path(out_dir)) as f:
                old = json.load(f)
        except (OSError, ValueError):
            old = None
        if old is not None and old.get('params') == params:
            return old
        if not force:
            raise FileExistsError(
                f'{out_dir} exists and was not generated with these parameters; pass '
                'force=True (--force) to replace it')
    parent = osp.dirname(out_dir)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix='.synthetic-', dir=parent)
    try:
        summary: Dict = dict(params=params, splits={})
        os.makedirs(osp.join(tmp, 'annotations'))
        for split, n in (('train', cfg.num_train), ('val', cfg.num_val)):
            coco = _split_json(cfg, split, n, tmp, progress)
            ann_file = osp.join(tmp, 'annotations', f'instances_{split}.json')
            with open(ann_file, 'w') as f:
                json.dump(coco, f)
            summary['splits'][split] = dict(
                images=len(coco['images']), annotations=len(coco['annotations']),
                sizes=size_histogram(coco),
                per_class={name: sum(a['category_id'] == k + 1
                                     for a in coco['annotations'])
                           for k, name in enumerate(CLASSES)})
        with open(_meta_path(tmp), 'w') as f:
            json.dump(summary, f, indent=2)
        if osp.exists(out_dir):
            shutil.rmtree(out_dir)
        os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return summary


def dataset_digest(out_dir: str) -> str:
    """SHA-256 over every file of a generated set (relative paths and bytes), for tests."""
    h = hashlib.sha256()
    for root, dirs, files in os.walk(out_dir):
        dirs.sort()
        for name in sorted(files):
            path = osp.join(root, name)
            h.update(osp.relpath(path, out_dir).encode())
            with open(path, 'rb') as f:
                h.update(f.read())
    return h.hexdigest()


def parse_size_fractions(text: str) -> Tuple[float, float, float]:
    """Parse 'S,M,L' (e.g. '0.5,0.35,0.15') into a fractions tuple."""
    parts = [p for p in text.split(',') if p.strip()]
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        raise ValueError(f'size fractions must be three numbers "S,M,L", got {text!r}')
    if len(values) != 3:
        raise ValueError(f'size fractions must be three numbers "S,M,L", got {text!r}')
    return values  # type: ignore[return-value]


__all__: Sequence[str] = ('CLASSES', 'SyntheticCocoConfig', 'generate_synthetic_coco',
                          'size_histogram', 'dataset_digest', 'parse_size_fractions',
                          'SMALL_MAX_AREA', 'LARGE_MIN_AREA')
