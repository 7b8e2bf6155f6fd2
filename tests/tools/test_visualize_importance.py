"""tools/visualize_importance.py: one PNG per LIP layer, maps equal to e^logit computed by hand."""
from __future__ import annotations

import math
import os

import numpy as np
import pytest
import torch

from .tool_loader import load_tool

reference_models = load_tool('reference_models')
RefResNet, randomize_ = reference_models.RefResNet, reference_models.randomize_

LIP_R50_LAYERS = ['maxpool'] + [f'layer{i}.0.{p}' for i in (2, 3, 4)
                                for p in ('conv2.0', 'downsample.lip')]
# A thin LIP-ResNet-50 (1/4 width, logit trunk 16): same LIP layers as the full model, 16x cheaper.
THIN_LIP_R50 = {'type': 'LIPResNet', 'depth': 50, 'base_channels': 16, 'logit_width': 16}
MEAN = (123.675, 116.28, 103.53)
STD = (58.395, 57.12, 57.375)

tool = load_tool('visualize_importance')


@pytest.fixture(scope='module')
def image_file(tmp_path_factory):
    import cv2
    h, w = 64, 80  # not square: catches transposed maps
    img = np.zeros((h, w, 3), np.uint8)
    img[..., 0] = np.linspace(0, 255, w)[None, :]
    img[..., 1] = np.linspace(0, 255, h)[:, None]
    img[20:36, 44:60] = 255  # a bright square: something to attend to
    path = str(tmp_path_factory.mktemp('img') / 'input.png')
    cv2.imwrite(path, img)
    return path


def _tensor(path):
    import cv2
    img = cv2.imread(path)[..., ::-1].copy()
    t = torch.from_numpy(img).permute(2, 0, 1).float()
    return ((t - torch.tensor(MEAN).view(3, 1, 1)) / torch.tensor(STD).view(3, 1, 1))[None]


def _lip_backbone(seed=None):
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    backbone = MODELS.build(dict(THIN_LIP_R50))
    backbone.init_weights()
    if seed is not None:
        return randomize_(backbone, seed)
    backbone.eval()
    return backbone


def _expected_maps(model, x):
    """e^logit (channel mean) of every LIP layer, from the logit modules called by hand."""
    with torch.no_grad():
        stem = model.relu(model.bn1(model.conv1(x)))
        maps = [model.maxpool.logit(stem).exp()[0].mean(0)]
        feat = model.layer1(model.maxpool(stem))
        for name in ('layer2', 'layer3', 'layer4'):
            block = getattr(model, name)[0]
            shared = block.bottleneck_shared(feat)
            maps.append(block.conv2[0].postprocessing(shared).exp()[0].mean(0))
            maps.append(block.downsample.lip.postprocessing(shared).exp()[0].mean(0))
            feat = getattr(model, name)(feat)
    return [m.numpy() for m in maps]


def _run(args, out_dir):
    code = tool.main(args + ['--out-dir', str(out_dir), '--save-npy'])
    files = sorted(os.listdir(out_dir)) if os.path.isdir(out_dir) else []
    return code, files


def _check_outputs(out_dir, files, expected):
    import cv2
    pngs = [f for f in files if f.endswith('.png')]
    assert pngs == [f'{i:02d}_{n}.png' for i, n in enumerate(LIP_R50_LAYERS)]
    for i, (name, want) in enumerate(zip(LIP_R50_LAYERS, expected)):
        got = np.load(os.path.join(out_dir, f'{i:02d}_{name}.npy'))
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-5, err_msg=name)
        png = cv2.imread(os.path.join(out_dir, pngs[i]))
        assert png is not None and png.shape[1] > 1.5 * png.shape[0]  # input | map, side by side
        assert png.std() > 10  # an actual picture, not a blank canvas


