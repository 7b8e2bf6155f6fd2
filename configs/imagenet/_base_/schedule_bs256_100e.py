# mmpretrain's ResNet-50 recipe (configs/_base_/schedules/imagenet_bs256.py): SGD lr 0.1 for a
# total batch of 256 (8 processes x 32), momentum 0.9, weight decay 1e-4, 100 epochs, lr x0.1
# at epochs 30, 60 and 90. shared/spec/pooling.md states no ImageNet training recipe for any of
# the pooling papers, so every family uses this one. --auto-scale-lr rescales lr linearly for
# another total batch.
optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=0.0001))
param_scheduler = dict(type='MultiStepLR', by_epoch=True, milestones=[30, 60, 90], gamma=0.1)
train_cfg = dict(by_epoch=True, max_epochs=100, val_interval=1)
val_cfg = dict()
test_cfg = dict()
auto_scale_lr = dict(enable=False, base_batch_size=256)

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=100),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=3),
    sampler_seed=dict(type='DistSamplerSeedHook'))
env_cfg = dict(cudnn_benchmark=False, mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
               dist_cfg=dict(backend='nccl'))
log_level = 'INFO'
load_from = None
resume = False
randomness = dict(seed=None, deterministic=False)
