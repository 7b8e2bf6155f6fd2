# Baseline for the synthetic set: mmdet's plain ResNet-18 (base width 32) Faster R-CNN + FPN.
# Command: python tools/train.py configs/synthetic/faster_rcnn_r18_fpn_synthetic.py
# (after python tools/make_synthetic_coco.py); compare with the LIP variant using
# python tools/analyze_small_objects.py on the two work dirs.
_base_ = ['./_base_/faster_rcnn_tiny_fpn.py', './_base_/synthetic_shapes.py',
          './_base_/schedule_synthetic.py']
custom_imports = dict(imports=['lip_det'], allow_failed_imports=False)
