# mmpretrain's ResNet-50 ImageClassifier (configs/_base_/models/resnet50.py) built from mmdet's
# ResNet and lip_det.classification: same module names, so its checkpoints have mmpretrain's
# layout (backbone.*, head.fc.*). The backbone trains everything and updates BN statistics
# (frozen_stages=-1, norm_eval=False: mmdet's detection defaults would freeze them). The
# data preprocessor is the top-level `data_preprocessor` of the data set config, which mmengine's
# Runner puts into the model, as in mmpretrain.
model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='ResNet',
        depth=50,
        num_stages=4,
        out_indices=(3, ),
        frozen_stages=-1,
        norm_eval=False,
        style='pytorch'),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(
        type='LinearClsHead',
        num_classes=1000,
        in_channels=2048,
        loss=dict(type='CrossEntropyLoss', loss_weight=1.0)))
