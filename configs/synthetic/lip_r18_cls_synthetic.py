# Pretrain the LIP-ResNet-18 backbone of faster_rcnn_lip_r18_fpn_synthetic.py (base width 32,
# logit trunk width 32) as an ImageClassifier on the synthetic classification set, on the CPU:
# the small-scale stand-in for configs/imagenet. Commands:
#   python tools/make_synthetic_imagenet.py && \
#   python tools/train.py configs/synthetic/lip_r18_cls_synthetic.py && \
#   python tools/convert_checkpoint.py work_dirs/lip_r18_cls_synthetic/epoch_10.pth \
#       work_dirs/lip_r18_cls_synthetic/backbone.pth
# and then train the detector from it with a child of faster_rcnn_lip_r18_fpn_synthetic.py that
# sets model = dict(backbone=dict(init_cfg=dict(_delete_=True, type='Pretrained',
#     checkpoint='work_dirs/lip_r18_cls_synthetic/backbone.pth'))) (_delete_: the base's init_cfg
# is None; tests/e2e/test_pretrain_e2e.py does exactly this).
_base_ = ['./_base_/synthetic_imagenet.py']

base_width = 32
model = dict(
    type='ImageClassifier',
    backbone=dict(type='LIPResNet', depth=18, base_channels=base_width, logit_module='bottleneck',
                  logit_width=32, out_indices=(3, ), frozen_stages=-1, norm_eval=False),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(type='LinearClsHead', num_classes=5, in_channels=base_width * 8,
              loss=dict(type='CrossEntropyLoss', loss_weight=1.0)))

# 200 training images, batch 16: 13 iterations per epoch.
optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.05, momentum=0.9, weight_decay=0.0001))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=13),
    dict(type='MultiStepLR', by_epoch=True, milestones=[8], gamma=0.1),
]
train_cfg = dict(by_epoch=True, max_epochs=10, val_interval=5)
val_cfg = dict()
test_cfg = dict()
auto_scale_lr = dict(enable=False, base_batch_size=16)
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=10),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', interval=5, max_keep_ckpts=2),
    sampler_seed=dict(type='DistSamplerSeedHook'))
log_processor = dict(window_size=10, by_epoch=True)
env_cfg = dict(cudnn_benchmark=False, mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
               dist_cfg=dict(backend='gloo'))
log_level = 'INFO'
load_from = None
resume = False
randomness = dict(seed=0)
