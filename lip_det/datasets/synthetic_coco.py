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

With ``masks=True`` every annotation also carries its object's instance mask, the exact set of
pixels the shape was drawn on (a ring's hole excluded), as COCO compressed RLE (pycocotools'
``mask.encode``, lossless, unlike polygons, which cannot hold the hole); images, boxes and
``area`` are the same as without masks. ``area`` stays the tight box's ``w * h`` rather than
COCO's usual mask pixel count, so an object is small, medium or large by one rule in the bbox
and the segm evaluation (pycocotools takes a ground truth's range from ``area`` for both), and
the same objects as in the set without masks.
"""
from __future__ import annotations

import hashlib
import json
import math
import numbers
import os
import os.path as osp
from dataclasses import asdict, dataclass, field
from dataclasses import fields as dataclass_fields
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

# ForeignContentError is re-exported: callers and tests import it from here.
from .owned_dir import ForeignContentError, OwnedSetKind, write_owned_set

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

# Accepted parameter ranges. They keep one image's working memory bounded (a 4096² image
# is ~200 MB of float32 while drawing; 100000² would be 120 GB) and the file names in
# their 6-digit form; all are far above what the benchmark configs use.
MIN_SIDE, MAX_SIDE = 64, 4096
MAX_IMAGES = 100_000  # per split
MAX_OBJECTS = 200  # per image (objects that find no free spot are dropped anyway)
MAX_CLUTTER = 1000
MAX_NOISE_STD = 255.0
_SEED_RANGE = (-2**63, 2**63 - 1)


class SyntheticParamError(ValueError):
    """A SyntheticCocoConfig value outside its accepted range; ``fields`` names the parameters."""

    def __init__(self, fields: Tuple[str, ...], message: str) -> None:
        super().__init__(message)
        self.fields = fields


def _is_int(value: object) -> bool:
    # bool is an int subclass, but True as an image count is a caller's mistake.
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def _check_int(name: str, value: object, lo: int, hi: int) -> None:
    if not _is_int(value) or not lo <= value <= hi:
        raise SyntheticParamError((name,), f'{name} must be an integer in {lo}..{hi}, '
                                           f'got {value!r}')


def _check_finite(name: str, value: object, lo: float, hi: float) -> None:
    # NaN fails every comparison, so finiteness is tested explicitly.
    if (not isinstance(value, numbers.Real) or isinstance(value, (bool, np.bool_))
            or not math.isfinite(value) or not lo <= value <= hi):
        raise SyntheticParamError((name,), f'{name} must be a finite number in '
                                           f'{lo:g}..{hi:g}, got {value!r}')


def _check_version(value: object, written: int) -> None:
    if not _is_int(value) or value != written:
        raise SyntheticParamError(('version',), f'version must be {written} (the only format '
                                                f'written), got {value!r}')


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
    # Last, so positional construction keeps its meaning; see _params for the meta.
    masks: bool = False

    def validate(self) -> None:
        """Raise SyntheticParamError (a ValueError) naming the first parameter out of range."""
        _check_int('num_train', self.num_train, 0, MAX_IMAGES)
        _check_int('num_val', self.num_val, 0, MAX_IMAGES)
        if self.num_train + self.num_val == 0:
            raise SyntheticParamError(('num_train', 'num_val'),
                                      'num_train and num_val must not both be 0')
        _check_int('width', self.width, MIN_SIDE, MAX_SIDE)
        _check_int('height', self.height, MIN_SIDE, MAX_SIDE)
        _check_int('seed', self.seed, *_SEED_RANGE)
        _check_int('min_objects', self.min_objects, 1, MAX_OBJECTS)
        _check_int('max_objects', self.max_objects, 1, MAX_OBJECTS)
        if self.min_objects > self.max_objects:
            raise SyntheticParamError(('min_objects', 'max_objects'),
                                      'need 1 <= min_objects <= max_objects, got '
                                      f'{self.min_objects}, {self.max_objects}')
        fr = self.size_fractions
        ok = (not isinstance(fr, (str, bytes)) and hasattr(fr, '__len__') and len(fr) == 3
              and all(isinstance(f, numbers.Real) and not isinstance(f, (bool, np.bool_))
                      for f in fr))
        # NaN fails every comparison, so test finiteness explicitly; the sum is checked too
        # because three finite values (1e308 each) can overflow to inf, and the fractions
        # are normalised by it.
        ok = ok and all(math.isfinite(f) and f >= 0 for f in fr)
        if ok:
            # The same float64 sum _render_image divides by.
            with np.errstate(over='ignore'):
                total = float(np.asarray(fr, dtype=np.float64).sum())
            ok = math.isfinite(total) and total > 0
        if not ok:
            raise SyntheticParamError(('size_fractions',), (
                'size_fractions must be three finite non-negative numbers (small, medium, '
                f'large) with a positive finite sum, got {fr!r}'))
        if fr[2] > 0 and min(self.width, self.height) < _SIDE_RANGES['large'][1] + 8:
            raise SyntheticParamError(('width', 'height', 'size_fractions'), (
                'large objects need width and height >= '
                f'{_SIDE_RANGES["large"][1] + 8}; got {self.width}x{self.height}'
                ' (set size_fractions[2]=0 for smaller images)'))
        _check_int('clutter', self.clutter, 0, MAX_CLUTTER)
        _check_finite('noise_std', self.noise_std, 0, MAX_NOISE_STD)
        if not isinstance(self.masks, (bool, np.bool_)):
            raise SyntheticParamError(('masks',), f'masks must be True or False, got '
                                                  f'{self.masks!r}')
        _check_version(self.version, FORMAT_VERSION)


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


def _encode_mask(mask: np.ndarray, x0: int, y0: int, h: int, w: int) -> Dict:
    """COCO compressed RLE of ``mask`` placed at (x0, y0) in an h x w image."""
    # Imported here: only mask-enabled sets need pycocotools (mmdet depends on it anyway).
    from pycocotools import mask as mask_utils
    full = np.zeros((h, w), dtype=np.uint8, order='F')
    full[y0:y0 + mask.shape[0], x0:x0 + mask.shape[1]] = mask
    rle = mask_utils.encode(full)
    # JSON has no bytes; pycocotools and mmdet accept the counts as a str.
    return dict(size=[int(v) for v in rle['size']], counts=rle['counts'].decode('ascii'))


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
        obj = dict(category_id=cls + 1, bbox=[bx, by, bw, bh])
        if cfg.masks:
            # Recording the mask draws no random numbers, so the image is unchanged.
            obj['segmentation'] = _encode_mask(mask, x0, y0, h, w)
        objects.append(obj)
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
            ann = dict(id=ann_id, image_id=image_id, category_id=obj['category_id'],
                       bbox=obj['bbox'], area=float(bw * bh), iscrowd=0)
            # Only mask-enabled sets get the key: the default files stay byte-identical.
            if 'segmentation' in obj:
                ann['segmentation'] = obj['segmentation']
            annotations.append(ann)
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


META_NAME = 'synthetic_meta.json'
_SPLITS = ('train', 'val')
_PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'
# The IEND chunk (zero length, type, CRC) that ends every complete PNG.
_PNG_END = b'\x00\x00\x00\x00IEND\xaeB`\x82'
# A meta of 100000 + 100000 images is ~30 MB; anything far larger is not one of ours.
_MAX_META_BYTES = 256 << 20


def _params(cfg: SyntheticCocoConfig) -> Dict:
    params = asdict(cfg)
    params['size_fractions'] = list(cfg.size_fractions)
    if not cfg.masks:
        # A set without masks records the parameters it always did: its meta stays
        # byte-identical and sets written before the option are reused, not "other parameters".
        del params['masks']
    else:
        params['masks'] = True
    # numpy scalars are valid parameters but not JSON; plain values keep the meta as before.
    return {k: ([x.item() if isinstance(x, np.generic) else x for x in v]
                if isinstance(v, list) else v.item() if isinstance(v, np.generic) else v)
            for k, v in params.items()}


def _split_summary(coco: Dict) -> Dict:
    return dict(images=len(coco['images']), annotations=len(coco['annotations']),
                sizes=size_histogram(coco),
                per_class={name: sum(a['category_id'] == k + 1 for a in coco['annotations'])
                           for k, name in enumerate(CLASSES)})


def _expected_files(params: Dict) -> List[str]:
    """Relative paths (``/``-separated) of every file a set of these params holds, but the meta."""
    files = [f'annotations/instances_{split}.json' for split in _SPLITS]
    for split in _SPLITS:
        files += [f'{split}/{i:06d}.png' for i in range(params[f'num_{split}'])]
    return files


def _meta_problem(meta: object) -> Optional[str]:
    """Why ``meta`` is not one this tool could have written, or None."""
    known = {f.name for f in dataclass_fields(SyntheticCocoConfig)}
    params = meta.get('params') if isinstance(meta, dict) else None
    # The image counts are bounded because the files a set owns are listed from them.
    if (not isinstance(params, dict) or not set(params) <= known
            or not all(_is_int(params.get(k)) and 0 <= params[k] <= MAX_IMAGES
                       for k in ('num_train', 'num_val'))
            or not isinstance(meta.get('splits'), dict)
            or not isinstance(meta.get('files', {}), dict)):
        return 'does not describe a synthetic set (no valid "params" and "splits")'
    return None


def _content_damage(out_dir: str, meta: Dict) -> Optional[str]:
    """Damage that sizes and digests do not show: annotation JSONs that do not parse or do
    not match the meta's per-split summary, and for a meta without per-file records (older
    sets) PNG framing (signature and IEND trailer, so a truncated image shows)."""
    num = {split: meta['params'][f'num_{split}'] for split in _SPLITS}
    if meta.get('files') is None:
        for split in _SPLITS:
            for i in range(num[split]):
                with open(osp.join(out_dir, split, f'{i:06d}.png'), 'rb') as f:
                    head = f.read(len(_PNG_SIGNATURE))
                    f.seek(max(0, os.fstat(f.fileno()).st_size - len(_PNG_END)))
                    tail = f.read()
                if head != _PNG_SIGNATURE or tail != _PNG_END:
                    return f'{split}/{i:06d}.png is not a complete PNG'
    for split in _SPLITS:
        rel = f'annotations/instances_{split}.json'
        try:
            with open(osp.join(out_dir, 'annotations', f'instances_{split}.json'), 'rb') as f:
                coco = json.loads(f.read())
            summary = _split_summary(coco)
            names = [im['file_name'] for im in coco['images']]
        except (ValueError, TypeError, KeyError, IndexError, AttributeError):
            return f'{rel} is not the annotation file of this set'
        if (summary != meta['splits'].get(split)
                or names != [f'{i:06d}.png' for i in range(num[split])]):
            return f'{rel} does not match {META_NAME}'
    return None


_KIND = OwnedSetKind(meta_name=META_NAME, max_meta_bytes=_MAX_META_BYTES,
                     dirs=('annotations', 'train', 'val'), files=_expected_files,
                     meta_problem=_meta_problem, content_damage=_content_damage,
                     # A missing 'masks' is False (see _params), so going to or from masks
                     # shows in the "other parameters" message too.
                     param_defaults={'masks': False})


def _write_set(cfg: SyntheticCocoConfig, tmp: str,
               progress: Optional[Callable[[str, int, int], None]]) -> Dict:
    """Write the images and annotation JSONs into ``tmp``; return the meta (no file records)."""
    meta: Dict = dict(params=_params(cfg), splits={})
    os.makedirs(osp.join(tmp, 'annotations'))
    for split, n in (('train', cfg.num_train), ('val', cfg.num_val)):
        coco = _split_json(cfg, split, n, tmp, progress)
        with open(osp.join(tmp, 'annotations', f'instances_{split}.json'), 'w') as f:
            json.dump(coco, f)
        meta['splits'][split] = _split_summary(coco)
    return meta


def generate_synthetic_coco(out_dir: str, cfg: Optional[SyntheticCocoConfig] = None,
                            force: bool = False,
                            progress: Optional[Callable[[str, int, int], None]] = None
                            ) -> Dict:
    """Write the data set to ``out_dir`` (train/, val/, annotations/) and return its summary.

    ``out_dir`` is handled by ``owned_dir.write_owned_set``: it may be new or empty; a set
    this tool made with the same parameters is verified and reused as it is, or regenerated
    when damaged (no ``force`` needed); a set with other parameters is refused with a
    FileExistsError unless ``force``, which replaces it; anything else -- a file or link the
    set does not hold, or an unreadable ``synthetic_meta.json`` -- is refused with
    ForeignContentError, ``force`` or not. Verification: every file's size and SHA-256, and
    the annotation JSONs against the meta; a meta written before sizes and digests were
    recorded has its files checked for presence and PNG framing instead (~0.2 s for the
    900-image benchmark set). The summary's ``action`` is 'generated', 'reused', 'repaired'
    (with ``damage``, what was wrong) or 'replaced'.
    """
    cfg = cfg or SyntheticCocoConfig()
    if not isinstance(cfg, SyntheticCocoConfig):
        raise TypeError(f'cfg must be a SyntheticCocoConfig, got {type(cfg).__name__}')
    cfg.validate()
    return write_owned_set(out_dir, _KIND, _params(cfg),
                           lambda tmp: _write_set(cfg, tmp, progress), force=force)


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
    """Parse 'S,M,L' (e.g. '0.5,0.35,0.15') into a fractions tuple (range checks: validate)."""
    parts = [p for p in text.split(',') if p.strip()]
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        values = ()
    if len(values) != 3:
        raise SyntheticParamError(('size_fractions',), 'size fractions must be three '
                                                       f'numbers "S,M,L", got {text!r}')
    return values  # type: ignore[return-value]


__all__: Sequence[str] = ('CLASSES', 'SyntheticCocoConfig', 'generate_synthetic_coco',
                          'size_histogram', 'dataset_digest', 'parse_size_fractions',
                          'SMALL_MAX_AREA', 'LARGE_MIN_AREA', 'SyntheticParamError',
                          'ForeignContentError', 'MIN_SIDE', 'MAX_SIDE', 'MAX_IMAGES',
                          'MAX_OBJECTS', 'MAX_CLUTTER')
