"""ImageFolderDataset reads the ImageNet folder layout as mmpretrain's CustomDataset does."""
from __future__ import annotations

import os

import cv2
import numpy as np
import pytest
from mmengine.registry import DefaultScope

from lip_det.classification import ImageFolderDataset, find_image_folders


def _tree(root, spec):
    for rel in spec:
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        cv2.imwrite(path, np.full((20, 30, 3), 7, np.uint8))


def test_classes_sorted_and_images_recursive(tmp_path):
    _tree(str(tmp_path / 'train'), ['zebra/b.png', 'zebra/a.JPG', 'Apple/x/1.png', 'Apple/0.png',
                                    'mango/m.jpeg'])
    (tmp_path / 'train' / 'mango' / 'notes.txt').write_text('not an image')
    classes, samples = find_image_folders(str(tmp_path / 'train'))
    assert classes == ['Apple', 'mango', 'zebra']  # plain sorted(): upper case first
    rel = [(os.path.relpath(p, str(tmp_path / 'train')), i) for p, i in samples]
    assert rel == [('Apple/0.png', 0), ('Apple/x/1.png', 0), ('mango/m.jpeg', 1),
                   ('zebra/a.JPG', 2), ('zebra/b.png', 2)]
    ds = ImageFolderDataset(data_root=str(tmp_path), data_prefix='train', pipeline=[])
    assert ds.metainfo['classes'] == ('Apple', 'mango', 'zebra')
    assert len(ds) == 5 and ds[3]['gt_label'] == 2


def test_refusals(tmp_path):
    _tree(str(tmp_path / 'd'), ['a/1.png', 'b/1.png'])
    with pytest.raises(ValueError, match='metainfo classes'):
        ImageFolderDataset(data_root=str(tmp_path), data_prefix='d',
                           metainfo=dict(classes=('b', 'a')), pipeline=[])
    os.makedirs(str(tmp_path / 'd' / 'c'))
    with pytest.raises(ValueError, match=r"class folder\(s\) \['c'\]"):
        find_image_folders(str(tmp_path / 'd'))
    with pytest.raises(FileNotFoundError, match='data_prefix'):
        find_image_folders(str(tmp_path / 'missing'))
    with pytest.raises(ValueError, match='ann_file must be empty'):
        ImageFolderDataset(data_root=str(tmp_path), data_prefix='d', ann_file='x.txt')


def test_pipeline_packs_inputs_and_label(tmp_path):
    import numpy as np
    _tree(str(tmp_path / 'train'), ['a/1.png', 'b/1.png'])
    pipeline = [dict(type='LoadImageFromFile'),
                dict(type='RandomResizedCrop', scale=16),
                dict(type='RandomFlip', prob=0.5, direction='horizontal'),
                dict(type='PackClsInputs')]
    np.random.seed(0)
    with DefaultScope.overwrite_default_scope('mmdet'):
        ds = ImageFolderDataset(data_root=str(tmp_path), data_prefix='train', pipeline=pipeline)
        item = ds[1]
    assert tuple(item['inputs'].shape) == (3, 16, 16)
    assert item['data_samples'].gt_label.tolist() == [1]
    test = [dict(type='LoadImageFromFile'), dict(type='ResizeEdge', scale=40),
            dict(type='CenterCrop', crop_size=32), dict(type='PackClsInputs')]
    with DefaultScope.overwrite_default_scope('mmdet'):
        item = ImageFolderDataset(data_root=str(tmp_path), data_prefix='train', pipeline=test)[0]
    assert tuple(item['inputs'].shape) == (3, 32, 32)  # 20x30 -> short edge 40 -> 40x60 -> 32
