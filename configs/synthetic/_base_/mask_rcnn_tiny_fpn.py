# A small Mask R-CNN + FPN for 256-px synthetic images on the CPU: the Faster R-CNN of
# faster_rcnn_tiny_fpn.py (same backbone, FPN, anchors, RoI sampling) plus what mmdet's
# mask-rcnn_r50_fpn.py adds to its faster-rcnn_r50_fpn.py, nothing else: the MaskRCNN type,
# padded masks, an FCN mask head on 14x14 RoIs (28x28 mask targets), low-quality matches in the
# R-CNN assigner and the 0.5 mask threshold. The mask branch is 64 channels wide like the FPN
# and uses the same fixed RoIAlign sampling ratio as the box branch.
_base_ = './faster_rcnn_tiny_fpn.py'

fpn_width = 64
model = dict(
    type='MaskRCNN',
    data_preprocessor=dict(pad_mask=True),
    roi_head=dict(
        mask_roi_extractor=dict(
            type='SingleRoIExtractor',
            roi_layer=dict(type='RoIAlign', output_size=14, sampling_ratio=2),
            out_channels=fpn_width,
            featmap_strides=[4, 8, 16, 32]),
        mask_head=dict(
            type='FCNMaskHead',
            num_convs=4,
            in_channels=fpn_width,
            conv_out_channels=fpn_width,
            num_classes=5,
            loss_mask=dict(type='CrossEntropyLoss', use_mask=True, loss_weight=1.0))),
    train_cfg=dict(rcnn=dict(assigner=dict(match_low_quality=True), mask_size=28)),
    test_cfg=dict(rcnn=dict(mask_thr_binary=0.5)))
