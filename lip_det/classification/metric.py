"""Top-k accuracy over ``pred_score`` / ``gt_label`` (mmpretrain's ``Accuracy`` names)."""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Union

import torch
from mmdet.registry import METRICS
from mmengine.evaluator import BaseMetric

__all__ = ['topk_accuracy', 'Accuracy']


def topk_accuracy(scores: torch.Tensor, labels: torch.Tensor,
                  topk: Sequence[int] = (1,)) -> List[float]:
    """Percent of rows whose label is among the k highest scores, for each k in ``topk``.

    A k larger than the number of classes counts every sample as correct (the label is always
    among all classes), instead of failing on small sets.
    """
    if scores.dim() != 2 or labels.dim() != 1 or scores.shape[0] != labels.shape[0]:
        raise ValueError(f'scores must be (N, C) and labels (N,), got {tuple(scores.shape)} '
                         f'and {tuple(labels.shape)}')
    if scores.shape[0] == 0:
        raise ValueError('scores: no samples to evaluate')
    out = []
    for k in topk:
        k_eff = min(int(k), scores.shape[1])
        top = scores.topk(k_eff, dim=1).indices
        correct = (top == labels.reshape(-1, 1)).any(dim=1)
        out.append(100.0 * correct.float().mean().item())
    return out


@METRICS.register_module()
class Accuracy(BaseMetric):
    """Top-k accuracy in percent, as ``accuracy/top{k}`` (mmpretrain's keys)."""

    default_prefix: Optional[str] = 'accuracy'

    def __init__(self, topk: Union[int, Sequence[int]] = (1,), collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        topk = (topk,) if isinstance(topk, int) else tuple(topk)
        if not topk or not all(isinstance(k, int) and not isinstance(k, bool) and k >= 1
                               for k in topk):
            raise ValueError(f'topk must be a positive int or a tuple of them, got {topk!r}')
        self.topk = topk

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        """Keep each sample's scores and label."""
        for sample in data_samples:
            self.results.append(dict(pred_score=torch.as_tensor(sample['pred_score']).cpu(),
                                     gt_label=int(torch.as_tensor(sample['gt_label']).reshape(-1)[0])))

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        """``{'top1': ..., 'top5': ...}`` over all processed samples."""
        scores = torch.stack([r['pred_score'] for r in results])
        labels = torch.tensor([r['gt_label'] for r in results])
        return {f'top{k}': v for k, v in zip(self.topk, topk_accuracy(scores, labels, self.topk))}
