"""THE key-mapping table per reference format: reference classification key -> backbone key.

Owner: the backbone code (lip_det/models). The backbones keep the references' module names, so
every map is "drop the classifier": with BN, a reference ImageNet state dict minus its
classifier *is* the backbone's state dict (LIP-ResNet's shortcuts are ``downsample.{lip,conv,bn}``
as in the reference; LIP-DenseNet keeps the reference's ``features.*`` tree).

Interface (consumed by ``lip_det.checkpoints.convert``):
``KEY_MAPS[format]`` is an ordered tuple of ``(regex, replacement)`` rules, applied to keys after
any ``module.`` prefix has been stripped. The first rule whose regex matches (``re.match``) wins:
``replacement=None`` drops the key (the classifier), otherwise the key becomes
``re.sub(regex, replacement, key, count=1)``. A key no rule matches is kept unchanged. The
converter then checks the result against the backbone's own ``state_dict()``, strictly.
``FORMAT_BACKBONES[format]`` is the registered backbone type the format converts to, for the
formats with one fixed type; an ``mmpretrain`` classifier's backbone type and arguments come
from its embedded config (``meta['cfg']``, as mmengine's Runner writes it) or, without one,
from its stripped keys (``convert._mmpretrain_backbone``).
"""
from __future__ import annotations

from typing import Dict, Optional, Tuple

Rule = Tuple[str, Optional[str]]

_DROP_FC: Tuple[Rule, ...] = ((r'fc\.', None),)

KEY_MAPS: Dict[str, Tuple[Rule, ...]] = {
    'torchvision': _DROP_FC,
    'softpool': _DROP_FC,
    'lip': _DROP_FC,
    'maxent': _DROP_FC,
    'gaussian': _DROP_FC,
    'lip_densenet': ((r'classifier\.', None),),
    # mmpretrain's ImageClassifier (and lip_det.classification's): the backbone is the prefix,
    # the neck (global pooling, no tensors) and the head (fc) are the classifier.
    'mmpretrain': ((r'backbone\.', ''), (r'(neck|head)\.', None)),
}

FORMAT_BACKBONES: Dict[str, str] = {
    'torchvision': 'ResNet',
    'softpool': 'SoftPoolResNet',
    'lip': 'LIPResNet',
    'maxent': 'MaxEntResNet',
    'gaussian': 'GaussianResNet',
    'lip_densenet': 'LIPDenseNet',
}
