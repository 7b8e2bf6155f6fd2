# A small Faster R-CNN + FPN for 256-px synthetic images on the CPU: mmdet's Faster R-CNN
# model with a depth-18, base-width-32 backbone trained from scratch, 64-channel FPN, and
# anchors of scale 4 (16-256 px) because the objects are 8-150 px. A CPU training step of the
# LIP-R18 detector (~0.45 s on 2 cores) spends its self CPU time on convolutions (~46 %, most of
# it their backward), mmcv's RoIAlign (~15 %), our pooling ops (~6 %), NMS (~4 %) and norms
# (~5 %): `python tools/benchmark_train_step.py CONFIG --profile 3`. A fixed RoIAlign sampling
# ratio, 64 RoIs per image and fewer RPN candidates than mmdet's COCO settings keep RoIAlign
# and NMS at that share.
_base_ = 'mmdet::_base_/models/faster-rcnn_r50_fpn.py'

base_width = 32
fpn_width = 64
model = dict(
    backbone=dict(
        type='ResNet',
        depth=18,
        base_channels=base_width,
        out_indices=(0, 1, 2, 3),
        # From scratch: nothing frozen, BN statistics are learned.
        frozen_stages=-1,
        norm_eval=False,
        init_cfg=None),
    neck=dict(in_channels=[base_width, base_width * 2, base_width * 4, base_width * 8],
              out_channels=fpn_width, num_outs=5),
    rpn_head=dict(in_channels=fpn_width, feat_channels=fpn_width,
                  anchor_generator=dict(scales=[4])),
    roi_head=dict(
        bbox_roi_extractor=dict(roi_layer=dict(sampling_ratio=2), out_channels=fpn_width),
        bbox_head=dict(in_channels=fpn_width, fc_out_channels=256, num_classes=5)),
    train_cfg=dict(
        rpn_proposal=dict(nms_pre=500, max_per_img=300),
        rcnn=dict(sampler=dict(num=64))),
    test_cfg=dict(rpn=dict(nms_pre=500, max_per_img=300)))
