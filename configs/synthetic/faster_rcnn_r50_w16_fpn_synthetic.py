# Baseline of the Bottleneck comparison on the synthetic set: mmdet's plain ResNet-50 with every
# width a quarter of the paper's (base 16: stem 16, stage outputs 64/128/256/512 channels), so a
# depth-50 detector trains on the CPU. Pair it with faster_rcnn_lip_r50_w16_fpn_synthetic.py.
# Command: python tools/train.py configs/synthetic/faster_rcnn_r50_w16_fpn_synthetic.py
_base_ = ['./_base_/faster_rcnn_tiny_fpn.py', './_base_/synthetic_shapes.py',
          './_base_/schedule_synthetic.py']
custom_imports = dict(imports=['lip_det'], allow_failed_imports=False)
model = dict(
    backbone=dict(depth=50, base_channels=16),
    neck=dict(in_channels=[64, 128, 256, 512]))
