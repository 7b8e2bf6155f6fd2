#!/usr/bin/env python
"""The reference ImageNet classification models, rebuilt from their authors' published designs.

    python tools/reference_models.py {torchvision,softpool,maxent,gaussian,lip} DEPTH OUT [--seed S]

writes a randomly initialised reference checkpoint in the format its training script saves
(bare state_dicts for torchvision and LIP, ``module.``-prefixed training checkpoints for SoftPool,
Max-Ent and Gaussian), so that ``tools/convert_checkpoint.py`` can be tried without downloads.

The models are torchvision's ResNets and the reference LIP-ResNet, LIP-DenseNet, SoftPool,
Max-Entropy (GFGP) and iSP-Gaussian ResNets. Only each reference's module layout (hence its
state_dict keys and shapes) and its forward computation are reproduced, independently of
lip_det's backbones, so that the conversion tests can check "reference checkpoint -> converter ->
backbone" against the reference model itself. The pooling arithmetic calls lip_det.ops (tested
on its own against the formulas). ``forward`` returns the four stage outputs (what the
detector's FPN reads), not the logits.
"""
from __future__ import annotations

import argparse
import os
import sys
from collections import OrderedDict
from typing import Callable, Dict, List, Optional, Tuple

# Runnable from a checkout without installation.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from lip_det.ops import gauss_pool2d, lip_pool2d, maxent_pool2d, soft_pool2d  # noqa: E402

BLOCKS_PER_STAGE: Dict[int, Tuple[str, Tuple[int, ...]]] = {
    18: ('basic', (2, 2, 2, 2)), 34: ('basic', (3, 4, 6, 3)), 50: ('bottleneck', (3, 4, 6, 3)),
    101: ('bottleneck', (3, 4, 23, 3)), 152: ('bottleneck', (3, 8, 36, 3))}


def conv1x1(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 1, stride=stride, bias=False)


def conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)


