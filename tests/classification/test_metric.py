"""Top-k accuracy against hand-computed values."""
from __future__ import annotations

import pytest
import torch

from lip_det.classification import Accuracy, topk_accuracy

SCORES = torch.tensor([[0.1, 0.6, 0.2, 0.1],   # label 1: top-1 hit
                       [0.5, 0.1, 0.3, 0.1],   # label 2: second -> top-2 hit only
                       [0.2, 0.3, 0.1, 0.4],   # label 2: last -> miss at k <= 3
                       [0.7, 0.1, 0.1, 0.1]])  # label 0: top-1 hit
LABELS = torch.tensor([1, 2, 2, 0])


def test_topk_by_hand():
    assert topk_accuracy(SCORES, LABELS, (1, 2, 3, 4)) == [50.0, 75.0, 75.0, 100.0]
    # k beyond the number of classes: every label is among all classes
    assert topk_accuracy(SCORES, LABELS, (5,)) == [100.0]


def test_metric_over_batches():
    metric = Accuracy(topk=(1, 2))
    for i in range(0, 4, 2):  # two batches, as the evaluator feeds them (dicts)
        metric.process(None, [dict(pred_score=SCORES[j], gt_label=LABELS[j:j + 1])
                              for j in range(i, i + 2)])
    assert metric.compute_metrics(metric.results) == {'top1': 50.0, 'top2': 75.0}
    assert metric.default_prefix == 'accuracy'


def test_bad_arguments():
    with pytest.raises(ValueError, match='topk must be'):
        Accuracy(topk=(0,))
    with pytest.raises(ValueError, match='scores must be'):
        topk_accuracy(SCORES[0], LABELS)
