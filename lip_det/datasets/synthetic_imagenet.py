"""Deterministic synthetic classification data in ImageNet folder layout.

``<out>/{train,val}/<class>/<index>.png``: one centred object per small image (default 64 px)
of the detection set's classes -- the same shapes and textures, drawn by
``synthetic_coco``'s own ``_shape_mask``/``_texture`` on its cluttered ``_background`` -- so a
backbone can be pretrained on the CPU before it is put under a synthetic detector. Classes are
``synthetic_coco.CLASSES``; their folder order (sorted, as mmpretrain's ``CustomDataset`` and
``lip_det.classification.ImageFolderDataset`` read it) is alphabetical, not that tuple's order.

Everything derives from ``(seed, split, class, index)``. The output directory is handled as
the detection generator's is, by ``owned_dir.write_owned_set``: a new or empty directory gets a
fresh set, assembled in a temporary sibling and renamed into place; a set this module wrote
with the same parameters is verified (size and SHA-256 of every file) and reused, or
regenerated when damaged; one with other parameters is replaced only with ``force``; anything
else (a file, directory or link the set does not hold, or an unreadable meta) is refused,
``force`` or not -- only the set's own files are ever deleted.
"""
from __future__ import annotations

import os
import os.path as osp
from dataclasses import asdict, dataclass
from types import SimpleNamespace
from typing import Callable, Dict, List, Optional

import cv2
import numpy as np

from .owned_dir import OwnedSetKind, write_owned_set
from .synthetic_coco import (_SEED_RANGE, CLASSES, MAX_NOISE_STD, SyntheticParamError,
                             _background, _check_finite, _check_int, _check_version, _rng,
                             _shape_mask, _texture)

__all__ = ['SyntheticImageNetConfig', 'generate_synthetic_imagenet', 'IMAGENET_META_NAME',
           'MIN_SIZE', 'MAX_SIZE', 'MAX_PER_CLASS']

IMAGENET_META_NAME = 'synthetic_imagenet_meta.json'
IMAGENET_FORMAT_VERSION = 1
# Small images only: the set exists to pretrain tiny backbones on the CPU.
MIN_SIZE, MAX_SIZE = 32, 512
MAX_PER_CLASS = 20_000
MAX_CLUTTER = 100
_SPLITS = ('train', 'val')
_MAX_META_BYTES = 64 << 20


@dataclass
class SyntheticImageNetConfig:
    """Parameters that fully determine a generated classification set."""

    num_train_per_class: int = 40
    num_val_per_class: int = 10
    size: int = 64
    seed: int = 0
    clutter: int = 4
    noise_std: float = 4.0
    version: int = IMAGENET_FORMAT_VERSION

    def validate(self) -> None:
        """Raise SyntheticParamError (a ValueError) naming the first parameter out of range."""
        # Both splits need every class: an empty class folder shifts the label indices.
        _check_int('num_train_per_class', self.num_train_per_class, 1, MAX_PER_CLASS)
        _check_int('num_val_per_class', self.num_val_per_class, 1, MAX_PER_CLASS)
        _check_int('size', self.size, MIN_SIZE, MAX_SIZE)
        _check_int('seed', self.seed, *_SEED_RANGE)
        _check_int('clutter', self.clutter, 0, MAX_CLUTTER)
        _check_finite('noise_std', self.noise_std, 0, MAX_NOISE_STD)
        _check_version(self.version, IMAGENET_FORMAT_VERSION)


def _render(cfg: SyntheticImageNetConfig, split: str, cls: int, index: int) -> np.ndarray:
    """One image: background clutter and one object of class ``cls`` near the centre."""
    # Own key space ('cls-...'): no stream is shared with the detection set's images.
    rng = _rng(cfg.seed, f'cls-{split}-{cls}', index)
    s = cfg.size
    img = _background(rng, SimpleNamespace(width=s, height=s, clutter=cfg.clutter))
    side = int(rng.integers(int(s * 0.45), int(s * 0.8) + 1))
    jitter = max(1, s // 16)
    x0 = (s - side) // 2 + int(rng.integers(-jitter, jitter + 1))
    y0 = (s - side) // 2 + int(rng.integers(-jitter, jitter + 1))
    x0, y0 = min(max(x0, 0), s - side), min(max(y0, 0), s - side)
    mask = _shape_mask(cls, side, rng).astype(bool)
    tex = _texture(cls, side, rng)
    region = img[y0:y0 + side, x0:x0 + side]
    region[mask] = tex[mask]
    if cfg.noise_std > 0:
        img = img + rng.normal(0.0, cfg.noise_std, size=img.shape).astype(np.float32)
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def _expected_files(params: Dict) -> List[str]:
    """Relative paths of every image of a set with these parameters, in the order written."""
    files = []
    for split in _SPLITS:
        n = params[f'num_{split}_per_class']
        for name in CLASSES:
            files += [f'{split}/{name}/{i:06d}.png' for i in range(n)]
    return files


def _meta_problem(meta: object) -> Optional[str]:
    """Why ``meta`` is not one this tool could have written, or None."""
    known = set(asdict(SyntheticImageNetConfig()))
    params = meta.get('params') if isinstance(meta, dict) else None
    if (not isinstance(params, dict) or set(params) != known
            or not isinstance(meta.get('files'), dict)):
        return 'does not describe a synthetic classification set'
    try:
        # Also bounds the file list the set's ownership is derived from.
        SyntheticImageNetConfig(**params).validate()
    except (SyntheticParamError, TypeError):
        return 'holds parameters this tool does not accept'
    return None


_KIND = OwnedSetKind(meta_name=IMAGENET_META_NAME, max_meta_bytes=_MAX_META_BYTES,
                     dirs=tuple(d for split in _SPLITS
                                for d in [split] + [f'{split}/{name}' for name in CLASSES]),
                     files=_expected_files, meta_problem=_meta_problem, temp_tag='cls-',
                     meta_indent=1)


def _write_set(cfg: SyntheticImageNetConfig, tmp: str,
               progress: Optional[Callable[[str, int, int], None]]) -> Dict:
    """Write the images into ``tmp``; return the meta (no file records)."""
    params = asdict(cfg)
    counts: Dict[str, Dict[str, int]] = {}
    for split in _SPLITS:
        n = params[f'num_{split}_per_class']
        counts[split] = {}
        for cls, name in enumerate(CLASSES):
            d = osp.join(tmp, split, name)
            os.makedirs(d)
            for i in range(n):
                path = osp.join(d, f'{i:06d}.png')
                if not cv2.imwrite(path, _render(cfg, split, cls, i)):
                    raise OSError(f'could not write {path}')
            counts[split][name] = n
            if progress is not None:
                progress(split, (cls + 1) * n, len(CLASSES) * n)
    return dict(params=params, classes=sorted(CLASSES), images=counts)


def generate_synthetic_imagenet(out_dir: str, cfg: Optional[SyntheticImageNetConfig] = None,
                                force: bool = False,
                                progress: Optional[Callable[[str, int, int], None]] = None
                                ) -> Dict:
    """Write the set to ``out_dir`` and return its summary (``action``: 'generated',
    'reused', 'repaired' or 'replaced'); see the module docstring for what is refused."""
    cfg = cfg or SyntheticImageNetConfig()
    if not isinstance(cfg, SyntheticImageNetConfig):
        raise TypeError(f'cfg must be a SyntheticImageNetConfig, got {type(cfg).__name__}')
    cfg.validate()
    return write_owned_set(out_dir, _KIND, asdict(cfg),
                           lambda tmp: _write_set(cfg, tmp, progress), force=force)
