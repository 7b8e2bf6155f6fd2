"""Shared helpers for the backbone tests."""
import pytest
import torch

mmdet = pytest.importorskip('mmdet')

from mmdet.registry import MODELS  # noqa: E402
from mmdet.utils import register_all_modules  # noqa: E402

import lip_det  # noqa: E402,F401  (registers the backbones)

register_all_modules()

RESNETS = ('LIPResNet', 'SoftPoolResNet', 'MaxEntResNet', 'GaussianResNet', 'AdaPoolResNet')
DEPTHS = (18, 34, 50, 101, 152)
# The 1000-class fc of the classification models the reference parameter counts include.
FC_PARAMS = 2048 * 1000 + 1000
FC_PARAMS_D121 = 1024 * 1000 + 1000


def build(type_: str, **kwargs):
    """Build a registered backbone from a config dict, as a config file would."""
    return MODELS.build(dict(type=type_, **kwargs))


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def logit_modules(model: torch.nn.Module):
    """(name, module) of every LIP logit module: shared trunks and each LIP layer's head."""
    from lip_det.layers.lip_logits import BottleneckShared, LIPLayer
    return [(n, m) for n, m in model.named_modules() if isinstance(m, (BottleneckShared, LIPLayer))]