# ------------------------------------------------------------------ pooling modules (ref keys)
class GFGPMaxEnt(nn.Module):
    """Max-Ent pooling with GFGP: lambda = sigmoid(ToParam(x)), keys ToParam.{1,2,4,5}."""

    def __init__(self, c: int, k: int, s: int, p: int = 0) -> None:
        super().__init__()
        self.geom = (k, s, p)
        self.ToParam = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(c, c // 2, 1),
                                     nn.BatchNorm2d(c // 2), nn.ReLU(inplace=True),
                                     nn.Conv2d(c // 2, c, 1), nn.BatchNorm2d(c))

    def forward(self, x):
        return maxent_pool2d(x, torch.sigmoid(self.ToParam(x)), *self.geom)


class GFGPGauss(nn.Module):
    """iSP-Gaussian pooling; in eval eta = softplus(ToMean(ToHidden(x)))."""

    def __init__(self, c: int, k: int, s: int, p: int = 0) -> None:
        super().__init__()
        self.geom = (k, s, p)
        self.ToHidden = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(c, c // 2, 1),
                                      nn.BatchNorm2d(c // 2), nn.ReLU(inplace=True))
        self.ToMean = nn.Sequential(nn.Conv2d(c // 2, c, 1), nn.BatchNorm2d(c))
        self.ToSigma = nn.Sequential(nn.Conv2d(c // 2, c, 1), nn.BatchNorm2d(c), nn.Sigmoid())

    def forward(self, x):
        assert not self.training, 'the round-trip compares deterministic (eval-mode) outputs'
        return gauss_pool2d(x, F.softplus(self.ToMean(self.ToHidden(x))), *self.geom)


class SoftGate(nn.Module):
    def forward(self, x):
        return torch.sigmoid(x) * 12.0


def _in(c: int) -> nn.InstanceNorm2d:
    return nn.InstanceNorm2d(c, affine=True)


class SimplifiedLIP(nn.Module):
    """Stem LIP: logit keys ``logit.conv``/``logit.bn`` (LIP-ResNet) or ``conv1``/``bn1`` (DenseNet)."""

    def __init__(self, c: int, names: Tuple[str, str] = ('conv', 'bn')) -> None:
        super().__init__()
        self.logit = nn.Sequential(OrderedDict([
            (names[0], nn.Conv2d(c, c, 3, padding=1, bias=False)), (names[1], _in(c)),
            ('gate', SoftGate())]))

    def forward(self, x):
        return lip_pool2d(x, self.logit(x), 3, 2, 1)


class BottleneckShared(nn.Module):
    def __init__(self, cin: int) -> None:
        super().__init__()
        self.logit = nn.Sequential(OrderedDict(
            conv1=conv1x1(cin, 128), bn1=_in(128), relu1=nn.ReLU(True),
            conv2=nn.Conv2d(128, 128, 3, padding=1, bias=False), bn2=_in(128), relu2=nn.ReLU(True)))

    def forward(self, x):
        return self.logit(x)


class BottleneckLIP(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.postprocessing = nn.Sequential(OrderedDict(conv=conv1x1(128, c), bn=_in(c),
                                                        gate=SoftGate()))

    def forward(self, x, shared):
        return lip_pool2d(x, self.postprocessing(shared), 3, 2, 1)


# ------------------------------------------------------------------ blocks
class Basic(nn.Module):
    expansion = 1

    def __init__(self, cin, planes, stride=1, downsample=None, pool: Optional[Callable] = None):
        super().__init__()
        # Max-Ent/Gaussian refs: the stride moves from the conv to `pooling` after the add.
        conv_stride = 1 if pool else stride
        self.conv1, self.bn1 = conv3x3(cin, planes, conv_stride), nn.BatchNorm2d(planes)
        self.conv2, self.bn2 = conv3x3(planes, planes), nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        if pool is not None and stride > 1:
            self.pooling = pool(planes, 2, 2)

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out = self.relu(out + (x if self.downsample is None else self.downsample(x)))
        return self.pooling(out) if hasattr(self, 'pooling') else out


class Bottle(nn.Module):
    expansion = 4

    def __init__(self, cin, planes, stride=1, downsample=None, pool: Optional[Callable] = None,
                 lip: bool = False):
        super().__init__()
        self.lip = lip and stride > 1
        self.conv1, self.bn1 = conv1x1(cin, planes), nn.BatchNorm2d(planes)
        if self.lip:
            self.bottleneck_shared = BottleneckShared(cin)
            self.conv2 = nn.Sequential(BottleneckLIP(planes), conv1x1(planes, planes))
        else:
            self.conv2 = conv3x3(planes, planes, 1 if pool else stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3, self.bn3 = conv1x1(planes, planes * 4), nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        if pool is not None and stride > 1:
            self.pooling = pool(planes * 4, 2, 2)

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        if self.lip:
            shared = self.bottleneck_shared(x)
            out = self.conv2[1](self.conv2[0](out, shared))
            identity = self.downsample.conv(self.downsample.lip(x, shared))
            identity = self.downsample.bn(identity)
        else:
            out = self.conv2(out)
            identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn2(out))
        out = self.bn3(self.conv3(out))
        out = self.relu(out + identity)
        return self.pooling(out) if hasattr(self, 'pooling') else out


# ------------------------------------------------------------------ whole models
class RefResNet(nn.Module):
    """torchvision ResNet and the four reference variants, selected by ``kind``.

    kind: 'torchvision' | 'softpool' | 'maxent' | 'gaussian' | 'lip'.
    """

    def __init__(self, depth: int, kind: str = 'torchvision', num_classes: int = 1000) -> None:
        super().__init__()
        block_name, layers = BLOCKS_PER_STAGE[depth]
        block = Bottle if block_name == 'bottleneck' else Basic
        if kind == 'lip' and block is not Bottle:
            raise ValueError('the LIP reference has Bottleneck ResNets only')
        self.kind = kind
        pool = {'maxent': GFGPMaxEnt, 'gaussian': GFGPGauss}.get(kind)
        self.conv1 = nn.Conv2d(3, 64, 7, stride=1 if pool else 2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        if pool:
            self.pool1 = pool(64, 2, 2)
            self.pool = pool(64, 3, 2, 1)
        elif kind == 'lip':
            self.maxpool = SimplifiedLIP(64)
        elif kind != 'softpool':  # SoftPool's stem pooling is parameter-free (no module)
            self.maxpool = nn.MaxPool2d(3, 2, 1)
        cin = 64
        for i, (planes, n) in enumerate(zip((64, 128, 256, 512), layers)):
            stride = 1 if i == 0 else 2
            out = planes * block.expansion
            downsample = None
            if stride != 1 or cin != out:
                conv_stride = 1 if (pool or kind == 'lip') else stride
                if kind == 'lip':
                    parts = ([('lip', BottleneckLIP(cin))] if stride > 1 else []) + [
                        ('conv', conv1x1(cin, out, conv_stride)), ('bn', nn.BatchNorm2d(out))]
                    downsample = nn.Sequential(OrderedDict(parts))
                else:
                    downsample = nn.Sequential(conv1x1(cin, out, conv_stride), nn.BatchNorm2d(out))
            extra = dict(lip=True) if kind == 'lip' else {}
            blocks = [block(cin, planes, stride, downsample, pool, **extra)]
            blocks += [block(out, planes) for _ in range(1, n)]
            setattr(self, f'layer{i + 1}', nn.Sequential(*blocks))
            cin = out
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x) -> List[torch.Tensor]:
        x = self.relu(self.bn1(self.conv1(x)))
        if self.kind in ('maxent', 'gaussian'):
            x = self.pool(self.pool1(x))
        elif self.kind == 'softpool':
            x = soft_pool2d(x, 2, 2)
        else:
            x = self.maxpool(x)
        outs = []
        for i in range(1, 5):
            x = getattr(self, f'layer{i}')(x)
            outs.append(x)
        return outs


class DenseBottleneckLIP(nn.Module):
    """LIP-DenseNet transition pooling: its own trunk and head, LIP k2/s2/p0."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.logit = nn.Sequential(OrderedDict(
            conv1=conv1x1(c, 128), bn1=_in(128), relu1=nn.ReLU(True),
            conv2=nn.Conv2d(128, 128, 3, padding=1, bias=False), bn2=_in(128), relu2=nn.ReLU(True),
            conv3=conv1x1(128, c), bn3=_in(c), gate=SoftGate()))

    def forward(self, x):
        return lip_pool2d(x, self.logit(x), 2, 2, 0)


DENSENETS = {121: (32, (6, 12, 24, 16), 64), 161: (48, (6, 12, 36, 24), 96),
             169: (32, (6, 12, 32, 32), 64), 201: (32, (6, 12, 48, 32), 64)}


class RefLIPDenseNet(nn.Module):
    """torchvision DenseNet-BC with LIP in pool0 and the transitions (the LIP reference).

    forward returns ReLU(BN(block output)) per dense block, with the BN that follows the block
    (the transition's ``norm`` or ``norm5``): the features a detector reads.
    """

    def __init__(self, depth: int = 121, num_classes: int = 1000) -> None:
        super().__init__()
        growth, blocks, c = DENSENETS[depth]
        f = OrderedDict(conv0=nn.Conv2d(3, c, 7, 2, 3, bias=False), norm0=nn.BatchNorm2d(c),
                        relu0=nn.ReLU(True), pool0=SimplifiedLIP(c, ('conv1', 'bn1')))
        for i, n in enumerate(blocks):
            block = nn.Module()
            for j in range(n):
                cin = c + j * growth
                block.add_module(f'denselayer{j + 1}', nn.Sequential(OrderedDict(
                    norm1=nn.BatchNorm2d(cin), relu1=nn.ReLU(True), conv1=conv1x1(cin, 4 * growth),
                    norm2=nn.BatchNorm2d(4 * growth), relu2=nn.ReLU(True),
                    conv2=conv3x3(4 * growth, growth))))
            f[f'denseblock{i + 1}'] = block
            c += n * growth
            if i < len(blocks) - 1:
                f[f'transition{i + 1}'] = nn.Sequential(OrderedDict(
                    norm=nn.BatchNorm2d(c), relu=nn.ReLU(True), conv=conv1x1(c, c // 2),
                    pool=DenseBottleneckLIP(c // 2)))
                c //= 2
        f['norm5'] = nn.BatchNorm2d(c)
        self.features = nn.Sequential(f)
        self.classifier = nn.Linear(c, num_classes)

    def forward(self, x) -> List[torch.Tensor]:
        f = self.features
        x = f.pool0(f.relu0(f.norm0(f.conv0(x))))
        outs = []
        for i in range(1, 5):
            for layer in getattr(f, f'denseblock{i}').children():
                x = torch.cat([x, layer(x)], 1)
            norm = f.norm5 if i == 4 else getattr(f, f'transition{i}').norm
            outs.append(F.relu(norm(x)))
            if i < 4:
                t = getattr(f, f'transition{i}')
                x = t.pool(t.conv(t.relu(t.norm(x))))
        return outs


def randomize_(model: nn.Module, seed: int = 0) -> nn.Module:
    """Non-trivial weights everywhere (incl. BN statistics and the zero-init logit convs)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, mod in model.named_modules():
            if isinstance(mod, (nn.Conv2d, nn.Linear)):
                fan_in = mod.weight[0].numel()
                mod.weight.copy_(torch.randn(mod.weight.shape, generator=g) / fan_in ** 0.5)
                if mod.bias is not None:
                    mod.bias.copy_(torch.randn(mod.bias.shape, generator=g) * 0.1)
            elif isinstance(mod, (nn.BatchNorm2d, nn.InstanceNorm2d)):
                mod.weight.copy_(torch.rand(mod.weight.shape, generator=g) * 0.5 + 0.5)
                mod.bias.copy_(torch.randn(mod.bias.shape, generator=g) * 0.1)
                if mod.running_mean is not None:
                    mod.running_mean.copy_(torch.randn(mod.running_mean.shape, generator=g) * 0.1)
                    mod.running_var.copy_(torch.rand(mod.running_var.shape, generator=g) + 0.5)
                    mod.num_batches_tracked.fill_(1000)
    model.eval()  # not chained: mmdet's ResNet.train() returns None
    return model


def training_checkpoint(model: nn.Module, arch: str, with_args: bool) -> dict:
    """The reference training-script checkpoint: 'module.'-prefixed state_dict in a wrapper."""
    ckpt = {
        'epoch': 90, 'arch': arch,
        'state_dict': OrderedDict(('module.' + k, v) for k, v in model.state_dict().items()),
        'best_acc1': torch.tensor(76.4),
        'optimizer': torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9).state_dict(),
    }
    if with_args:  # GFGP / Gaussian scripts: also the command line and training statistics
        ckpt['args'] = argparse.Namespace(arch=arch, pool='max_ent', lr=0.1, epochs=90,
                                          milestones=[30, 60], gpu=None)
        ckpt['stats'] = {'train_loss': [6.9, 3.1], 'val_err': np.array([0.9, 0.24])}
    return ckpt


def main(argv=None) -> int:
    """Write a randomly initialised reference checkpoint, to try the converter without downloads."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument('kind', choices=['torchvision', 'softpool', 'maxent', 'gaussian', 'lip'])
    parser.add_argument('depth', type=int, choices=sorted(BLOCKS_PER_STAGE))
    parser.add_argument('out', help='where to save it, in the reference training script format')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    model = randomize_(RefResNet(args.depth, args.kind), args.seed)
    arch = f"{'lip_' if args.kind == 'lip' else ''}resnet{args.depth}"
    if args.kind in ('torchvision', 'lip'):  # released as bare state_dicts
        torch.save(model.state_dict(), args.out)
    else:
        torch.save(training_checkpoint(model, arch, with_args=args.kind != 'softpool'), args.out)
    n = sum(p.numel() for p in model.parameters())
    print(f'{args.out}: {args.kind} {arch}, {len(model.state_dict())} tensors, {n:,} parameters')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
