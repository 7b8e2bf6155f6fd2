# Plain ResNet-50 on ImageNet-1k: the baseline of every pooled family (mmpretrain's recipe,
# _base_/schedule_bs256_100e.py). Reported top-1: 76.40 (LIP's README R50, pooling.md section 1);
# the GFGP/iSP-Gaussian re-runs report 76.55 (top-1 err 23.45, section 3); mmpretrain's model zoo
# 76.55. Command (8 GPUs, 32 images each):
#   bash tools/dist_train.sh configs/imagenet/resnet50_8xb32_in1k.py 8
# (one process: python tools/train.py configs/imagenet/resnet50_8xb32_in1k.py --auto-scale-lr)
# then: python tools/convert_checkpoint.py work_dirs/resnet50_8xb32_in1k/epoch_100.pth r50.pth
_base_ = ['./_base_/classifier_r50.py', './_base_/imagenet_bs32.py',
          './_base_/schedule_bs256_100e.py']

