"""Pooled backbones registered in mmdet's MODELS: LIP-ResNet, LIP-DenseNet and ResNets with
SoftPool, Max-Entropy + GFGP, iSP-Gaussian pooling and adaPool."""
from .ada_pool_resnet import AdaPoolResNet
from .lip_densenet import LIPDenseNet
from .lip_resnet import LIPBasicBlock, LIPBottleneck, LIPResNet
from .pooled_resnet import (GaussianResNet, MaxEntResNet, PooledBasicBlock, PooledBottleneck,
                            SoftPoolResNet)

__all__ = [
    'LIPResNet', 'LIPBottleneck', 'LIPBasicBlock', 'SoftPoolResNet', 'MaxEntResNet',
    'GaussianResNet', 'AdaPoolResNet', 'PooledBottleneck', 'PooledBasicBlock', 'LIPDenseNet'
]
