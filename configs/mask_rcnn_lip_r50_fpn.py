# Mask R-CNN + FPN, LIP-ResNet (Gao et al., ICCV 2019, "full LIP, Bottleneck-128"), depth 50, COCO 2017, 1x schedule.
#
# Expected (COCO val2017 / minival, bbox and segm):
#   the LIP authors published COCO numbers for Faster R-CNN + FPN only (>= 1.4 box AP over the
#   plain ResNet, the largest gain on AP_S; configs/faster_rcnn_lip_r50_fpn.py). The plain
#   ResNet-50 baseline of this detector is mmdet's model zoo (mask-rcnn_r50_fpn_1x_coco in
#   mmdet's configs/mask_rcnn/metafile.yml): Mask R-CNN R50 1x: box AP 38.2, mask AP 34.7.
#
# Only the backbone differs from mmdet's config. Schedule: mmdet's, unchanged: SGD lr 0.02
# for a total batch of 16 (8 GPUs x 2 images), 12 epochs, steps at 8 and 11. With another total
# batch, pass --auto-scale-lr and the lr is scaled linearly from base_batch_size=16.
#
# Backbone initialisation: convert an ImageNet checkpoint once, then pass its path:
#   python tools/convert_checkpoint.py lip_resnet50_imagenet.pth checkpoints/lip_resnet50_det_backbone.pth
#   (lip_resnet50_imagenet.pth: the authors' ImageNet checkpoint; the format is detected, or pass
#   --src-format lip)
# Exact command (8 GPUs; on N processes use N, --auto-scale-lr rescales the lr):
#   bash tools/dist_train.sh configs/mask_rcnn_lip_r50_fpn.py 8 --auto-scale-lr \
#     --cfg-options model.backbone.init_cfg.checkpoint=checkpoints/lip_resnet50_det_backbone.pth
#   bash tools/dist_test.sh configs/mask_rcnn_lip_r50_fpn.py work_dirs/mask_rcnn_lip_r50_fpn/epoch_12.pth 8
# Single process: python tools/train.py configs/mask_rcnn_lip_r50_fpn.py --auto-scale-lr --cfg-options ...
# COCO is expected under data/coco/ (mmdet's layout); override with --cfg-options.
#
# Every other backbone family is one line away: the backbone below sets only type, depth and
# init_cfg (LIPResNet's defaults are the paper's design: logit_module='bottleneck',
# logit_width=128, LIP in the stem and every stride-2 block; each family's defaults are its
# reference design), so the same command with
#   --cfg-options model.backbone.type=SoftPoolResNet \
#     model.backbone.init_cfg.checkpoint=checkpoints/softpool_resnet50_det_backbone.pth
# trains SoftPool-ResNet-50 (likewise MaxEntResNet, GaussianResNet, and ResNet for the plain
# baseline with checkpoints/resnet50_det_backbone.pth; add model.backbone.depth=101 for depth 101).
# LIPDenseNet has other arguments and output widths: see README "Other detectors".
_base_ = 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py'

custom_imports = dict(imports=['lip_det'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        type='LIPResNet',
        depth=50,
        init_cfg=dict(type='Pretrained', checkpoint='checkpoints/lip_resnet50_det_backbone.pth')))

auto_scale_lr = dict(enable=False, base_batch_size=16)
