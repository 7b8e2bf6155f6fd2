# Faster R-CNN + FPN, iSP-Gaussian pooling ResNet (Kobayashi, NeurIPS 2019), depth 101, COCO 2017, 1x schedule.
#
# Expected (COCO val2017 / minival, bbox):
#   no published COCO number; compare with configs/faster_rcnn_r101_fpn.py (box AP 39.4).
#
# Schedule: mmdet's defaults, as the LIP authors used them: SGD lr 0.02 for a total batch of 16
# (8 GPUs x 2 images), 12 epochs, steps at 8 and 11. With another total batch, pass
# --auto-scale-lr and the lr is scaled linearly from base_batch_size=16.
#
# Backbone initialisation: convert an ImageNet checkpoint once, then pass its path:
#   python tools/convert_checkpoint.py gaussian_resnet101_imagenet.pth checkpoints/gaussian_resnet101_det_backbone.pth
#   (gaussian_resnet101_imagenet.pth: the authors' ImageNet checkpoint; the format is detected, or pass
#   --src-format gaussian)
# Exact command (8 GPUs; on N processes use N, --auto-scale-lr rescales the lr):
#   bash tools/dist_train.sh configs/faster_rcnn_gaussian_r101_fpn.py 8 --auto-scale-lr \
#     --cfg-options model.backbone.init_cfg.checkpoint=checkpoints/gaussian_resnet101_det_backbone.pth
#   bash tools/dist_test.sh configs/faster_rcnn_gaussian_r101_fpn.py work_dirs/faster_rcnn_gaussian_r101_fpn/epoch_12.pth 8
# Single process: python tools/train.py configs/faster_rcnn_gaussian_r101_fpn.py --auto-scale-lr --cfg-options ...
# COCO is expected under data/coco/ (mmdet's layout); override with --cfg-options.
# Everything but the depth and the checkpoint comes from the depth-50 config.
_base_ = './faster_rcnn_gaussian_r50_fpn.py'

model = dict(
    backbone=dict(
        depth=101,
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/gaussian_resnet101_det_backbone.pth')))
