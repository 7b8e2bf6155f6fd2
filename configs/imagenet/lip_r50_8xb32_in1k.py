# LIP-ResNet-50 (full LIP, Bottleneck-128 logit modules, the reference design) on ImageNet-1k,
# mmpretrain's ResNet-50 recipe (pooling.md states none of LIP's). Authors' reported top-1:
# 78.19 (top-5 93.96; R50 76.40), pooling.md section 1. Command (8 GPUs, 32 images each):
#   bash tools/dist_train.sh configs/imagenet/lip_r50_8xb32_in1k.py 8
# then: python tools/convert_checkpoint.py work_dirs/lip_r50_8xb32_in1k/epoch_100.pth lip_r50.pth
_base_ = ['./_base_/classifier_r50.py', './_base_/imagenet_bs32.py',
          './_base_/schedule_bs256_100e.py']
model = dict(backbone=dict(type='LIPResNet', logit_module='bottleneck', logit_width=128))
