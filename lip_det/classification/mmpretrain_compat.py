"""Register the backbones in mmpretrain's MODELS too, where mmpretrain is importable.

On the CPU stack it is not (it imports torchvision; see docs/usage.md), so this is a no-op
there; with ``pip install -e .[pretrain]`` on a machine with a working torchvision, an
mmpretrain config can then use ``backbone=dict(type='LIPResNet', ...)`` with the same
arguments as here, and its checkpoints convert with ``--src-format mmpretrain``.
"""
from __future__ import annotations

from typing import List, Optional

__all__ = ['BACKBONE_NAMES', 'register_in_mmpretrain']

BACKBONE_NAMES = ('LIPResNet', 'SoftPoolResNet', 'MaxEntResNet', 'GaussianResNet', 'LIPDenseNet')


def register_in_mmpretrain(registry: Optional[object] = None) -> List[str]:
    """Register the backbones (same classes) in mmpretrain's MODELS; the names registered.

    ``registry`` defaults to ``mmpretrain.registry.MODELS``; without mmpretrain (or when it
    fails to import, e.g. torchvision's "operator torchvision::nms does not exist") nothing
    happens. Names mmpretrain already has are left to it.
    """
    if registry is None:
        try:
            from mmpretrain.registry import MODELS as registry  # type: ignore[no-redef]
        except Exception:  # noqa: BLE001 - any import failure means: no mmpretrain here
            return []
    from ..models import backbones
    done = []
    for name in BACKBONE_NAMES:
        if name not in registry.module_dict:  # its own names only, not its parents'
            registry.register_module(name=name, module=getattr(backbones, name))
            done.append(name)
    return done
