"""Every shipped config loads and builds; the tools' argument handling follows mmdet's."""
from __future__ import annotations

import copy
import glob
import importlib.util
import os.path as osp
import re

import pytest
import torch

from .conftest import REPO

COCO_CONFIGS = sorted(glob.glob(osp.join(REPO, 'configs', 'faster_rcnn_*.py')))
SYNTH_CONFIGS = sorted(p for p in glob.glob(osp.join(REPO, 'configs', 'synthetic', 'faster_rcnn_*.py'))
                       if not p.endswith('_pretrained.py'))
PRETRAINED_CONFIGS = sorted(glob.glob(osp.join(REPO, 'configs', 'synthetic', '*_pretrained.py')))
BACKBONES = {'r': 'ResNet', 'lip': 'LIPResNet', 'softpool': 'SoftPoolResNet',
             'maxent': 'MaxEntResNet', 'gaussian': 'GaussianResNet', 'adapool': 'AdaPoolResNet'}


def _family_depth(path):
    m = re.match(r'faster_rcnn_(?:(lip|softpool|maxent|gaussian|adapool)_)?r(\d+)(?:_w\d+)?_fpn',
                 osp.basename(path))
    return (m.group(1) or 'r'), int(m.group(2))


def _load_tool(name):
    spec = importlib.util.spec_from_file_location(f'_tool_{name}',
                                                  osp.join(REPO, 'tools', f'{name}.py'))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _build(model_cfg):
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    import lip_det  # noqa: F401
    register_all_modules()
    return MODELS.build(copy.deepcopy(model_cfg))


def test_every_family_and_depth_has_a_coco_config():
    found = {_family_depth(p) for p in COCO_CONFIGS}
    assert found == {(f, d) for f in BACKBONES for d in (50, 101)}
    # every family at depth 18, and the papers' Bottleneck design (plain and LIP) at depth 50
    assert {osp.basename(p) for p in SYNTH_CONFIGS} == {
        f'faster_rcnn_{f + "_" if f != "r" else ""}r18_fpn_synthetic.py' for f in BACKBONES} | {
        'faster_rcnn_r50_w16_fpn_synthetic.py', 'faster_rcnn_lip_r50_w16_fpn_synthetic.py'}


@pytest.mark.parametrize('path', COCO_CONFIGS, ids=osp.basename)
def test_coco_config(path):
    from mmengine.config import Config
    family, depth = _family_depth(path)
    with open(path) as f:
        text = f.read()
    header = text[:text.index('_base_')]
    assert 'Expected' in header and f'configs/{osp.basename(path)}' in header
    assert 'tools/convert_checkpoint.py' in header and 'init_cfg.checkpoint=' in header
    cfg = Config.fromfile(path)
    assert cfg.custom_imports == dict(imports=['lip_det'], allow_failed_imports=False)
    bb = cfg.model.backbone
    assert bb.type == BACKBONES[family] and bb.depth == depth
    assert bb.init_cfg.type == 'Pretrained' and bb.init_cfg.checkpoint.endswith('.pth')
    # mmdet's schedule untouched: lr 0.02 for 16 images, 12 epochs, (1333, 800) inputs.
    assert cfg.optim_wrapper.optimizer.lr == 0.02
    assert cfg.auto_scale_lr == dict(enable=False, base_batch_size=16)
    assert cfg.train_cfg.max_epochs == 12
    assert cfg.train_dataloader.batch_size == 2
    assert cfg.model.roi_head.bbox_head.num_classes == 80
    assert bb.frozen_stages == 1 and bb.norm_eval is True
    if depth == 50:
        model_cfg = copy.deepcopy(cfg.model)
        model_cfg.backbone.init_cfg = None
        model = _build(model_cfg)
        assert type(model.backbone).__name__ == BACKBONES[family]
        assert model.backbone.depth == 50


