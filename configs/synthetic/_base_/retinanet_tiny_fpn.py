# A small RetinaNet + FPN for 256-px synthetic images on the CPU: mmdet's RetinaNet model with
# the depth-18, base-width-32 backbone of faster_rcnn_tiny_fpn.py trained from scratch, and a
# 64-channel FPN and head. The pyramid stays RetinaNet's P3-P7 (strides 8-128). Its anchors
# (3 scales per octave, base scale x stride) drop from octave_base_scale 4 (32-50 px on P3, for
# COCO at 800 px) to 2: 16-25 px on P3 up to 256-406 px on P7, so the 8-150 px objects meet
# anchors from 16 px up as in the Faster R-CNN one (16-256 px); an 8-px object still gets its
# best anchor as a positive (RetinaNet's assigner, min_pos_iou=0).
_base_ = 'mmdet::_base_/models/retinanet_r50_fpn.py'

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
    # start_level=1 (mmdet's): the FPN reads C3-C5, the extra P6/P7 convs read C5.
    neck=dict(in_channels=[base_width, base_width * 2, base_width * 4, base_width * 8],
              out_channels=fpn_width, num_outs=5),
    bbox_head=dict(num_classes=5, in_channels=fpn_width, feat_channels=fpn_width,
                   anchor_generator=dict(octave_base_scale=2)))
