"""ImageNet folder layout: ``<data_root>/<data_prefix>/<class>/<image>``."""
from __future__ import annotations

import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple, Union

from mmdet.registry import DATASETS
from mmengine.dataset import BaseDataset

__all__ = ['IMG_EXTENSIONS', 'find_image_folders', 'ImageFolderDataset']

# mmpretrain's CustomDataset default (compared case-insensitively).
IMG_EXTENSIONS: Tuple[str, ...] = ('.jpg', '.jpeg', '.png', '.ppm', '.bmp', '.pgm', '.tif',
                                   '.webp')


def find_image_folders(root: str, extensions: Sequence[str] = IMG_EXTENSIONS
                       ) -> Tuple[List[str], List[Tuple[str, int]]]:
    """(sorted class folders, [(image path, class index)]) of an ImageNet-layout directory.

    As mmpretrain's ``CustomDataset``: classes are the sub-directory names in ``sorted`` order,
    images are found recursively in each, in sorted order, by extension. Links to directories
    are not followed (a link loop cannot hang the scan); class folders without images are an
    error, since mmpretrain would silently shift every later class index.
    """
    if not osp.isdir(root):
        raise FileNotFoundError(f'data_prefix: {root!r} is not a directory')
    exts = tuple(e.lower() for e in extensions)
    folders = sorted(e.name for e in os.scandir(root) if e.is_dir(follow_symlinks=False))
    if not folders:
        raise ValueError(f'data_prefix: {root!r} has no class sub-directories '
                         '(expected <root>/<class>/<image>)')
    samples: List[Tuple[str, int]] = []
    empty = []
    for index, folder in enumerate(folders):
        found = 0
        for dirpath, dirnames, filenames in os.walk(osp.join(root, folder)):
            dirnames.sort()
            for name in sorted(filenames):
                if name.lower().endswith(exts):
                    samples.append((osp.join(dirpath, name), index))
                    found += 1
        if not found:
            empty.append(folder)
    if empty:
        raise ValueError(f'data_prefix: class folder(s) {empty[:5]} under {root!r} hold no '
                         f'images with extensions {exts}')
    return folders, samples


@DATASETS.register_module()
class ImageFolderDataset(BaseDataset):
    """Classification samples from the ImageNet folder layout (mmpretrain ``CustomDataset``).

    Args (besides mmengine ``BaseDataset``'s): ``data_prefix`` a folder (str) or
    ``dict(img_path=folder)`` relative to ``data_root``; ``extensions`` the image suffixes.
    ``metainfo=dict(classes=...)``, if given, must equal the sorted folder names: a config whose
    classes disagree with the data would train wrong labels silently.
    """

    def __init__(self, data_root: str = '', data_prefix: Union[str, Dict[str, str]] = '',
                 extensions: Sequence[str] = IMG_EXTENSIONS, metainfo: Optional[dict] = None,
                 lazy_init: bool = False, **kwargs) -> None:
        if isinstance(data_prefix, str):
            data_prefix = dict(img_path=data_prefix)
        if not isinstance(data_prefix, dict) or set(data_prefix) != {'img_path'}:
            raise ValueError(f"data_prefix must be a str or dict(img_path=str), got {data_prefix!r}")
        if kwargs.get('ann_file'):
            raise ValueError('ann_file must be empty: ImageFolderDataset reads the folder layout')
        kwargs.pop('ann_file', None)
        self.extensions = tuple(extensions)
        super().__init__(ann_file='', data_root=data_root, data_prefix=data_prefix,
                         metainfo=metainfo, lazy_init=lazy_init, **kwargs)

    def load_data_list(self) -> List[dict]:
        """One ``dict(img_path, gt_label)`` per image; sets ``metainfo['classes']``."""
        folders, samples = find_image_folders(self.data_prefix['img_path'], self.extensions)
        given = self._metainfo.get('classes')
        if given is not None and tuple(given) != tuple(folders):
            raise ValueError(f'metainfo classes {tuple(given)} must equal the sorted class '
                             f'folders {tuple(folders)} of {self.data_prefix["img_path"]!r}')
        self._metainfo['classes'] = tuple(folders)
        return [dict(img_path=path, gt_label=label) for path, label in samples]