def test_backbone_init_from_a_converted_checkpoint_through_cfg_options(tmp_path):
    """The COCO configs' init path: a {'state_dict': ...} backbone file named on the command line."""
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'faster_rcnn_lip_r50_fpn.py'))
    src = _build(dict(cfg.model.backbone, init_cfg=None))
    torch.manual_seed(1)
    for p in src.parameters():
        p.data.normal_()
    ckpt = str(tmp_path / 'lip_r50_backbone.pth')
    torch.save({'state_dict': src.state_dict(), 'meta': {'source': 'test'}}, ckpt)
    cfg.merge_from_dict({'model.backbone.init_cfg.checkpoint': ckpt})
    dst = _build(cfg.model.backbone)
    dst.init_weights()
    for k, v in src.state_dict().items():
        assert torch.equal(v, dst.state_dict()[k]), k


def _tiny_batch(size=128, n=2):
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData
    g = torch.Generator().manual_seed(0)
    samples = []
    for _ in range(n):
        s = DetDataSample(metainfo=dict(img_shape=(size, size), ori_shape=(size, size),
                                        scale_factor=(1.0, 1.0), pad_shape=(size, size)))
        s.gt_instances = InstanceData(bboxes=torch.tensor([[10., 12., 30., 40.],
                                                           [50., 60., 110., 100.]]),
                                      labels=torch.tensor([0, 3]))
        samples.append(s)
    return dict(inputs=[torch.randint(0, 256, (3, size, size), generator=g, dtype=torch.uint8)
                        for _ in range(n)], data_samples=samples)


@pytest.mark.parametrize('path', SYNTH_CONFIGS, ids=osp.basename)
def test_synthetic_config_trains_one_step(path):
    from mmengine.config import Config
    from mmengine.optim import build_optim_wrapper
    cfg = Config.fromfile(path)
    family, depth = _family_depth(path.replace('_synthetic', ''))
    assert cfg.model.backbone.type == BACKBONES[family] and cfg.model.backbone.depth == depth
    assert cfg.model.roi_head.bbox_head.num_classes == len(cfg.metainfo['classes']) == 5
    torch.manual_seed(0)
    model = _build(cfg.model)
    model.init_weights()
    # Small enough for CPU experiments.
    assert sum(p.numel() for p in model.parameters()) < 5e6
    optim = build_optim_wrapper(model, copy.deepcopy(cfg.optim_wrapper))
    model.train()
    losses = model.train_step(_tiny_batch(), optim)
    assert all(torch.isfinite(v).all() for v in losses.values())
    model.eval()
    with torch.no_grad():
        out = model.test_step(_tiny_batch(n=1))
    assert out[0].pred_instances.bboxes.shape[-1] == 4


@pytest.mark.parametrize('path', PRETRAINED_CONFIGS, ids=osp.basename)
def test_pretrained_synthetic_config_changes_only_the_backbone_init(path):
    from mmengine.config import Config
    assert len(PRETRAINED_CONFIGS) == 2
    cfg = Config.fromfile(path)
    scratch = Config.fromfile(path.replace('_pretrained', ''))
    init = cfg.model.backbone.pop('init_cfg')
    assert init.type == 'Pretrained' and init.checkpoint.endswith('/backbone.pth')
    assert scratch.model.backbone.pop('init_cfg') is None
    assert cfg.to_dict() == scratch.to_dict()
    # the classifier it is pretrained as has the same backbone
    cls_name = osp.basename(path).replace('faster_rcnn_', '').replace('_fpn_synthetic_pretrained',
                                                                      '_cls_synthetic')
    cls_bb = Config.fromfile(osp.join(REPO, 'configs', 'synthetic', cls_name)).model.backbone
    for key in ('type', 'depth', 'base_channels', 'logit_module', 'logit_width'):
        assert cls_bb.get(key) == scratch.model.backbone.get(key), key


