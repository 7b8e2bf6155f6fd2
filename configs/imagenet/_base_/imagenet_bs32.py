# ImageNet-1k in the folder layout mmpretrain's CustomDataset reads (data/imagenet/train/<wnid>/
# *.JPEG, data/imagenet/val/<wnid>/*.JPEG; val sorted into class folders), with mmpretrain's
# ResNet-50 pipelines (configs/_base_/datasets/imagenet_bs32.py): RandomResizedCrop 224 + flip
# for training, short edge 256 + CenterCrop 224 for testing. 32 images per process.
custom_imports = dict(imports=['lip_det', 'lip_det.classification'], allow_failed_imports=False)
default_scope = 'mmdet'  # lip_det.classification registers its modules in mmdet's registries

dataset_type = 'ImageFolderDataset'
data_root = 'data/imagenet/'
data_preprocessor = dict(
    type='ClsDataPreprocessor',
    # RGB ImageNet statistics; images load as BGR, hence to_rgb.
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    to_rgb=True)

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=224),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackClsInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=256, edge='short'),
    dict(type='CenterCrop', crop_size=224),
    dict(type='PackClsInputs'),
]
train_dataloader = dict(
    batch_size=32,
    num_workers=5,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type=dataset_type, data_root=data_root, data_prefix='train',
                 pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=32,
    num_workers=5,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type=dataset_type, data_root=data_root, data_prefix='val',
                 pipeline=test_pipeline))
val_evaluator = dict(type='Accuracy', topk=(1, 5))
test_dataloader = val_dataloader
test_evaluator = val_evaluator
