"""The classification transforms mmcv/mmdet lack: mmpretrain's RandomResizedCrop, ResizeEdge
and PackInputs (here ``PackClsInputs``). Loading, CenterCrop and RandomFlip are mmcv's/mmdet's."""
from __future__ import annotations

import math
from typing import Sequence, Tuple, Union

import mmcv
import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmdet.registry import TRANSFORMS
from mmengine.structures import BaseDataElement

__all__ = ['RandomResizedCrop', 'ResizeEdge', 'PackClsInputs']

_INTERPOLATIONS = ('nearest', 'bilinear', 'bicubic', 'area', 'lanczos')


def _size_pair(name: str, value: Union[int, Sequence[int]]) -> Tuple[int, int]:
    """(h, w) from an int or an (h, w) pair of positive ints; ValueError naming ``name``."""
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0
                                 for v in pair):
        raise ValueError(f'{name} must be a positive int or (h, w) of positive ints, got {value!r}')
    return pair  # type: ignore[return-value]


def _check_interpolation(interpolation: str) -> None:
    if interpolation not in _INTERPOLATIONS:
        raise ValueError(f'interpolation must be one of {_INTERPOLATIONS}, got {interpolation!r}')


@TRANSFORMS.register_module()
class RandomResizedCrop(BaseTransform):
    """Crop a random area/aspect-ratio box and resize it to ``scale`` (mmpretrain's algorithm).

    Up to ``max_attempts`` boxes with area in ``crop_ratio_range`` of the image and aspect ratio
    log-uniform in ``aspect_ratio_range``; if none fits, the largest centred box whose ratio is
    within the range. Randomness is numpy's global generator, which mmengine seeds.
    """

    def __init__(self, scale: Union[int, Sequence[int]],
                 crop_ratio_range: Tuple[float, float] = (0.08, 1.0),
                 aspect_ratio_range: Tuple[float, float] = (3. / 4., 4. / 3.),
                 max_attempts: int = 10, interpolation: str = 'bilinear') -> None:
        self.scale = _size_pair('scale', scale)
        for name, rng in (('crop_ratio_range', crop_ratio_range),
                          ('aspect_ratio_range', aspect_ratio_range)):
            if len(rng) != 2 or not 0 < rng[0] <= rng[1]:
                raise ValueError(f'{name} must be (lo, hi) with 0 < lo <= hi, got {rng!r}')
        if crop_ratio_range[1] > 1:
            raise ValueError(f'crop_ratio_range must lie in (0, 1], got {crop_ratio_range!r}')
        if not isinstance(max_attempts, int) or max_attempts < 0:
            raise ValueError(f'max_attempts must be an int >= 0, got {max_attempts!r}')
        _check_interpolation(interpolation)
        self.crop_ratio_range = tuple(crop_ratio_range)
        self.aspect_ratio_range = tuple(aspect_ratio_range)
        self.max_attempts = max_attempts
        self.interpolation = interpolation

    def _box(self, h: int, w: int) -> Tuple[int, int, int, int]:
        """(top, left, height, width) of the crop."""
        area = h * w
        log_ratio = (math.log(self.aspect_ratio_range[0]), math.log(self.aspect_ratio_range[1]))
        for _ in range(self.max_attempts):
            target = np.random.uniform(*self.crop_ratio_range) * area
            ratio = math.exp(np.random.uniform(*log_ratio))
            cw = int(round(math.sqrt(target * ratio)))
            ch = int(round(math.sqrt(target / ratio)))
            if 0 < cw <= w and 0 < ch <= h:
                top = np.random.randint(0, h - ch + 1)
                left = np.random.randint(0, w - cw + 1)
                return top, left, ch, cw
        # Fallback: centre crop at the nearest allowed aspect ratio.
        in_ratio = w / h
        if in_ratio < self.aspect_ratio_range[0]:
            cw, ch = w, int(round(w / self.aspect_ratio_range[0]))
        elif in_ratio > self.aspect_ratio_range[1]:
            ch, cw = h, int(round(h * self.aspect_ratio_range[1]))
        else:
            cw, ch = w, h
        return (h - ch) // 2, (w - cw) // 2, ch, cw

    def transform(self, results: dict) -> dict:
        """Crop and resize ``results['img']``."""
        img = results['img']
        top, left, ch, cw = self._box(*img.shape[:2])
        img = img[top:top + ch, left:left + cw]
        img = mmcv.imresize(img, (self.scale[1], self.scale[0]), interpolation=self.interpolation)
        results['img'] = img
        results['img_shape'] = img.shape[:2]
        return results


@TRANSFORMS.register_module()
class ResizeEdge(BaseTransform):
    """Resize so that the ``edge`` ('short' or 'long') side is ``scale``, keeping the ratio."""

    def __init__(self, scale: int, edge: str = 'short', interpolation: str = 'bilinear') -> None:
        if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
            raise ValueError(f'scale must be a positive int, got {scale!r}')
        if edge not in ('short', 'long'):
            raise ValueError(f"edge must be one of ('short', 'long'), got {edge!r}")
        _check_interpolation(interpolation)
        self.scale, self.edge, self.interpolation = scale, edge, interpolation

    def transform(self, results: dict) -> dict:
        """Resize ``results['img']``."""
        img = results['img']
        h, w = img.shape[:2]
        side = min(h, w) if self.edge == 'short' else max(h, w)
        factor = self.scale / side
        size = (max(1, int(round(w * factor))), max(1, int(round(h * factor))))
        img = mmcv.imresize(img, size, interpolation=self.interpolation)
        results['img'] = img
        results['img_shape'] = img.shape[:2]
        results['scale_factor'] = (size[0] / w, size[1] / h)
        return results


@TRANSFORMS.register_module()
class PackClsInputs(BaseTransform):
    """``inputs`` (C, H, W uint8 tensor) and a data sample with ``gt_label`` and metainfo."""

    def __init__(self, meta_keys: Sequence[str] = ('sample_idx', 'img_path', 'ori_shape',
                                                    'img_shape', 'flip', 'flip_direction')) -> None:
        self.meta_keys = tuple(meta_keys)

    def transform(self, results: dict) -> dict:
        """Pack one sample."""
        img = results['img']
        if img.ndim == 2:
            img = img[..., None]
        inputs = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))
        sample = BaseDataElement(metainfo={k: results[k] for k in self.meta_keys if k in results})
        if 'gt_label' in results:
            sample.gt_label = torch.as_tensor(results['gt_label'], dtype=torch.long).reshape(-1)
        return dict(inputs=inputs, data_samples=sample)
