# Faster R-CNN + FPN, AdaPool-ResNet (Stergiou & Poppe, adaPool; stem max-pool -> adaPool 2x2/s2
# with one learned beta per channel), depth 50, COCO 2017, 1x schedule.
#
# Expected (COCO val2017 / minival, bbox):
#   no verified adaPool detection number is available to us (the paper's detector and AP were
#   not readable); compare with configs/faster_rcnn_r50_fpn.py trained the same way (box AP 37.4
#   in mmdet's zoo).
#
# Schedule: mmdet's defaults: SGD lr 0.02 for a total batch of 16 (8 GPUs x 2 images), 12 epochs,
# steps at 8 and 11. With another total batch, pass --auto-scale-lr.
#
# Backbone initialisation: the plain ResNet-50 ImageNet weights, converted once; adaPool adds only
# maxpool.beta_logit (64 values), which is not in that checkpoint and starts at beta = 0.5:
#   python tools/convert_checkpoint.py resnet50.pth checkpoints/resnet50_det_backbone.pth
# Exact command (8 GPUs; on N processes use N, --auto-scale-lr rescales the lr):
#   bash tools/dist_train.sh configs/faster_rcnn_adapool_r50_fpn.py 8 --auto-scale-lr \
#     --cfg-options model.backbone.init_cfg.checkpoint=checkpoints/resnet50_det_backbone.pth
#   bash tools/dist_test.sh configs/faster_rcnn_adapool_r50_fpn.py work_dirs/faster_rcnn_adapool_r50_fpn/epoch_12.pth 8
# COCO is expected under data/coco/ (mmdet's layout); override with --cfg-options.
_base_ = 'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'

custom_imports = dict(imports=['lip_det'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        type='AdaPoolResNet',
        depth=50,
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/resnet50_det_backbone.pth')))

auto_scale_lr = dict(enable=False, base_batch_size=16)
