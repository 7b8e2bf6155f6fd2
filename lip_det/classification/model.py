"""An mmpretrain-style ``ImageClassifier`` on mmengine's ``BaseModel``.

Module names follow mmpretrain 1.x (``backbone``, ``neck``, ``head.fc``, ``head.loss_module``)
so that the state_dict -- and the Runner checkpoint -- has mmpretrain's layout: ``backbone.*``
and ``head.fc.{weight,bias}`` (the neck and the loss have no parameters; the preprocessor's
mean/std are non-persistent buffers, as in mmpretrain).
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmdet.registry import MODELS
from mmengine.model import BaseModel, BaseModule, ImgDataPreprocessor
from mmengine.structures import BaseDataElement

__all__ = ['ImageClassifier', 'ClsDataPreprocessor', 'LinearClsHead']


@MODELS.register_module()
class ClsDataPreprocessor(ImgDataPreprocessor):
    """Stack images, convert BGR to RGB (``to_rgb``) and normalise, as mmpretrain's does."""

    def __init__(self, mean: Optional[Sequence[float]] = None,
                 std: Optional[Sequence[float]] = None, to_rgb: bool = False,
                 pad_size_divisor: int = 1, pad_value: float = 0) -> None:
        super().__init__(mean=mean, std=std, pad_size_divisor=pad_size_divisor,
                         pad_value=pad_value, bgr_to_rgb=to_rgb)


@MODELS.register_module()
class LinearClsHead(BaseModule):
    """``fc`` over the last neck output plus a classification loss (mmpretrain's layout)."""

    def __init__(self, num_classes: int, in_channels: int,
                 loss: dict = dict(type='CrossEntropyLoss', loss_weight=1.0),
                 init_cfg: Optional[dict] = dict(type='Normal', layer='Linear', std=0.01)
                 ) -> None:
        super().__init__(init_cfg)
        for name, value in (('num_classes', num_classes), ('in_channels', in_channels)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f'{name} must be a positive int, got {value!r}')
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.fc = nn.Linear(in_channels, num_classes)
        self.loss_module = MODELS.build(loss)

    def forward(self, feats: Tuple[torch.Tensor, ...]) -> torch.Tensor:
        """Class logits from the last (pooled, flattened) feature."""
        return self.fc(feats[-1])

    def loss(self, feats: Tuple[torch.Tensor, ...], labels: torch.Tensor) -> Dict[str, torch.Tensor]:
        """``dict(loss=...)`` of the logits against integer labels."""
        return dict(loss=self.loss_module(self(feats), labels))


def _labels(data_samples: Sequence[BaseDataElement], device: torch.device) -> torch.Tensor:
    """The ``gt_label`` of every sample as one LongTensor."""
    labels = [torch.as_tensor(s.gt_label).reshape(-1)[:1] for s in data_samples]
    return torch.cat(labels).long().to(device)


@MODELS.register_module()
class ImageClassifier(BaseModel):
    """backbone -> neck (global average pooling) -> head, with mmpretrain's module names.

    ``forward(mode='loss')`` returns ``dict(loss=...)``; ``'predict'`` returns the data
    samples with ``pred_score`` (softmax) and ``pred_label`` added; ``'tensor'`` the logits.
    """

    def __init__(self, backbone: dict, head: dict, neck: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None, train_cfg: Optional[dict] = None,
                 init_cfg: Optional[Union[dict, List[dict]]] = None) -> None:
        if data_preprocessor is None:
            data_preprocessor = dict(type='ClsDataPreprocessor')
        if isinstance(data_preprocessor, dict):
            data_preprocessor = MODELS.build(data_preprocessor)
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        if train_cfg:  # mmpretrain's batch augments (mixup, cutmix) are not ported
            raise ValueError(f'train_cfg must be None or empty (batch augments are not '
                             f'supported), got {train_cfg!r}')
        self.backbone = MODELS.build(backbone)
        self.neck = MODELS.build(neck) if neck is not None else None
        self.head = MODELS.build(head)

    def extract_feat(self, inputs: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """Backbone outputs, pooled and flattened by the neck."""
        feats = self.backbone(inputs)
        if self.neck is not None:
            feats = self.neck(feats)
        return feats if isinstance(feats, tuple) else (feats,)

    def forward(self, inputs: torch.Tensor, data_samples: Optional[List[BaseDataElement]] = None,
                mode: str = 'tensor'):
        """mmengine's three modes: 'loss', 'predict' and 'tensor'."""
        if mode == 'tensor':
            return self.head(self.extract_feat(inputs))
        if mode == 'loss':
            if not data_samples:
                raise ValueError("mode 'loss' needs data_samples with gt_label")
            return self.head.loss(self.extract_feat(inputs), _labels(data_samples, inputs.device))
        if mode == 'predict':
            scores = F.softmax(self.head(self.extract_feat(inputs)), dim=1)
            if data_samples is None:
                data_samples = [BaseDataElement() for _ in range(scores.shape[0])]
            for sample, score in zip(data_samples, scores):
                sample.set_data(dict(pred_score=score.detach(),
                                     pred_label=score.argmax().reshape(1).detach()))
            return data_samples
        raise ValueError(f"mode must be one of ('loss', 'predict', 'tensor'), got {mode!r}")
