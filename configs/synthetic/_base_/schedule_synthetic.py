# Short CPU schedule and runtime for the synthetic set (400 train images, batch 4 -> 100
# iterations per epoch), on top of mmdet's default runtime.
_base_ = 'mmdet::_base_/default_runtime.py'

train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=8, val_interval=8)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=100),
    dict(type='MultiStepLR', begin=0, end=8, by_epoch=True, milestones=[7], gamma=0.1)
]
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='SGD', lr=0.02, momentum=0.9, weight_decay=0.0001),
    # From-scratch training of a small detector: clip the rare large gradients early on.
    clip_grad=dict(max_norm=35, norm_type=2))
# lr 0.02 is for batch 4 on one process; --auto-scale-lr scales it to other batches.
auto_scale_lr = dict(enable=False, base_batch_size=4)

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=10),
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=2),
    visualization=dict(type='DetVisualizationHook'))
log_processor = dict(type='LogProcessor', window_size=10, by_epoch=True)
env_cfg = dict(cudnn_benchmark=False,
               mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
               dist_cfg=dict(backend='gloo'))
randomness = dict(seed=0)
