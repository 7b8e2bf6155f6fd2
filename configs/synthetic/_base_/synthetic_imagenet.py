# The synthetic classification set (tools/make_synthetic_imagenet.py, data/synthetic_imagenet/):
# 64-px images, one centred object of the five synthetic-shape classes each, ImageNet folder
# layout. Training crops keep at least a quarter of the image (mmpretrain's 0.08 would often cut
# the one object away at 64 px); testing reads the images as they are.
custom_imports = dict(imports=['lip_det', 'lip_det.classification'], allow_failed_imports=False)
default_scope = 'mmdet'

dataset_type = 'ImageFolderDataset'
data_root = 'data/synthetic_imagenet/'
# Folder order (sorted), which is the label order; must equal the set's folders (checked).
metainfo = dict(classes=('checkered_triangle', 'disc', 'dotted_cross', 'ring', 'striped_square'))
image_size = 64
data_preprocessor = dict(type='ClsDataPreprocessor', mean=[123.675, 116.28, 103.53],
                         std=[58.395, 57.12, 57.375], to_rgb=True)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=image_size, crop_ratio_range=(0.25, 1.0)),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackClsInputs'),
]
test_pipeline = [dict(type='LoadImageFromFile'), dict(type='PackClsInputs')]
train_dataloader = dict(
    batch_size=16,
    num_workers=0,  # 64-px PNGs load in well under a millisecond
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type=dataset_type, data_root=data_root, data_prefix='train', metainfo=metainfo,
                 pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=16,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type=dataset_type, data_root=data_root, data_prefix='val', metainfo=metainfo,
                 pipeline=test_pipeline))
val_evaluator = dict(type='Accuracy', topk=(1, 5))
test_dataloader = val_dataloader
test_evaluator = val_evaluator
