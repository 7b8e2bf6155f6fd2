"""The synthetic COCO generator: determinism, COCO validity, size mix, CLI behaviour."""
from __future__ import annotations

import json
import os.path as osp
import subprocess
import sys

import cv2
import numpy as np
import pytest

from lip_det.datasets import (CLASSES, LARGE_MIN_AREA, SMALL_MAX_AREA, SyntheticCocoConfig,
                              dataset_digest, generate_synthetic_coco, parse_size_fractions,
                              size_histogram)

from .conftest import REPO, TINY_SET


def _load(root, split):
    with open(osp.join(root, 'annotations', f'instances_{split}.json')) as f:
        return json.load(f)


def test_same_seed_same_bytes_other_seed_differs(tmp_path, tiny_synthetic):
    again = str(tmp_path / 'again')
    generate_synthetic_coco(again, SyntheticCocoConfig(**TINY_SET))
    assert dataset_digest(again) == dataset_digest(tiny_synthetic)
    other = str(tmp_path / 'other')
    generate_synthetic_coco(other, SyntheticCocoConfig(**dict(TINY_SET, seed=4)))
    assert dataset_digest(other) != dataset_digest(tiny_synthetic)


def test_image_i_does_not_depend_on_set_size(tmp_path, tiny_synthetic):
    small = str(tmp_path / 'small')
    generate_synthetic_coco(small, SyntheticCocoConfig(**dict(TINY_SET, num_train=3, num_val=2)))
    for split, i in (('train', 0), ('train', 2), ('val', 1)):
        a = cv2.imread(osp.join(small, split, f'{i:06d}.png'))
        b = cv2.imread(osp.join(tiny_synthetic, split, f'{i:06d}.png'))
        assert np.array_equal(a, b)
        anns_a = [x['bbox'] for x in _load(small, split)['annotations'] if x['image_id'] == i + 1]
        anns_b = [x['bbox'] for x in _load(tiny_synthetic, split)['annotations']
                  if x['image_id'] == i + 1]
        assert anns_a == anns_b


def test_pycocotools_loads_and_evaluates_ground_truth_as_perfect(tiny_synthetic):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    gt = COCO(osp.join(tiny_synthetic, 'annotations', 'instances_val.json'))
    assert [c['name'] for c in gt.loadCats(gt.getCatIds())] == list(CLASSES)
    assert len(gt.getImgIds()) == TINY_SET['num_val']
    dets = [dict(image_id=a['image_id'], category_id=a['category_id'], bbox=a['bbox'],
                 score=1.0) for a in gt.dataset['annotations']]
    ev = COCOeval(gt, gt.loadRes(dets), 'bbox')
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    # AP, AP50, AP75, AP_S, AP_M, AP_L: every size range has objects, so all are exactly 1.
    assert np.allclose(ev.stats[:6], 1.0)


def test_annotations_are_tight_boxes_inside_the_image(tiny_synthetic):
    coco = _load(tiny_synthetic, 'train')
    ids = [a['id'] for a in coco['annotations']]
    assert len(set(ids)) == len(ids) and min(ids) >= 1
    sizes = {im['id']: (im['width'], im['height']) for im in coco['images']}
    for a in coco['annotations']:
        x, y, w, h = a['bbox']
        iw, ih = sizes[a['image_id']]
        assert 0 <= x and 0 <= y and x + w <= iw and y + h <= ih and w >= 4 and h >= 4
        assert a['area'] == w * h and a['iscrowd'] == 0
        assert 1 <= a['category_id'] <= len(CLASSES)
    # Boxes of one image never overlap (objects are placed with a margin).
    by_img = {}
    for a in coco['annotations']:
        by_img.setdefault(a['image_id'], []).append(a['bbox'])
    for boxes in by_img.values():
        for i, (x1, y1, w1, h1) in enumerate(boxes):
            for x2, y2, w2, h2 in boxes[i + 1:]:
                assert x1 + w1 <= x2 or x2 + w2 <= x1 or y1 + h1 <= y2 or y2 + h2 <= y1


def test_size_mix_follows_the_requested_fractions(tmp_path):
    root = str(tmp_path / 'mix')
    summary = generate_synthetic_coco(root, SyntheticCocoConfig(num_train=60, num_val=1, seed=0))
    hist = summary['splits']['train']['sizes']
    assert hist == size_histogram(_load(root, 'train'))
    total = sum(hist.values())
    got = np.array([hist['small'], hist['medium'], hist['large']]) / total
    # Defaults 0.5/0.35/0.15; objects that find no free spot (mostly large) are dropped.
    assert abs(got[0] - 0.5) < 0.1 and abs(got[1] - 0.35) < 0.1 and 0.05 < got[2] < 0.2
    coco = _load(root, 'train')
    areas = np.array([a['area'] for a in coco['annotations']])
    assert (areas < SMALL_MAX_AREA).sum() == hist['small']
    assert (areas > LARGE_MIN_AREA).sum() == hist['large']
    counts = np.bincount([a['category_id'] for a in coco['annotations']], minlength=6)[1:]
    assert counts.min() > 0.6 * counts.mean()
    only_small = str(tmp_path / 'only_small')
    s = generate_synthetic_coco(only_small, SyntheticCocoConfig(
        num_train=5, num_val=1, width=96, height=80, size_fractions=(1, 0, 0)))
    assert s['splits']['train']['sizes']['medium'] == s['splits']['train']['sizes']['large'] == 0
    assert cv2.imread(osp.join(only_small, 'train', '000000.png')).shape == (80, 96, 3)


