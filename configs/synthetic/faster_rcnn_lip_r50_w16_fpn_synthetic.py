# The papers' own LIP design (Bottleneck LIP-ResNet-50: LIP stem, shared bottleneck logit trunk,
# LIP in every stride-2 block and its shortcut) with every width a quarter of the paper's: base 16
# and a logit trunk of 32 (the paper's 128 at base 64). Faster R-CNN + FPN on the synthetic set;
# baseline: faster_rcnn_r50_w16_fpn_synthetic.py.
# Command: python tools/train.py configs/synthetic/faster_rcnn_lip_r50_w16_fpn_synthetic.py
_base_ = ['./faster_rcnn_r50_w16_fpn_synthetic.py']
model = dict(backbone=dict(type='LIPResNet', logit_module='bottleneck', logit_width=32))