def test_train_tool_arguments_follow_mmdet(tmp_path, monkeypatch):
    train = _load_tool('train')
    cfg_path = osp.join(REPO, 'configs', 'synthetic', 'faster_rcnn_lip_r18_fpn_synthetic.py')
    cfg = train.build_config(train.parse_args([cfg_path]))
    assert cfg.work_dir == osp.join('./work_dirs', 'faster_rcnn_lip_r18_fpn_synthetic')
    assert cfg.resume is False and cfg.launcher == 'none'
    assert cfg.auto_scale_lr.enable is False and cfg.optim_wrapper.type == 'OptimWrapper'
    if not torch.cuda.is_available():
        with pytest.raises(SystemExit, match='--amp needs a CUDA device'):
            train.build_config(train.parse_args([cfg_path, '--amp']))
        monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    cfg = train.build_config(train.parse_args(
        [cfg_path, '--work-dir', str(tmp_path), '--amp', '--auto-scale-lr', '--resume',
         '--cfg-options', 'train_cfg.max_epochs=2', 'model.backbone.logit_width=8']))
    assert cfg.work_dir == str(tmp_path) and cfg.train_cfg.max_epochs == 2
    assert cfg.model.backbone.logit_width == 8
    assert cfg.optim_wrapper.type == 'AmpOptimWrapper' and cfg.optim_wrapper.loss_scale == 'dynamic'
    assert cfg.auto_scale_lr.enable is True
    assert cfg.resume is True and cfg.load_from is None
    cfg = train.build_config(train.parse_args([cfg_path, '--resume', 'x/epoch_3.pth']))
    assert cfg.resume is True and cfg.load_from == 'x/epoch_3.pth'


def test_cpu_distributed_launch_is_rewritten_for_gloo(monkeypatch):
    from lip_det.engine import prepare_launch
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'faster_rcnn_r50_fpn.py'))
    assert cfg.env_cfg.dist_cfg.backend == 'nccl'  # mmdet's default
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    out = prepare_launch(copy.deepcopy(cfg), 'slurm')
    assert out.launcher == 'slurm' and out.env_cfg.dist_cfg.backend == 'gloo'
    assert out.model_wrapper_cfg.type == 'MMDistributedDataParallel'
    assert out.model_wrapper_cfg.device_ids is None
    assert prepare_launch(copy.deepcopy(cfg), 'none').env_cfg.dist_cfg.backend == 'nccl'
    for var in ('RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT'):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(RuntimeError, match='torchrun'):
        prepare_launch(copy.deepcopy(cfg), 'pytorch')
    with pytest.raises(ValueError, match='launcher'):
        prepare_launch(copy.deepcopy(cfg), 'ssh')
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    assert prepare_launch(copy.deepcopy(cfg), 'pytorch').env_cfg.dist_cfg.backend == 'nccl'


def test_test_tool_arguments_and_metric_table():
    test = _load_tool('test')
    cfg_path = osp.join(REPO, 'configs', 'synthetic', 'faster_rcnn_lip_r18_fpn_synthetic.py')
    args = test.parse_args([cfg_path, 'w.pth', '--show-dir', 'vis', '--tta'])
    cfg = test.build_config(args)
    assert cfg.load_from == 'w.pth' and cfg.model.type == 'DetTTAModel'
    assert cfg.default_hooks.visualization.draw is True
    assert cfg.default_hooks.visualization.test_out_dir == 'vis'
    with pytest.raises(SystemExit):
        test.parse_args([cfg_path, 'w.pth', '--out', 'preds.json'])
    table = test.format_metrics({'coco/bbox_mAP': 0.5, 'coco/bbox_mAP_50': 0.75,
                                 'coco/bbox_mAP_75': 0.5, 'coco/bbox_mAP_s': 0.125,
                                 'coco/bbox_mAP_m': 0.5, 'coco/bbox_mAP_l': 1.0})
    head, vals = table.splitlines()
    assert head.split() == ['AP', 'AP50', 'AP75', 'AP_S', 'AP_M', 'AP_L']
    assert vals.split() == ['50.0', '75.0', '50.0', '12.5', '50.0', '100.0']