def test_reuse_refuse_and_force(tmp_path):
    root = str(tmp_path / 'set')
    cfg = SyntheticCocoConfig(num_train=2, num_val=1)
    generate_synthetic_coco(root, cfg)
    digest = dataset_digest(root)
    generate_synthetic_coco(root, cfg)  # same parameters: reused untouched
    assert dataset_digest(root) == digest
    other = SyntheticCocoConfig(num_train=3, num_val=1)
    with pytest.raises(FileExistsError, match='force'):
        generate_synthetic_coco(root, other)
    assert dataset_digest(root) == digest
    generate_synthetic_coco(root, other, force=True)
    assert len(_load(root, 'train')['images']) == 3
    assert not [p for p in tmp_path.iterdir() if p.name.startswith('.synthetic-')]


@pytest.mark.parametrize('kwargs, match', [
    (dict(num_train=0, num_val=0), 'num_train'),
    (dict(width=32), 'width'),
    (dict(min_objects=5, max_objects=2), 'min_objects'),
    (dict(size_fractions=(1, -1, 0)), 'size_fractions'),
    (dict(width=150, height=150), "large objects"),
])
def test_bad_parameters_are_named(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        generate_synthetic_coco(str(tmp_path / 'x'), SyntheticCocoConfig(**kwargs))
    assert not (tmp_path / 'x').exists()
    with pytest.raises(TypeError, match='SyntheticCocoConfig'):
        generate_synthetic_coco(str(tmp_path / 'x'), dict(num_train=1))
    with pytest.raises(ValueError, match='S,M,L'):
        parse_size_fractions('0.5,0.5')


def test_config_classes_match_generator():
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'synthetic', '_base_',
                                   'synthetic_shapes.py'))
    assert tuple(cfg.metainfo['classes']) == CLASSES
    assert len(cfg.metainfo['palette']) == len(CLASSES)


