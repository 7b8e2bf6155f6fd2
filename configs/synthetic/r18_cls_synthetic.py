# Pretrain the plain ResNet-18 backbone of faster_rcnn_r18_fpn_synthetic.py (base width 32) as
# an ImageClassifier on the synthetic classification set: the plain twin of
# lip_r18_cls_synthetic.py (same data, schedule and head), so that the two backbones can be
# compared pretrained as well as from scratch (tools/run_compare.sh, step 'pretrained').
_base_ = ['./lip_r18_cls_synthetic.py']

model = dict(backbone=dict(_delete_=True, type='ResNet', depth=18, base_channels=32,
                           out_indices=(3, ), frozen_stages=-1, norm_eval=False))
