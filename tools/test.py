#!/usr/bin/env python
"""Test (and COCO-evaluate) a trained detector, with the lip-det plugin loaded (mmdet's form)."""
import argparse
import json
import os
import os.path as osp
import sys
from copy import deepcopy

sys.path.insert(0, osp.join(osp.dirname(osp.abspath(__file__)), '..'))

import lip_det  # noqa: E402,F401  (registers layers/backbones and the checkpoint loader)
from lip_det.engine import (CfgOptionsAction, check_load_from, check_model_config,  # noqa: E402
                            load_config, prepare_launch, report_user_errors)
from mmdet.engine.hooks.utils import trigger_visualization_hook  # noqa: E402
from mmdet.evaluation import DumpDetResults  # noqa: E402
from mmdet.utils import setup_cache_size_limit_of_dynamo  # noqa: E402
from mmengine import ConfigDict  # noqa: E402
from mmengine.config import Config  # noqa: E402
from mmengine.dist import get_rank  # noqa: E402
from mmengine.registry import RUNNERS  # noqa: E402
from mmengine.runner import Runner  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    """Command-line arguments (the same as mmdet's tools/test.py, plus --metrics-json)."""
    parser = argparse.ArgumentParser(prog=osp.basename(__file__),
                                     description='Test (and evaluate) a detector')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='directory for the evaluation logs and metrics')
    parser.add_argument('--out', type=str, help='dump predictions to a .pkl file')
    parser.add_argument('--show', action='store_true', help='show prediction results')
    parser.add_argument('--show-dir', help='save painted predictions under '
                        'work_dir/<timestamp>/SHOW_DIR')
    parser.add_argument('--wait-time', type=float, default=2, help='--show interval (s)')
    parser.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction,
                        help='override config settings, key=value')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                        default='none', help='job launcher')
    parser.add_argument('--tta', action='store_true', help='flip test-time augmentation')
    parser.add_argument('--metrics-json', help='also write the metric dict to this JSON file')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if args.out is not None and not args.out.endswith(('.pkl', '.pickle')):
        parser.error('--out must end with .pkl or .pickle')
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def _enable_tta(cfg: Config) -> None:
    # mmdet's default flip TTA, used when the config defines none.
    if 'tta_model' not in cfg:
        cfg.tta_model = dict(type='DetTTAModel',
                             tta_cfg=dict(nms=dict(type='nms', iou_threshold=0.5),
                                          max_per_img=100))
    if 'tta_pipeline' not in cfg:
        test_data_cfg = cfg.test_dataloader.dataset
        while 'dataset' in test_data_cfg:
            test_data_cfg = test_data_cfg['dataset']
        cfg.tta_pipeline = deepcopy(test_data_cfg.pipeline)
        cfg.tta_pipeline[-1] = dict(
            type='TestTimeAug',
            transforms=[[dict(type='RandomFlip', prob=1.), dict(type='RandomFlip', prob=0.)],
                        [dict(type='PackDetInputs',
                              meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                                         'scale_factor', 'flip', 'flip_direction'))]])
    cfg.model = ConfigDict(**cfg.tta_model, module=cfg.model)
    cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline


def build_config(args: argparse.Namespace) -> Config:
    """Load the config and apply the command-line overrides in mmdet's order."""
    cfg = load_config(args.config, args.cfg_options, args.work_dir)
    cfg.load_from = args.checkpoint
    if args.show or args.show_dir:
        cfg = trigger_visualization_hook(cfg, args)
    if args.tta:
        _enable_tta(cfg)
    return prepare_launch(cfg, args.launcher)


def format_metrics(metrics: dict) -> str:
    """The bbox AP figures of a metric dict as one aligned table, segm AP in a row below if any."""
    names = [('mAP', 'AP'), ('mAP_50', 'AP50'), ('mAP_75', 'AP75'), ('mAP_s', 'AP_S'),
             ('mAP_m', 'AP_M'), ('mAP_l', 'AP_L')]

    def row(iou_type: str) -> list:
        return [(label, metrics[k]) for key, label in names
                for k in metrics if k == f'{iou_type}_{key}' or k.endswith(f'/{iou_type}_{key}')]

    rows = [(t, r) for t, r in (('bbox', row('bbox')), ('segm', row('segm'))) if r]
    if not rows:
        return ''
    if len(rows) == 1 and rows[0][0] == 'bbox':
        # Box-only models keep the two-line table scripts already parse.
        head = ' '.join(f'{label:>6s}' for label, _ in rows[0][1])
        vals = ' '.join(f'{100 * float(v):6.1f}' for _, v in rows[0][1])
        return f'{head}\n{vals}'
    # Masks too: one row per IoU type, so segm AP_S sits under bbox AP_S.
    got = {iou_type: dict(found) for iou_type, found in rows}
    labels = [label for _, label in names if any(label in g for g in got.values())]
    lines = [' ' * 6 + ' '.join(f'{label:>6s}' for label in labels)]
    for iou_type, g in got.items():
        lines.append(f'{iou_type:6s}' + ' '.join(
            f'{100 * float(g[label]):6.1f}' if label in g else f'{"-":>6s}' for label in labels))
    return '\n'.join(lines)


def main(argv=None) -> dict:
    """Build the runner, test, print the AP table and return the metrics (user errors: one line)."""
    args = parse_args(argv)
    setup_cache_size_limit_of_dynamo()
    with report_user_errors('test.py'):
        cfg = build_config(args)
        check_model_config(cfg)
        check_load_from(cfg, 'checkpoint')
        runner = Runner.from_cfg(cfg) if 'runner_type' not in cfg else RUNNERS.build(cfg)
        if args.out is not None:
            runner.test_evaluator.metrics.append(DumpDetResults(out_file_path=args.out))
        metrics = runner.test()
    if get_rank() == 0:
        table = format_metrics(metrics)
        if table:
            kind = 'bbox and segm' if any('segm_mAP' in k for k in metrics) else 'bbox'
            print(f'{kind} AP (%) of {args.checkpoint}:\n{table}', flush=True)
        if args.metrics_json:
            with open(args.metrics_json, 'w') as f:
                json.dump({k: v for k, v in metrics.items()
                           if isinstance(v, (int, float, str))}, f, indent=2)
    return metrics


if __name__ == '__main__':
    main()
