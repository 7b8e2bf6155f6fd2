# LIP-ResNet-18 (base width 32, logit trunk width 32) Mask R-CNN + FPN on the synthetic set with
# instance masks: faster_rcnn_lip_r18_fpn_synthetic.py plus mmdet's mask branch, evaluated on
# boxes and masks (bbox and segm AP, AP_S ...). Command:
#   python tools/make_synthetic_coco.py --out data/synthetic_masks --masks && \
#   python tools/train.py configs/synthetic/mask_rcnn_lip_r18_fpn_synthetic.py
# Another backbone family: the same three bases with the backbone line of
# configs/synthetic/faster_rcnn_<family>_r18_fpn_synthetic.py (none for the plain ResNet-18).
_base_ = ['./_base_/mask_rcnn_tiny_fpn.py', './_base_/synthetic_shapes_masks.py',
          './_base_/schedule_synthetic.py']
custom_imports = dict(imports=['lip_det'], allow_failed_imports=False)
model = dict(backbone=dict(type='LIPResNet', logit_module='bottleneck', logit_width=32))
