# LIP-DenseNet-121 (SimplifiedLIP stem, unshared Bottleneck-128 LIP transitions) on ImageNet-1k,
# mmpretrain's ResNet-50 recipe (pooling.md states none for DenseNet either). Authors' reported
# top-1: 76.64 (top-5 93.16; DenseNet-121 75.62), pooling.md section 1. Command (8 GPUs, 32 each):
#   bash tools/dist_train.sh configs/imagenet/lip_densenet121_8xb32_in1k.py 8
# then: python tools/convert_checkpoint.py work_dirs/lip_densenet121_8xb32_in1k/epoch_100.pth lip_d121.pth
_base_ = ['./_base_/classifier_r50.py', './_base_/imagenet_bs32.py',
          './_base_/schedule_bs256_100e.py']
model = dict(
    backbone=dict(_delete_=True, type='LIPDenseNet', depth=121, out_indices=(3, ),
                  frozen_stages=-1, norm_eval=False, logit_module='bottleneck', logit_width=128),
    head=dict(in_channels=1024))
