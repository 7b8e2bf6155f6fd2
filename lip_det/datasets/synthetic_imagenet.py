"""Deterministic synthetic classification data in ImageNet folder layout.

``<out>/{train,val}/<class>/<index>.png``: one centred object per small image (default 64 px)
of the detection set's classes -- the same shapes and textures, drawn by
``synthetic_coco``'s own ``_shape_mask``/``_texture`` on its cluttered ``_background`` -- so a
backbone can be pretrained on the CPU before it is put under a synthetic detector. Classes are
``synthetic_coco.CLASSES``; their folder order (sorted, as mmpretrain's ``CustomDataset`` and
``lip_det.classification.ImageFolderDataset`` read it) is alphabetical, not that tuple's order.

Everything derives from ``(seed, split, class, index)``. The write is as careful as the
detection generator's: a new or empty directory gets a fresh set, assembled in a temporary
sibling and renamed into place; a set this module wrote with the same parameters is verified
(SHA-256 of every file) and reused, or regenerated when damaged; one with other parameters is
replaced only with ``force``; anything else (a file or link the set does not hold, or an
unreadable meta) is refused, ``force`` or not -- only the set's own files are ever deleted.
"""
from __future__ import annotations

import json
import math
import numbers
import os
import os.path as osp
import shutil
import stat
import warnings
from dataclasses import asdict, dataclass
from types import SimpleNamespace
from typing import Callable, Dict, List, Optional, Tuple

import cv2
import numpy as np

from .synthetic_coco import (_SEED_RANGE, CLASSES, MAX_NOISE_STD, ForeignContentError,
                             SyntheticParamError, _background, _check_int, _new_sibling_dir,
                             _rng, _sha256, _shape_mask, _texture)

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
        nstd = self.noise_std
        if (not isinstance(nstd, numbers.Real) or isinstance(nstd, (bool, np.bool_))
                or not math.isfinite(nstd) or not 0 <= nstd <= MAX_NOISE_STD):
            raise SyntheticParamError(('noise_std',), 'noise_std must be a finite number in '
                                                      f'0..{MAX_NOISE_STD:g}, got {nstd!r}')
        if self.version != IMAGENET_FORMAT_VERSION or isinstance(self.version, bool):
            raise SyntheticParamError(('version',), f'version must be {IMAGENET_FORMAT_VERSION} '
                                                    f'(the only format written), got {self.version!r}')


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


def _expected_files(cfg_params: Dict) -> List[str]:
    """Relative paths of every image of a set with these parameters."""
    files = []
    for split in _SPLITS:
        n = cfg_params[f'num_{split}_per_class']
        for name in CLASSES:
            files += [f'{split}/{name}/{i:06d}.png' for i in range(n)]
    return files


def _read_meta(out_dir: str) -> Tuple[Optional[Dict], Optional[str]]:
    """(meta, None), (None, why it is not ours) or (None, None) when there is none."""
    path = osp.join(out_dir, IMAGENET_META_NAME)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None, None
    if not stat.S_ISREG(st.st_mode) or st.st_size > _MAX_META_BYTES:
        return None, 'is not a regular file of a size this tool writes'
    try:
        with open(path, 'rb') as f:
            meta = json.loads(f.read())
    except (OSError, ValueError) as e:
        return None, f'cannot be read ({e})'
    known = set(asdict(SyntheticImageNetConfig()))
    params = meta.get('params') if isinstance(meta, dict) else None
    if (not isinstance(params, dict) or set(params) != known
            or not isinstance(meta.get('files'), dict)):
        return None, 'does not describe a synthetic classification set'
    try:
        SyntheticImageNetConfig(**params).validate()
    except (SyntheticParamError, TypeError):
        return None, 'holds parameters this tool does not accept'
    return meta, None


def _walk(out_dir: str) -> Tuple[List[str], List[str]]:
    """(relative file paths, relative paths of anything that is not a plain file or directory)."""
    files, odd = [], []
    for root, dirs, names in os.walk(out_dir):
        for d in list(dirs):
            if osp.islink(osp.join(root, d)):
                odd.append(osp.relpath(osp.join(root, d), out_dir).replace(os.sep, '/'))
                dirs.remove(d)
        for name in names:
            path = osp.join(root, name)
            rel = osp.relpath(path, out_dir).replace(os.sep, '/')
            (files if stat.S_ISREG(os.lstat(path).st_mode) else odd).append(rel)
    return sorted(files), sorted(odd)


def _first_foreign(out_dir: str, meta: Optional[Dict]) -> Optional[str]:
    """The first entry of ``out_dir`` that the set ``meta`` describes does not hold."""
    own = set(meta['files']) | {IMAGENET_META_NAME} if meta is not None else set()
    files, odd = _walk(out_dir)
    if odd:
        return f'{odd[0]!r} (a link or special file)'
    foreign = [f for f in files if f not in own]
    if foreign:
        return repr(foreign[0])
    if meta is None:
        # No files, but (empty) directories: the new set is renamed into place, which needs
        # an empty directory, and we delete nothing we did not write.
        for entry in sorted(os.listdir(out_dir)):
            return f'{entry + "/"!r} (a directory)'
    return None


