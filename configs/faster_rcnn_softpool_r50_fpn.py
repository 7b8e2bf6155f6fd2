# Faster R-CNN + FPN, SoftPool-ResNet (Stergiou et al., ICCV 2021; stem max-pool -> SoftPool 2x2/s2), depth 50, COCO 2017, 1x schedule.
#
# Expected (COCO val2017 / minival, bbox):
#   no COCO Faster R-CNN number was published by the SoftPool authors; compare with
#   configs/faster_rcnn_r50_fpn.py trained the same way (box AP 37.4 in mmdet's zoo).
#
# Schedule: mmdet's defaults, as the LIP authors used them: SGD lr 0.02 for a total batch of 16
# (8 GPUs x 2 images), 12 epochs, steps at 8 and 11. With another total batch, pass
# --auto-scale-lr and the lr is scaled linearly from base_batch_size=16.
#
# Backbone initialisation: convert an ImageNet checkpoint once, then pass its path:
#   python tools/convert_checkpoint.py softpool_resnet50_imagenet.pth checkpoints/softpool_resnet50_det_backbone.pth
#   (softpool_resnet50_imagenet.pth: the authors' ImageNet checkpoint; the format is detected, or pass
#   --src-format softpool)
# Exact command (8 GPUs; on N processes use N, --auto-scale-lr rescales the lr):
#   bash tools/dist_train.sh configs/faster_rcnn_softpool_r50_fpn.py 8 --auto-scale-lr \
#     --cfg-options model.backbone.init_cfg.checkpoint=checkpoints/softpool_resnet50_det_backbone.pth
#   bash tools/dist_test.sh configs/faster_rcnn_softpool_r50_fpn.py work_dirs/faster_rcnn_softpool_r50_fpn/epoch_12.pth 8
# Single process: python tools/train.py configs/faster_rcnn_softpool_r50_fpn.py --auto-scale-lr --cfg-options ...
# COCO is expected under data/coco/ (mmdet's layout); override with --cfg-options.
_base_ = 'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'

custom_imports = dict(imports=['lip_det'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        type='SoftPoolResNet',
        depth=50,
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/softpool_resnet50_det_backbone.pth')))

auto_scale_lr = dict(enable=False, base_batch_size=16)