def test_cli_generates_reuses_and_refuses(tmp_path, capsys):
    import importlib.util
    out = str(tmp_path / 'cli')
    args = ['--out', out, '--quiet', '--num-train', '3', '--num-val', '2']
    # One real process proves the script runs stand-alone; the rest go through main().
    first = subprocess.run([sys.executable, osp.join(REPO, 'tools', 'make_synthetic_coco.py'),
                            *args], capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    assert 'train:     3 images' in first.stdout and 'small' in first.stdout
    ref = str(tmp_path / 'api')
    generate_synthetic_coco(ref, SyntheticCocoConfig(num_train=3, num_val=2))
    assert dataset_digest(out) == dataset_digest(ref)
    spec = importlib.util.spec_from_file_location(
        '_make_synthetic_coco', osp.join(REPO, 'tools', 'make_synthetic_coco.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    assert tool.main(args) == 0  # same parameters: reused
    assert dataset_digest(out) == dataset_digest(ref)
    capsys.readouterr()
    assert tool.main(args[:-3] + ['4', '--num-val', '2']) == 1
    assert '--force' in capsys.readouterr().err
    assert tool.main(args + ['--size-fractions', '1,2']) == 2
    assert 'S,M,L' in capsys.readouterr().err
    assert tool.main(args + ['--width', '32']) == 2
    assert 'width' in capsys.readouterr().err
    assert dataset_digest(out) == dataset_digest(ref)


# ----------------------------------------------------------------------------- instance masks

def _decode(segmentation):
    from pycocotools import mask as mask_utils
    return mask_utils.decode(dict(segmentation, counts=segmentation['counts'].encode()))


@pytest.fixture(scope='module')
def tiny_masks(tmp_path_factory) -> str:
    """The tiny set of conftest with instance masks."""
    root = str(tmp_path_factory.mktemp('masks') / 'set')
    generate_synthetic_coco(root, SyntheticCocoConfig(**TINY_SET, masks=True))
    return root


def test_masks_change_nothing_else(tiny_masks, tiny_synthetic):
    for split in ('train', 'val'):
        assert dataset_digest(osp.join(tiny_masks, split)) == dataset_digest(
            osp.join(tiny_synthetic, split))
        with_masks, plain = _load(tiny_masks, split), _load(tiny_synthetic, split)
        segms = [a.pop('segmentation') for a in with_masks['annotations']]
        assert with_masks == plain
        assert all(set(s) == {'size', 'counts'} and isinstance(s['counts'], str) for s in segms)
    with open(osp.join(tiny_masks, 'synthetic_meta.json')) as f:
        assert json.load(f)['params']['masks'] is True
    # Without masks the meta records the parameters it did before the option existed.
    with open(osp.join(tiny_synthetic, 'synthetic_meta.json')) as f:
        assert 'masks' not in json.load(f)['params']
    assert generate_synthetic_coco(tiny_masks, SyntheticCocoConfig(**TINY_SET, masks=True)
                                   )['action'] == 'reused'


def test_masks_are_exactly_the_drawn_pixels(tmp_path, monkeypatch):
    from lip_det.datasets import synthetic_coco
    # Black background, white objects, no noise: the drawn pixels are the non-zero ones.
    monkeypatch.setattr(synthetic_coco, '_background',
                        lambda rng, cfg: np.zeros((cfg.height, cfg.width, 3), np.float32))
    monkeypatch.setattr(synthetic_coco, '_texture',
                        lambda cls, side, rng: np.full((side, side, 3), 255.0, np.float32))
    root = str(tmp_path / 'white')
    generate_synthetic_coco(root, SyntheticCocoConfig(**dict(TINY_SET, noise_std=0.0),
                                                      masks=True))
    coco = _load(root, 'train')
    seen_classes = set()
    for im in coco['images']:
        drawn = cv2.imread(osp.join(root, 'train', im['file_name']), cv2.IMREAD_GRAYSCALE) > 0
        union = np.zeros_like(drawn, dtype=np.int32)
        for a in coco['annotations']:
            if a['image_id'] != im['id']:
                continue
            m = _decode(a['segmentation'])
            assert m.shape == (im['height'], im['width'])
            ys, xs = np.nonzero(m)
            # The box is the mask's tight box; `area` stays the box rule.
            assert a['bbox'] == [xs.min(), ys.min(), xs.max() - xs.min() + 1,
                                 ys.max() - ys.min() + 1]
            assert a['area'] == a['bbox'][2] * a['bbox'][3] >= m.sum()
            union += m
            seen_classes.add(a['category_id'])
        assert union.max() <= 1 and np.array_equal(union.astype(bool), drawn), im['file_name']
    # Rings (with their hole) and every other shape were checked.
    assert seen_classes == set(range(1, len(CLASSES) + 1))


def test_pycocotools_and_mmdet_read_the_masks(tiny_masks):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    gt = COCO(osp.join(tiny_masks, 'annotations', 'instances_val.json'))
    dets = [dict(image_id=a['image_id'], category_id=a['category_id'],
                 segmentation=a['segmentation'], score=1.0) for a in gt.dataset['annotations']]
    ev = COCOeval(gt, gt.loadRes(dets), 'segm')
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    # Perfect masks score 1 in every size range (ranges by the box `area`, as for bbox).
    assert np.allclose(ev.stats[:6], 1.0)
    # mmdet's loading (the configs' LoadAnnotations with_mask=True) gives the same bitmaps.
    from mmdet.datasets import CocoDataset
    from mmdet.utils import register_all_modules
    register_all_modules()
    ds = CocoDataset(data_root=tiny_masks, ann_file='annotations/instances_val.json',
                     data_prefix=dict(img='val/'), metainfo=dict(classes=CLASSES),
                     test_mode=True,
                     pipeline=[dict(type='LoadImageFromFile'),
                               dict(type='LoadAnnotations', with_bbox=True, with_mask=True)])
    loaded = ds[0]
    anns = [a for a in gt.dataset['annotations'] if a['image_id'] == loaded['img_id']]
    assert not loaded['gt_ignore_flags'].any()
    assert np.array_equal(loaded['gt_masks'].masks,
                          np.stack([_decode(a['segmentation']) for a in anns]))


def test_cli_masks_option(tmp_path, capsys):
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        '_make_synthetic_coco_masks', osp.join(REPO, 'tools', 'make_synthetic_coco.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    out = str(tmp_path / 'cli')
    args = ['--out', out, '--quiet', '--num-train', '2', '--num-val', '1']
    assert tool.main(args + ['--masks']) == 0
    assert 'instance masks' in capsys.readouterr().out
    assert 'segmentation' in _load(out, 'train')['annotations'][0]
    ref = str(tmp_path / 'api')
    generate_synthetic_coco(ref, SyntheticCocoConfig(num_train=2, num_val=1, masks=True))
    assert dataset_digest(out) == dataset_digest(ref)
    # The same directory without --masks holds other parameters.
    assert tool.main(args) == 1
    assert 'masks True -> False' in capsys.readouterr().err