def _damage(out_dir: str, meta: Dict) -> Optional[str]:
    """What differs from what was written (size, then SHA-256), or None."""
    for rel, rec in sorted(meta['files'].items()):
        path = osp.join(out_dir, *rel.split('/'))
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return f'{rel} is missing'
        if not stat.S_ISREG(st.st_mode) or not isinstance(rec, dict) or st.st_size != rec.get('size'):
            return f'{rel} is not the file that was written'
    for rel, rec in sorted(meta['files'].items()):
        if _sha256(osp.join(out_dir, *rel.split('/'))) != rec.get('sha256'):
            return f'{rel} differs from what was written (SHA-256)'
    return None


def _remove_own(root: str, meta: Dict) -> bool:
    """Delete the set's own files one by one, then emptied directories; True if root is gone."""
    for rel in list(meta['files']) + [IMAGENET_META_NAME]:
        path = osp.join(root, *rel.split('/'))
        if osp.lexists(path) and stat.S_ISREG(os.lstat(path).st_mode):
            os.unlink(path)
    for split in _SPLITS:
        for name in CLASSES:
            for d in (osp.join(root, split, name), osp.join(root, split)):
                try:
                    os.rmdir(d)
                except OSError:
                    pass
    try:
        os.rmdir(root)
    except OSError:
        return False
    return True


def _write(cfg: SyntheticImageNetConfig, tmp: str,
           progress: Optional[Callable[[str, int, int], None]]) -> Dict:
    params = asdict(cfg)
    files: Dict[str, Dict] = {}
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
                files[f'{split}/{name}/{i:06d}.png'] = dict(size=os.path.getsize(path),
                                                            sha256=_sha256(path))
            counts[split][name] = n
            if progress is not None:
                progress(split, (cls + 1) * n, len(CLASSES) * n)
    meta = dict(params=params, classes=sorted(CLASSES), images=counts, files=files)
    with open(osp.join(tmp, IMAGENET_META_NAME), 'w') as f:
        json.dump(meta, f, indent=1)
    return meta


def _public(meta: Dict, action: str, **extra) -> Dict:
    out = {k: v for k, v in meta.items() if k != 'files'}
    out.update(action=action, **extra)
    return out


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
    out_dir = osp.realpath(out_dir)
    params = asdict(cfg)
    old_meta: Optional[Dict] = None
    damage = None
    if osp.lexists(out_dir):
        if not osp.isdir(out_dir):
            raise ForeignContentError(f'{out_dir} exists and is not a directory')
        meta, problem = _read_meta(out_dir)
        if problem is not None:
            raise ForeignContentError(
                f'{osp.join(out_dir, IMAGENET_META_NAME)} {problem}, so {out_dir} is not '
                'provably a set this tool wrote and is left alone (--force or not)')
        if meta is not None and meta['params'] == params:
            damage = _damage(out_dir, meta)
            if damage is None:
                return _public(meta, 'reused')
        foreign = _first_foreign(out_dir, meta)
        if foreign is not None:
            raise ForeignContentError(
                f'{out_dir} holds {foreign}, which this tool did not write; it writes only into '
                'a new or empty directory or over a set it generated: choose another directory')
        if meta is not None and damage is None and not force:
            diff = ', '.join(f'{k} {meta["params"].get(k)!r} -> {v!r}'
                             for k, v in params.items() if meta['params'].get(k) != v)
            raise FileExistsError(f'{out_dir} holds a set generated with other parameters '
                                  f'({diff}); pass force=True (--force) to replace it')
        old_meta = meta
    parent = osp.dirname(out_dir)
    try:
        os.makedirs(parent, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise ForeignContentError(f'cannot create {out_dir}: a component of {parent} exists '
                                  'and is not a directory') from None
    tmp = _new_sibling_dir(parent, 'cls-')
    try:
        meta = _write(cfg, tmp, progress)
        if old_meta is None:
            if osp.isdir(out_dir) and not os.listdir(out_dir):
                os.rmdir(out_dir)  # an empty directory: os.replace needs it gone or empty
            os.replace(tmp, out_dir)
            return _public(meta, 'generated')
        holder = _new_sibling_dir(parent, 'cls-old-')
        aside = osp.join(holder, 'set')
        try:
            os.rename(out_dir, aside)
            try:
                os.rename(tmp, out_dir)
            except BaseException:
                os.rename(aside, out_dir)
                raise
        except BaseException:
            os.rmdir(holder)
            raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)  # this call's own directory only
        raise
    if _remove_own(aside, old_meta):
        os.rmdir(holder)
    else:
        warnings.warn(f'kept {holder}: the replaced set held files this tool did not write')
    if damage is not None:
        return _public(meta, 'repaired', damage=damage)
    return _public(meta, 'replaced')
