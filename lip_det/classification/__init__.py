"""ImageNet-style classification on mmengine alone, in mmpretrain's checkpoint layout.

Importing this package registers, in mmdet's registries (so ``tools/train.py`` runs the
``configs/imagenet`` and ``configs/synthetic/*_cls_*`` configs with ``default_scope='mmdet'``):

* MODELS: ``ImageClassifier`` (``backbone`` -> ``neck`` -> ``head``, the module names of
  mmpretrain's, so a Runner checkpoint holds ``backbone.*`` and ``head.fc.*`` exactly as an
  mmpretrain one does), ``ClsDataPreprocessor`` and ``LinearClsHead``; the neck is mmdet's own
  ``GlobalAveragePooling`` (the same class mmpretrain has, without parameters);
* DATASETS: ``ImageFolderDataset`` (``root/<class>/<image>``, classes sorted as mmpretrain's
  ``CustomDataset`` sorts them);
* TRANSFORMS: ``RandomResizedCrop``, ``ResizeEdge``, ``PackClsInputs`` (loading, centre crop
  and flip are mmcv's/mmdet's ``LoadImageFromFile``, ``CenterCrop`` and ``RandomFlip``);
* METRICS: ``Accuracy`` (top-k, reported as ``accuracy/top1``, ``accuracy/top5``).

Why not mmpretrain itself: it imports torchvision, and no torchvision build installable here
works beside torch's CPU wheel (see docs/usage.md, "ImageNet pretraining"). Where mmpretrain is
importable, the backbones are also registered in its MODELS (``register_in_mmpretrain``).
"""
from . import dataset, metric, model, transforms  # noqa: F401  (register the modules)
from .dataset import IMG_EXTENSIONS, ImageFolderDataset, find_image_folders
from .metric import Accuracy, topk_accuracy
from .mmpretrain_compat import BACKBONE_NAMES, register_in_mmpretrain
from .model import ClsDataPreprocessor, ImageClassifier, LinearClsHead
from .transforms import PackClsInputs, RandomResizedCrop, ResizeEdge

# A no-op without mmpretrain (the CPU stack): guarded inside.
register_in_mmpretrain()

__all__ = [
    'ImageClassifier', 'ClsDataPreprocessor', 'LinearClsHead', 'ImageFolderDataset',
    'find_image_folders', 'IMG_EXTENSIONS', 'RandomResizedCrop', 'ResizeEdge', 'PackClsInputs',
    'Accuracy', 'topk_accuracy', 'register_in_mmpretrain', 'BACKBONE_NAMES'
]
