# Faster R-CNN + FPN, AdaPool-ResNet (stem max-pool -> adaPool 2x2/s2, one learned beta per
# channel), depth 101, COCO 2017, 1x schedule.
#
# Expected (COCO val2017 / minival, bbox):
#   no verified adaPool detection number is available to us; compare with
#   configs/faster_rcnn_r101_fpn.py (box AP 39.4).
#
# Schedule: mmdet's defaults: SGD lr 0.02 for a total batch of 16 (8 GPUs x 2 images), 12 epochs,
# steps at 8 and 11. With another total batch, pass --auto-scale-lr.
#
# Backbone initialisation: the plain ResNet-101 ImageNet weights, converted once (beta starts at 0.5):
#   python tools/convert_checkpoint.py resnet101.pth checkpoints/resnet101_det_backbone.pth
# Exact command (8 GPUs; on N processes use N, --auto-scale-lr rescales the lr):
#   bash tools/dist_train.sh configs/faster_rcnn_adapool_r101_fpn.py 8 --auto-scale-lr \
#     --cfg-options model.backbone.init_cfg.checkpoint=checkpoints/resnet101_det_backbone.pth
#   bash tools/dist_test.sh configs/faster_rcnn_adapool_r101_fpn.py work_dirs/faster_rcnn_adapool_r101_fpn/epoch_12.pth 8
# COCO is expected under data/coco/ (mmdet's layout); override with --cfg-options.
# Everything but the depth and the checkpoint comes from the depth-50 config.
_base_ = './faster_rcnn_adapool_r50_fpn.py'

model = dict(
    backbone=dict(
        depth=101,
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/resnet101_det_backbone.pth')))
