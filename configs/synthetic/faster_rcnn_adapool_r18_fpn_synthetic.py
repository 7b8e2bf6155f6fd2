# AdaPool-ResNet-18 (base width 32) Faster R-CNN + FPN on the synthetic set: the stem max-pool
# becomes adaPool 2x2/s2 with one learned beta per channel.
# Command: python tools/train.py configs/synthetic/faster_rcnn_adapool_r18_fpn_synthetic.py
_base_ = ['./_base_/faster_rcnn_tiny_fpn.py', './_base_/synthetic_shapes.py',
          './_base_/schedule_synthetic.py']
custom_imports = dict(imports=['lip_det'], allow_failed_imports=False)
model = dict(backbone=dict(type='AdaPoolResNet'))
