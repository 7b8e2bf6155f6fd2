"""tools/importance_stats.py: window-weight statistics against cases computed by hand."""
from __future__ import annotations

import pytest
import torch

from .tool_loader import load_tool

tool = load_tool('importance_stats')


def test_constant_logits_are_average_pooling():
    s = tool.window_weight_stats(torch.full((2, 3, 6, 6), 6.0), 3, 3, 0)
    assert s['uniformity'] == pytest.approx(1.0) and s['max_weight'] == pytest.approx(1 / 9)


def test_padded_windows_count_only_valid_pixels():
    # k3/s2/p1 on 4x4: windows at the top/left edges hold 4 or 6 valid pixels, still uniform
    s = tool.window_weight_stats(torch.zeros(1, 1, 4, 4), 3, 2, 1)
    assert s['uniformity'] == pytest.approx(1.0)
    assert s['max_weight'] == pytest.approx((1 / 4 + 1 / 6 + 1 / 6 + 1 / 9) / 4)


def test_one_dominant_pixel_per_window_is_max_like():
    logit = torch.zeros(1, 2, 4, 4)
    logit[..., ::2, ::2] = 60.0  # the top-left pixel of every 2x2 window
    s = tool.window_weight_stats(logit, 2, 2, 0)
    assert s['uniformity'] == pytest.approx(0.25, rel=1e-6)
    assert s['max_weight'] == pytest.approx(1.0)


def test_two_level_window_by_hand():
    # one window, weights e^1 : 1 : 1 : 1
    logit = torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]]])
    e = torch.tensor([2.718281828, 1, 1, 1])
    w = e / e.sum()
    s = tool.window_weight_stats(logit, 2, 2, 0)
    assert s['uniformity'] == pytest.approx(float(1 / (w ** 2).sum() / 4), rel=1e-6)
    assert s['max_weight'] == pytest.approx(float(w[0]), rel=1e-6)


def test_small_box_mask_maps_boxes_to_the_layer_resolution():
    anns = [{'bbox': [8, 16, 8, 8], 'area': 64, 'iscrowd': 0},      # small: marked
            {'bbox': [0, 0, 64, 64], 'area': 4096, 'iscrowd': 0}]   # large: ignored
    mask = tool.small_box_mask(anns, (64, 64), (16, 16))
    assert mask.sum() == 4 and mask[4:6, 2:4].all()
    # a box smaller than one cell still marks its cell
    tiny = tool.small_box_mask([{'bbox': [9, 9, 1, 1], 'area': 1}], (64, 64), (8, 8))
    assert tiny.sum() == 1 and tiny[1, 1]


def test_a_fresh_lip_backbone_is_uniform_everywhere():
    from lip_det.registry import build_mmdet_model
    torch.manual_seed(0)
    bb = build_mmdet_model(dict(type='LIPResNet', depth=18, base_channels=8, logit_width=8))
    bb.init_weights()
    bb.eval()
    img = torch.randn(1, 3, 64, 64)
    stats = tool.collect(bb, [img], [[{'bbox': [4, 4, 12, 12], 'area': 144}]])
    assert list(stats) == ['maxpool', 'layer2.0.lip', 'layer3.0.lip', 'layer4.0.lip']
    for s in stats.values():  # zero-initialised logit convs: l = coeff/2 = 6 everywhere
        assert s['logit_mean'] == pytest.approx(6.0) and s['logit_std'] < 1e-5
        assert s['uniformity'] == pytest.approx(1.0)
        assert s['small_contrast'] == pytest.approx(1.0)


def test_main_averages_several_checkpoints(tmp_path, capsys):
    """Two checkpoints of a freshly initialised LIP-R18 detector backbone on two images."""
    import json

    import cv2
    import numpy as np
    from mmengine.config import Config

    from lip_det.registry import build_mmdet_model

    from .tool_loader import REPO
    config = f'{REPO}/configs/synthetic/faster_rcnn_lip_r18_fpn_synthetic.py'
    cfg = dict(Config.fromfile(config).model.backbone)
    bb = build_mmdet_model(cfg)
    bb.init_weights()
    ckpts = []
    for k in range(2):
        path = tmp_path / f'epoch_{k}.pth'
        torch.save({'state_dict': {f'backbone.{n}': v for n, v in bb.state_dict().items()}}, path)
        ckpts.append(str(path))
    (tmp_path / 'img').mkdir()
    images = []
    for i in (1, 2):
        cv2.imwrite(str(tmp_path / 'img' / f'{i}.png'),
                    np.random.default_rng(i).integers(0, 255, (64, 64, 3), dtype=np.uint8))
        images.append({'id': i, 'file_name': f'{i}.png', 'width': 64, 'height': 64})
    gt = tmp_path / 'gt.json'
    gt.write_text(json.dumps({'images': images, 'categories': [{'id': 1, 'name': 'a'}],
                              'annotations': [{'id': 1, 'image_id': 1, 'category_id': 1,
                                               'bbox': [4, 4, 10, 10], 'area': 100,
                                               'iscrowd': 0}]}))
    out = tmp_path / 'stats.json'
    assert tool.main([*ckpts, '--config', config, '--ann-file', str(gt), '--img-dir',
                      str(tmp_path / 'img'), '--json', str(out)]) == 0
    stats = json.loads(out.read_text())
    assert len(stats['per_checkpoint']) == 2 and stats['num_images'] == 2
    for layer in stats['layers'].values():  # average pooling at init, identical checkpoints
        assert layer['uniformity']['mean'] == pytest.approx(1.0)
        assert layer['uniformity']['std'] == 0.0 and layer['uniformity']['n'] == 2
    assert 'mean ± std over them' in capsys.readouterr().out
