# LIP-ResNet-18 (our BasicBlock design: the reference has Bottleneck only) on ImageNet-1k,
# mmpretrain's ResNet recipe. Authors' reported top-1: none (no LIP-R18 exists in the
# reference; mmpretrain's plain ResNet-18 reaches 69.90). Command (8 GPUs, 32 images each):
#   bash tools/dist_train.sh configs/imagenet/lip_r18_8xb32_in1k.py 8
# then: python tools/convert_checkpoint.py work_dirs/lip_r18_8xb32_in1k/epoch_100.pth lip_r18.pth
_base_ = ['./_base_/classifier_r50.py', './_base_/imagenet_bs32.py',
          './_base_/schedule_bs256_100e.py']
model = dict(
    backbone=dict(type='LIPResNet', depth=18, logit_module='bottleneck', logit_width=128),
    head=dict(in_channels=512))
