"""The one table of reference checkpoint formats: how to recognise each, how its keys map onto the
backbone, and which backbone it feeds.

Detection looks only at key names and shapes (never at pickled code). Each ``FormatSpec`` holds
all there is to one format: its description, the architecture detector that applies
(``family``), the registered backbone type it converts to (``backbone``; None for an
``mmpretrain`` classifier, whose backbone type and arguments come from its embedded config
``meta['cfg']`` or, without one, from its stripped keys: ``convert._mmpretrain_backbone``) and
its key rule, which ``convert.map_keys`` applies to the keys after any ``module.`` prefix has
been stripped: a key that starts with one of ``drop_prefixes`` is the classifier and is dropped,
a key that starts with ``strip_prefix`` loses that prefix, any other key is kept unchanged.

The backbones keep the references' module names (LIP-ResNet's shortcuts are
``downsample.{lip,conv,bn}`` as in the reference; LIP-DenseNet keeps the reference's
``features.*`` tree), so with BN a reference ImageNet state dict minus its classifier *is* the
backbone's state dict; the converter then checks the result against the backbone's own
``state_dict()``, strictly.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional, Tuple

import torch

from .safe_load import CheckpointError

__all__ = ['FormatSpec', 'FORMATS', 'FORMAT_ALIASES', 'resolve_format', 'detect_format',
           'detect_arch', 'backbone_config']


@dataclass(frozen=True)
class FormatSpec:
    """One reference checkpoint format: what it is, how its keys map, which backbone it feeds."""

    name: str
    description: str
    family: str  # 'resnet' or 'densenet': which architecture detector applies; 'classifier':
    # a whole classifier whose backbone is read from its config meta or its stripped keys
    backbone: Optional[str]  # the registered backbone type; None: read from the checkpoint
    drop_prefixes: Tuple[str, ...]  # keys starting with one of these (the classifier): dropped
    strip_prefix: str = ''  # removed from the keys that start with it (the backbone's own keys)


_DROP_FC = ('fc.',)

FORMATS: Dict[str, FormatSpec] = {
    spec.name: spec
    for spec in (
        FormatSpec('lip', 'LIP reference LIP-ResNet (sebgao/LIP)', 'resnet', 'LIPResNet',
                   _DROP_FC),
        FormatSpec('lip_densenet', 'LIP reference LIP-DenseNet (sebgao/LIP)', 'densenet',
                   'LIPDenseNet', ('classifier.',)),
        FormatSpec('softpool', 'SoftPool reference ResNet (alexandrosstergiou/SoftPool)', 'resnet',
                   'SoftPoolResNet', _DROP_FC),
        FormatSpec('maxent', 'GFGP reference Max-Entropy-pooling ResNet (Kobayashi, ICCV 2019)',
                   'resnet', 'MaxEntResNet', _DROP_FC),
        FormatSpec('gaussian', 'iSP-Gaussian-pooling reference ResNet (Kobayashi, NeurIPS 2019)',
                   'resnet', 'GaussianResNet', _DROP_FC),
        FormatSpec('torchvision', 'torchvision ResNet (torchvision.models.resnet*)', 'resnet',
                   'ResNet', _DROP_FC),
        # mmpretrain's ImageClassifier (and lip_det.classification's): the backbone is the prefix,
        # the neck (global pooling, no tensors) and the head (fc) are the classifier.
        FormatSpec('mmpretrain', 'mmpretrain ImageClassifier Runner checkpoint (backbone.*, '
                   'head.*; also lip_det.classification)', 'classifier', None,
                   ('neck.', 'head.'), strip_prefix='backbone.'),
    )
}

FORMAT_ALIASES: Dict[str, str] = {'gfgp': 'maxent', 'max_ent': 'maxent', 'gauss': 'gaussian',
                                  'lip_resnet': 'lip', 'tv': 'torchvision', 'mmcls': 'mmpretrain',
                                  'mmpretrain_classifier': 'mmpretrain'}

# torchvision/mmdet ResNet depths by (block type, blocks per stage)
_RESNET_DEPTHS: Dict[Tuple[str, Tuple[int, ...]], int] = {
    ('basic', (2, 2, 2, 2)): 18,
    ('basic', (3, 4, 6, 3)): 34,
    ('bottleneck', (3, 4, 6, 3)): 50,
    ('bottleneck', (3, 4, 23, 3)): 101,
    ('bottleneck', (3, 8, 36, 3)): 152,
}
# DenseNet depths by (layers per dense block, growth rate)
_DENSENET_DEPTHS: Dict[Tuple[Tuple[int, ...], int], int] = {
    ((6, 12, 24, 16), 32): 121,
    ((6, 12, 36, 24), 48): 161,
    ((6, 12, 32, 32), 32): 169,
    ((6, 12, 48, 32), 32): 201,
}


def resolve_format(name: str) -> str:
    """Canonical format name for a user-given name or alias (ValueError if unknown)."""
    key = FORMAT_ALIASES.get(name.lower(), name.lower())
    if key not in FORMATS:
        raise ValueError(f'src_format must be one of {sorted(FORMATS)} (aliases: '
                         f'{sorted(FORMAT_ALIASES)}), got {name!r}')
    return key


def detect_format(state_dict: Mapping[str, torch.Tensor], wrapper: Mapping[str, Any]) -> Tuple[str, str]:
    """Guess the format from key names; returns (format, human-readable reason)."""
    keys = list(state_dict)

    def has(pattern: str) -> bool:
        rx = re.compile(pattern)
        return any(rx.search(k) for k in keys)

    # First: the pooling-specific patterns below also match inside a classifier's backbone.*
    if has(r'^backbone\.') and has(r'^head\.'):
        return 'mmpretrain', 'backbone.* and head.* keys (an mmpretrain-style ImageClassifier)'
    if has(r'(^|\.)(ToHidden|ToMean|ToSigma)\.'):
        return 'gaussian', 'keys with ToHidden/ToMean/ToSigma (GFGP Gaussian estimator)'
    if has(r'(^|\.)ToParam\.'):
        return 'maxent', 'keys with ToParam (GFGP lambda estimator)'
    if has(r'^features\.') and has(r'(^|\.)logit\.'):
        return 'lip_densenet', 'features.* keys with LIP logit modules'
    if has(r'(^|\.)(bottleneck_shared|postprocessing)\.') or has(r'^maxpool\.logit\.'):
        return 'lip', 'keys with bottleneck_shared/postprocessing/maxpool.logit (LIP logit modules)'
    if has(r'^layer1\.0\.conv1\.weight$') and has(r'^conv1\.weight$'):
        # SoftPool adds no parameters: its ResNets and torchvision's share every key. The
        # reference SoftPool script saves training checkpoints, torchvision ships bare state_dicts.
        if wrapper:
            return 'softpool', ('plain ResNet keys in a training-checkpoint wrapper; SoftPool and '
                                'torchvision ResNets share keys')
        return 'torchvision', ('plain ResNet keys in a bare state_dict; SoftPool and torchvision '
                               'ResNets share keys')
    if has(r'^backbone\.'):
        raise CheckpointError('this is a detector checkpoint (keys backbone.*, ...), not an ImageNet '
                              'classifier: use it with load_from / tools/test.py, not converted')
    sample = ', '.join(sorted(keys)[:5])
    raise CheckpointError(f'unknown checkpoint format (first keys: {sample}); supported formats: '
                          + '; '.join(f'{s.name} = {s.description}' for s in FORMATS.values()))


def _stage_blocks(keys, pattern: str, groups: int, first_index: int) -> Tuple[int, ...]:
    """Blocks per stage, from keys whose pattern captures (stage, block index)."""
    rx = re.compile(pattern)
    counts = [0] * groups
    for k in keys:
        m = rx.match(k)
        if m:
            stage, block = int(m.group(1)), int(m.group(2))
            if 1 <= stage <= groups:
                counts[stage - 1] = max(counts[stage - 1], block + 1 - first_index)
    return tuple(counts)


def detect_arch(state_dict: Mapping[str, torch.Tensor], family: str) -> str:
    """Architecture name (e.g. 'resnet50', 'densenet121') from the keys and shapes."""
    keys = list(state_dict)
    if family == 'resnet':
        blocks = _stage_blocks(keys, r'^layer(\d)\.(\d+)\.', 4, first_index=0)
        block = 'bottleneck' if 'layer1.0.conv3.weight' in state_dict else 'basic'
        depth = _RESNET_DEPTHS.get((block, blocks))
        if depth is None:
            raise CheckpointError(f'not a standard ResNet: {block} blocks per stage {blocks}; '
                                  'supported depths are 18, 34, 50, 101, 152')
        conv2 = state_dict.get('layer1.0.conv2.weight')
        conv1 = state_dict.get('layer1.0.conv1.weight')
        if conv2 is not None and conv2.dim() == 4 and conv2.shape[1] != conv2.shape[0]:
            raise CheckpointError('grouped 3x3 convolutions (ResNeXt) are not supported: only '
                                  'plain ResNet layouts map onto the detection backbones')
        if conv1 is not None and conv1.shape[0] != 64:
            raise CheckpointError(f'layer1 width {conv1.shape[0]} != 64 (Wide-ResNet?) is not '
                                  'supported: only plain ResNet widths map onto the backbones')
        return f'resnet{depth}'
    if family == 'densenet':
        layers = _stage_blocks(keys, r'^features\.denseblock(\d)\.denselayer(\d+)\.', 4, first_index=1)
        conv2 = state_dict.get('features.denseblock1.denselayer1.conv2.weight')
        growth = int(conv2.shape[0]) if conv2 is not None else -1
        depth = _DENSENET_DEPTHS.get((layers, growth))
        if depth is None:
            raise CheckpointError(f'not a standard DenseNet: layers per block {layers}, growth '
                                  f'rate {growth}; supported: 121, 161, 169, 201')
        return f'densenet{depth}'
    raise ValueError(f"family must be 'resnet' or 'densenet', got {family!r}")


def backbone_config(fmt: str, arch: str) -> Dict[str, Any]:
    """The mmdet backbone config whose state_dict a converted checkpoint must match exactly."""
    depth = int(re.sub(r'\D', '', arch))
    spec = FORMATS[resolve_format(fmt)]
    if spec.backbone is None:
        fixed = sorted(s.name for s in FORMATS.values() if s.backbone is not None)
        raise ValueError(f'src_format {spec.name!r} has no fixed backbone type (it is read from '
                         f'the checkpoint); one of {fixed} is needed here')
    return dict(type=spec.backbone, depth=depth)
