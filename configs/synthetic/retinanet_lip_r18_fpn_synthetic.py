# LIP-ResNet-18 (base width 32, logit trunk width 32) RetinaNet + FPN on the synthetic set, the
# one-stage counterpart of faster_rcnn_lip_r18_fpn_synthetic.py (same backbone, data and
# schedule). The lr stays the schedule's 0.02 rather than mmdet's RetinaNet halving to 0.01 (for
# pretrained backbones): from scratch, 200 iterations on the e2e tests' 16-image set took the
# focal loss from 1.13 to 0.68 at lr 0.02 but only to 1.07 at 0.01 (one seed, tools/train.py).
# Command:
#   python tools/make_synthetic_coco.py && \
#   python tools/train.py configs/synthetic/retinanet_lip_r18_fpn_synthetic.py
# Another backbone family: the same three bases with the backbone line of
# configs/synthetic/faster_rcnn_<family>_r18_fpn_synthetic.py (none for the plain ResNet-18).
_base_ = ['./_base_/retinanet_tiny_fpn.py', './_base_/synthetic_shapes.py',
          './_base_/schedule_synthetic.py']
custom_imports = dict(imports=['lip_det'], allow_failed_imports=False)
model = dict(backbone=dict(type='LIPResNet', logit_module='bottleneck', logit_width=32))
