"""THE key-mapping table per reference format: reference classification key -> backbone key.

Owner: the backbone code (lip_det/models). Draft written by the converter side so that the
interface exists; the backbone side adjusts the rules to its module names.

Interface (consumed by ``lip_det.checkpoints.convert``):
``KEY_MAPS[format]`` is an ordered tuple of ``(regex, replacement)`` rules, applied to keys after
any ``module.`` prefix has been stripped. The first rule whose regex matches (``re.match``) wins:
``replacement=None`` drops the key (the classifier), otherwise the key becomes
``re.sub(regex, replacement, key, count=1)``. A key no rule matches is kept unchanged. The
converter then checks the result against the backbone's own ``state_dict()``, strictly.
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
}
