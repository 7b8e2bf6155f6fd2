# faster_rcnn_r18_fpn_synthetic.py with its ResNet-18 backbone initialised from a classifier
# pretrained on the synthetic classification set instead of from scratch; nothing else changes.
# The backbone file comes from configs/synthetic/r18_cls_synthetic.py, converted:
#   python tools/train.py configs/synthetic/r18_cls_synthetic.py --work-dir work_dirs/pretrain_r18
#   python tools/convert_checkpoint.py work_dirs/pretrain_r18/epoch_10.pth \
#       work_dirs/pretrain_r18/backbone.pth
# tools/run_compare.sh (step 'pretrained') pretrains one per seed and passes its path with
# --cfg-options model.backbone.init_cfg.checkpoint=...
_base_ = ['./faster_rcnn_r18_fpn_synthetic.py']

# _delete_: the base's init_cfg is None, which a dict cannot be merged into.
model = dict(backbone=dict(init_cfg=dict(_delete_=True, type='Pretrained',
                                         checkpoint='work_dirs/pretrain_r18/backbone.pth')))