def test_converted_backbone_checkpoint(tmp_path, image_file):
    model = _lip_backbone(seed=3)
    ckpt = str(tmp_path / 'lip_r50_backbone.pth')
    torch.save({'state_dict': model.state_dict(), 'meta': {'backbone': THIN_LIP_R50}}, ckpt)
    code, files = _run([image_file, ckpt], tmp_path / 'maps')
    assert code == 0
    expected = _expected_maps(model, _tensor(image_file))
    assert expected[0].shape == (32, 40) and expected[1].shape == (16, 20)
    assert np.ptp(expected[0]) > 1e-3  # non-trivial map: the comparison means something
    _check_outputs(tmp_path / 'maps', files, expected)


def test_lip_layers_start_as_average_pooling(tmp_path, image_file):
    # zero-initialised logit convs: logit = SoftGate(IN bias 0) = 6 everywhere, e^l = e^6
    model = _lip_backbone()
    ckpt = str(tmp_path / 'init.pth')
    torch.save({'state_dict': model.state_dict(), 'meta': {'backbone': THIN_LIP_R50}}, ckpt)
    code, files = _run([image_file, ckpt], tmp_path / 'maps')
    assert code == 0
    for f in files:
        if f.endswith('.npy'):
            np.testing.assert_allclose(np.load(tmp_path / 'maps' / f), math.exp(6.0), rtol=1e-5)


def test_detector_checkpoint_with_config(tmp_path, image_file, capsys):
    model = _lip_backbone(seed=5)
    ckpt = str(tmp_path / 'epoch_1.pth')
    state = {f'backbone.{k}': v for k, v in model.state_dict().items()}
    state['neck.lateral_convs.0.conv.weight'] = torch.zeros(1)  # the rest of a detector
    torch.save({'state_dict': state, 'meta': {'epoch': 1}, 'message_hub': {}}, ckpt)
    code, files = _run([image_file, ckpt], tmp_path / 'no-config')
    assert code == 1 and not files  # which backbone? the checkpoint does not say
    cfg = tmp_path / 'cfg.py'
    cfg.write_text(
        "model = dict(type='FasterRCNN', data_preprocessor=dict(type='DetDataPreprocessor', "
        f'mean={list(MEAN)}, std={list(STD)}, bgr_to_rgb=True), '
        "backbone=dict(type='LIPResNet', depth=50, base_channels=16, logit_width=16, "
        "init_cfg=dict(type='Pretrained', checkpoint='/nonexistent/imagenet.pth')))\n")
    code, files = _run([image_file, ckpt, '--config', str(cfg)], tmp_path / 'maps')
    assert code == 0
    _check_outputs(tmp_path / 'maps', files, _expected_maps(model, _tensor(image_file)))
    wide = tmp_path / 'wide.py'  # a config that does not describe this checkpoint
    wide.write_text(cfg.read_text().replace('base_channels=16', 'base_channels=32'))
    code, _ = _run([image_file, ckpt, '--config', str(wide)], tmp_path / 'wrong')
    assert code == 1 and 'does not fit LIPResNet' in capsys.readouterr().err


def test_reference_lip_checkpoint_is_converted_in_memory(tmp_path, image_file):
    ref = randomize_(RefResNet(50, 'lip'), seed=7)
    ckpt = str(tmp_path / 'lip_resnet-50.pth')
    torch.save(ref.state_dict(), ckpt)  # the released format: flat, with the classifier
    code, files = _run([image_file, ckpt], tmp_path / 'maps')
    assert code == 0
    _check_outputs(tmp_path / 'maps', files, _expected_maps(ref, _tensor(image_file)))


def test_refuses_backbones_without_lip(tmp_path, image_file, capsys):
    ref = randomize_(RefResNet(18, 'torchvision'))
    ckpt = str(tmp_path / 'resnet18.pth')
    torch.save(ref.state_dict(), ckpt)
    code, files = _run([image_file, ckpt], tmp_path / 'maps')
    assert code == 1 and 'no LIP layers' in capsys.readouterr().err and not files
    code, _ = _run([str(tmp_path / 'missing.png'), ckpt], tmp_path / 'maps2')
    assert code == 1
