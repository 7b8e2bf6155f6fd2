"""Backbones built on the learnable pooling layers, registered in mmdet's MODELS."""
from .backbones import (AdaPoolResNet, GaussianResNet, LIPDenseNet, LIPResNet, MaxEntResNet,  # noqa: F401
                        SoftPoolResNet)

__all__ = ['AdaPoolResNet', 'LIPResNet', 'SoftPoolResNet', 'MaxEntResNet', 'GaussianResNet', 'LIPDenseNet']
